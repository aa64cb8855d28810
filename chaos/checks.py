"""What a chaos run checks at the end: nothing lost, stuck or stored twice, every prompt
executed once (or again only after its simulator crashed), the audit trail intact; and
the explanations printed when something is off."""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

from chaos.load import normalise

SETTLED = ("awaiting_review", "approved", "rejected", "failed", "cancelled")
ACTIVE = ("queued", "submitting", "running")


def counts() -> dict[str, int]:
    from django.db.models import Count

    from reviewapp.briefs.models import Generation

    rows = Generation.objects.values("status").annotate(n=Count("id")).order_by()
    return {row["status"]: row["n"] for row in rows}


def measure(exec_logs: list[Path]) -> dict:
    from django.db.models import Count, Q
    from django.utils import timezone

    from reviewapp.audit.sealer import seal_all
    from reviewapp.audit.verify import verify
    from reviewapp.briefs.models import Asset, Generation

    now = timezone.now()
    gens = Generation.objects.all()
    by_status = counts()
    # A held cell left at the end is lost too: nothing would ever release it.
    lost = gens.exclude(status__in=SETTLED).count()
    stuck = (
        gens.filter(status__in=ACTIVE)
        .filter(Q(status="queued", queue_deadline__lt=now) | Q(run_deadline__lt=now))
        .count()
    )
    dup_slots = sum(
        row["n"] - 1
        for row in Asset.objects.values("generation_id", "node_id", "index")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    dup_hashes = sum(
        row["n"] - 1
        for row in Asset.objects.values("generation_id", "sha256")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    reviewable = gens.filter(status__in=("awaiting_review", "approved", "rejected"))
    without_assets = reviewable.filter(assets__isnull=True).count()
    executions, doubled = executions_of(exec_logs)
    same_process = sum(1 for v in doubled.values() if len(set(v)) < len(v))
    seal_all()
    audit = verify()
    if not audit.intact:
        print(f"chaos: audit trail not intact: {audit.problems}", file=sys.stderr)
    return {
        "audit_intact": audit.intact,
        "audit_sealed": audit.sealed,
        "total": sum(by_status.values()),
        "counts": by_status,
        "lost": lost,
        "stuck": stuck,
        "duplicate_assets": dup_slots + dup_hashes,
        "reviewable_without_assets": without_assets,
        "executions": executions,
        "duplicate_executions": len(doubled),
        "duplicate_executions_same_process": same_process,
        "doubled": doubled,
    }


def executions_of(exec_logs: list[Path]) -> tuple[int, dict]:
    """(executions, {prompt id: [(simulator, pid), ...]} of those executed more than
    once). Twice in the same simulator process means it was not a re-run after a crash."""
    runs: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for index, path in enumerate(exec_logs):
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                runs[entry["prompt_id"]].append((index, entry["pid"]))
    total = sum(len(v) for v in runs.values())
    return total, {k: v for k, v in runs.items() if len(v) > 1}


def explain_unsettled() -> list[str]:
    """Row and RQ state of every generation that did not settle (while Redis is up)."""
    import django_rq

    from reviewapp.briefs.models import Generation
    from reviewapp.briefs.worker.enqueue import job_id_for

    queue = django_rq.get_queue("default")
    lines = []
    try:
        waiting = set(queue.job_ids)
        intermediate = set(queue.intermediate_queue.get_job_ids())
        started = set(queue.started_job_registry.get_job_ids())
        scheduled = set(queue.scheduled_job_registry.get_job_ids())
    except Exception as exc:
        return [f"  (Redis unreadable: {exc})"]
    for gen in Generation.objects.exclude(status__in=SETTLED).order_by("pk")[:20]:
        job_id = job_id_for(gen.pk)
        job = queue.fetch_job(job_id)
        status = job.get_status(refresh=False) if job is not None else "no job"
        where = [name for name, ids in (("queue", waiting), ("intermediate", intermediate),
                 ("started", started), ("scheduled", scheduled)) if job_id in ids]  # fmt: skip
        lines.append(
            f"  #{gen.pk} {gen.status} lane {gen.lane or '-'} attempt {gen.attempt} "
            f"updated {gen.updated_at:%X} error {gen.error[:80]!r}; job {status} in "
            f"{where or 'no list'}"
        )
    return lines


def failure_breakdown() -> list[tuple[str, int]]:
    from reviewapp.briefs.models import Generation

    groups: collections.Counter = collections.Counter()
    for error in Generation.objects.filter(status="failed").values_list("error", flat=True):
        groups[normalise(error)] += 1
    return groups.most_common()


def explain_duplicates(doubled: dict) -> list[str]:
    """What the rows say about each prompt that ran twice (for the stderr report)."""
    from reviewapp.briefs.models import Generation

    lines = []
    for prompt_id, runs in sorted(doubled.items()):
        gen = Generation.objects.filter(prompt_id=prompt_id).first()
        where = ", ".join(f"sim{i}/pid{pid}" for i, pid in runs)
        state = f"#{gen.pk} {gen.status} attempt {gen.attempt}" if gen else "no generation"
        lines.append(f"  {prompt_id}: {where}; {state}")
    return lines
