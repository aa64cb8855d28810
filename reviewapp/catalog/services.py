"""Loading workflow files into versions, and publishing them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import Max

from comfybridge import checks
from comfybridge.catalog import Catalog
from comfybridge.contract import Contract, checksum
from comfybridge.errors import ContractError
from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.catalog.models import Workflow, WorkflowVersion
from reviewapp.lib.pools import pool_names, unknown_pool_message

# The schema's top-level keyword naming the pool a new workflow runs in.
POOL_KEYWORD = "x-pool"


@dataclass
class LoadResult:
    slug: str
    outcome: str  # "created", "unchanged" or "error"
    version: WorkflowVersion | None = None
    problems: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def check_workflow(graph: dict, schema: dict, catalog: Catalog | None = None) -> Contract:
    """Every rule of comfybridge.checks holds for both files, the schema is valid JSON Schema
    and every binding targets a declared node input. Problems of both files come together."""
    problems = checks.structure_problems(graph, "the graph") or checks.graph_problems(graph)
    try:
        contract = Contract.from_schema(schema)
    except ContractError as exc:
        raise ContractError([*exc.problems, *problems]) from None
    if problems:
        raise ContractError(problems)
    contract.check_graph(graph, catalog or Catalog.bundled())
    return contract


def _read_document(path: Path) -> dict:
    try:
        with path.open("rb") as file:
            # One byte past the limit is enough to know the file is too large.
            raw = file.read(checks.MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise ContractError([f"{path.name}: missing (every workflow needs its schema)"]) from None
    except OSError as exc:
        raise ContractError([f"{path.name}: cannot be read ({exc.strerror})"]) from None
    return checks.parse_document(raw, path.name)


def read_pair(api_path: Path, params_dir: Path) -> tuple[str, dict, dict]:
    slug = api_path.name.removesuffix(".api.json")
    problems = []
    documents = []
    for path in (api_path, params_dir / f"{slug}.schema.json"):
        try:
            documents.append(_read_document(path))
        except ContractError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ContractError(problems)
    graph, schema = documents
    return slug, graph, schema


def declared_pool_problems(schema: dict, schema_name: str) -> list[str]:
    """A schema may name its workflow's pool (top-level "x-pool"): it must be configured."""
    if not isinstance(schema, dict) or POOL_KEYWORD not in schema:
        return []
    pool = schema[POOL_KEYWORD]
    if isinstance(pool, str) and pool in pool_names():
        return []
    return [f"{schema_name}: '{POOL_KEYWORD}': {unknown_pool_message(pool)}"]


def pool_note(version: WorkflowVersion) -> str | None:
    """The version's schema names a pool other than the one its workflow runs in. "x-pool"
    places a new workflow; afterwards its pool is a setting of the workflow (the admin),
    which a new file does not override, so the author hears about the difference instead."""
    declared = version.schema.get(POOL_KEYWORD)
    workflow = version.workflow
    if declared is None or declared == workflow.pool:
        return None
    return (
        f"{workflow.slug}: v{version.number} names pool {declared!r} but the workflow runs in "
        f"pool {workflow.pool!r}; change the workflow's pool in the admin to move it"
    )


@transaction.atomic
def add_version(
    slug: str,
    graph: dict,
    schema: dict,
    *,
    actor,
    source: str = "",
    publish: bool = True,
    schema_name: str = "the schema",
) -> tuple[WorkflowVersion, bool]:
    """Store graph + schema as a new version of `slug` unless an identical one exists.

    Returns (version, created). A new version is published when `publish` is set,
    retiring the one published before it. A new workflow runs in the pool the schema's
    "x-pool" names, else in the default pool; `schema_name` names the file in the
    problem of an "x-pool" that is not configured.
    """
    pool_problems = declared_pool_problems(schema, schema_name)
    try:
        check_workflow(graph, schema)
    except ContractError as exc:
        raise ContractError([*exc.problems, *pool_problems]) from None
    if pool_problems:
        raise ContractError(pool_problems)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,99}", slug):
        raise ContractError(
            [f"workflow name {slug!r} must be lowercase letters, digits, '_' or '-'"]
        )
    digest = checksum({"graph": graph, "schema": schema})
    defaults = {
        "title": schema.get("x-title")
        or schema.get("title")
        or slug.replace("_", " ").capitalize(),
        "description": schema.get("description", ""),
    }
    if POOL_KEYWORD in schema:
        defaults["pool"] = schema[POOL_KEYWORD]
    workflow, wf_created = Workflow.objects.select_for_update().get_or_create(
        slug=slug, defaults=defaults
    )
    if wf_created:
        record(actions.WORKFLOW_CREATED, actor=actor, target=workflow, workflow_slug=slug)
    existing = workflow.versions.filter(checksum=digest).first()
    if existing is not None:
        return existing, False
    number = (workflow.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = WorkflowVersion.objects.create(
        workflow=workflow, number=number, graph=graph, schema=schema, checksum=digest,
        source=source,
    )  # fmt: skip
    record(
        actions.WORKFLOW_VERSION_ADDED,
        actor=actor,
        target=version,
        workflow_slug=slug,
        changes={"number": number, "checksum": digest, "source": source},
    )
    if publish:
        publish_version(version, actor=actor)
    return version, True


@transaction.atomic
def publish_version(version: WorkflowVersion, *, actor) -> None:
    """Make `version` the one new briefs use; the one published before is retired.

    Publishing an older (retired) version is how a workflow is rolled back. Publishing the
    published version changes nothing. Raises IllegalVersionTransition for a move
    WorkflowVersion.ALLOWED does not list.
    """
    version = WorkflowVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == WorkflowVersion.Status.PUBLISHED:
        return
    previous = (
        WorkflowVersion.objects.select_for_update()
        .filter(workflow=version.workflow_id, status=WorkflowVersion.Status.PUBLISHED)
        .exclude(pk=version.pk)
        .first()
    )
    version.publish()  # refuses before anything is written
    if previous is not None:
        previous.retire()
        previous.save(update_fields=["status"])
    version.save(update_fields=["status", "published_at"])
    record(
        actions.WORKFLOW_VERSION_PUBLISHED,
        actor=actor,
        target=version,
        workflow_slug=version.workflow.slug,
        changes={"number": version.number, "replaces": previous.number if previous else None},
    )


@transaction.atomic
def retire_version(version: WorkflowVersion, *, actor) -> None:
    """Stop offering `version` for new briefs; briefs that pinned it keep working.
    Retiring a retired version changes nothing."""
    version = WorkflowVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == WorkflowVersion.Status.RETIRED:
        return
    old = version.retire()
    version.save(update_fields=["status"])
    record(
        actions.WORKFLOW_VERSION_RETIRED,
        actor=actor,
        target=version,
        workflow_slug=version.workflow.slug,
        changes={"number": version.number, "status": [old, version.status]},
    )


def import_version(
    slug: str, graph_bytes: bytes, schema_bytes: bytes, *, actor, publish: bool = False
) -> tuple[WorkflowVersion, bool]:
    """An admin's upload of NAME.api.json + NAME.schema.json as a new version (a draft
    unless `publish`). Raises ContractError in plain words."""
    problems = []
    parsed = []
    files = (("the graph (.api.json)", graph_bytes), ("the schema (.schema.json)", schema_bytes))
    for label, raw in files:
        try:
            parsed.append(checks.parse_document(raw, label))
        except ContractError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ContractError(problems)
    graph, schema = parsed
    return add_version(
        slug,
        graph,
        schema,
        actor=actor,
        source="upload",
        publish=publish,
        schema_name="the schema (.schema.json)",
    )


def load_directory(workflows_dir: Path, params_dir: Path, *, actor=None) -> list[LoadResult]:
    results = []
    for api_path in sorted(Path(workflows_dir).glob("*.api.json")):
        slug = api_path.name.removesuffix(".api.json")
        try:
            slug, graph, schema = read_pair(api_path, Path(params_dir))
            version, created = add_version(
                slug,
                graph,
                schema,
                actor=actor,
                source=f"workflows/{api_path.name}",
                schema_name=f"{slug}.schema.json",
            )
        except ContractError as exc:
            results.append(LoadResult(slug, "error", problems=exc.problems))
            continue
        result = LoadResult(slug, "created" if created else "unchanged", version)
        note = pool_note(version) if created else None
        if note:
            result.notes.append(note)
        results.append(result)
    return results
