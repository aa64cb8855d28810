"""What a workflow's two files must be before they are accepted: the one place of those rules.

The loader (``workflows/`` + ``params/``) and the admin import both read files with
``parse_document`` and check them with ``Contract.from_schema`` and ``Contract.check_graph``,
which apply the rules below. Whatever passes renders its brief form, validates briefs and shows
in a version diff; whatever fails gets one message per problem, naming the file, property,
keyword or node.

References: a schema may only point inside itself (``"$ref": "#/$defs/size"``). Validators are
built with a registry that refuses to retrieve anything, so even a reference that slipped past
the import check (an old stored row) never opens a URL or a file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from .errors import ContractError

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
# Real graphs and schemas are a handful of levels deep; a limit far below Python's recursion
# limit keeps deepcopy, the JSON Schema checks and the database's JSON encoder safe.
MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 40
MAX_ID_LENGTH = 64
MAX_TITLE_LENGTH = 200  # Workflow.title

# ComfyUI numbers its nodes; exports from subgraphs join ids with ':' ("12:3").
NODE_ID_RE = re.compile(r"[A-Za-z0-9_]+(?::[A-Za-z0-9_]+)*")
PROPERTY_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
DIALECT = "https://json-schema.org/draft/2020-12/schema"
FORM_TYPES = ("integer", "number", "string", "boolean")
REFERENCE_KEYWORDS = ("$ref", "$dynamicRef")
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum")


def _refuse_retrieval(uri: str):
    raise NoSuchResource(ref=uri)


# Resolves only what the schema itself (and the bundled meta-schemas) contain.
OFFLINE = Registry(retrieve=_refuse_retrieval)


def make_validator(schema: Mapping) -> Draft202012Validator:
    """A validator that can never fetch a URL or read a file for a ``$ref``."""
    return Draft202012Validator(schema, registry=OFFLINE)


def is_link(value: Any) -> bool:
    """True for an API-format link ``[source_node_id, output_index]``."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def shown(text: Any, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short: names in bad files can be megabytes long."""
    text = str(text)
    return f"'{text[:limit]}…'" if len(text) > limit else f"'{text}'"


def pointer(path: tuple) -> str:
    """A JSON Pointer (RFC 6901) to ``path``, for messages: ``/properties/width/$ref``."""
    parts = (str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return "/" + "/".join(p if len(p) <= 40 else p[:40] + "…" for p in parts)


# -- files ---------------------------------------------------------------------------------


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NotFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(f"{text[:20]} is too large a number")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _NotFinite(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def parse_document(raw: bytes, label: str) -> dict:
    """The JSON object in ``raw`` (the bytes of the file ``label``), or ContractError."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        limit = MAX_DOCUMENT_BYTES // (1024 * 1024)
        raise ContractError([f"{label} is larger than {limit} MiB; is it the right file?"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(
            [f"{label} is not UTF-8 text (byte {exc.start + 1} cannot be decoded)"]
        ) from None
    try:
        value = json.loads(
            text.removeprefix("\ufeff"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError:
        raise ContractError([f"{label} is nested far too deeply"]) from None
    except _NotFinite as exc:
        raise ContractError([f"{label} is not valid JSON: {exc}"]) from None
    except json.JSONDecodeError as exc:
        raise ContractError(
            [f"{label} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
        ) from None
    if not isinstance(value, dict):
        raise ContractError([f"{label} must be a JSON object ({{...}}), not {_kind(value)}"])
    problems = structure_problems(value, label)
    if problems:
        raise ContractError(problems)
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return "a number"


def _walk(value: Any) -> Iterator[tuple[tuple, Any]]:
    """Every (path, value) in a JSON document, without recursion."""
    stack = [((), value)]
    while stack:
        path, item = stack.pop()
        yield path, item
        if isinstance(item, dict):
            stack.extend(((*path, k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))


def structure_problems(value: Any, label: str) -> list[str]:
    """Too deep, or text a database cannot store (NUL, lone surrogates)."""
    stack = [((), value)]
    problems: list[str] = []
    while stack:
        path, item = stack.pop()
        if len(path) > MAX_DEPTH:
            return [f"{label} is nested more than {MAX_DEPTH} levels deep (at {pointer(path)})"]
        if isinstance(item, dict):
            for key, child in item.items():
                problems.extend(_text_problems(key, label, (*path, key)))
                stack.append(((*path, key), child))
        elif isinstance(item, list):
            stack.extend(((*path, i), child) for i, child in enumerate(item))
        else:
            problems.extend(_text_problems(item, label, path))
        if len(problems) >= 5:
            break
    return problems


def _text_problems(text: Any, label: str, path: tuple) -> list[str]:
    if not isinstance(text, str):
        return []
    if "\x00" in text:
        return [f"{label} contains a NUL character (at {pointer(path)})"]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return [f"{label} contains text that is not valid Unicode (at {pointer(path)})"]
    return []


# -- graphs --------------------------------------------------------------------------------


def graph_problems(graph: Any) -> list[str]:
    """The graph is an object of nodes, each with a plain id, a class_type and inputs."""
    if not isinstance(graph, Mapping) or not graph:
        return ["the graph must be a non-empty object of nodes"]
    if "nodes" in graph and "links" in graph:
        return ["the graph is in ComfyUI's UI format; export it with 'Export (API)' instead"]
    problems: list[str] = []
    for node_id, node in graph.items():
        if not _plain(node_id, NODE_ID_RE):
            problems.append(
                f"node id {shown(node_id)} must be letters, digits or '_' "
                f"(at most {MAX_ID_LENGTH} characters)"
            )
            continue
        if not isinstance(node, Mapping):
            problems.append(f"node {node_id} must be an object with 'class_type' and 'inputs'")
            continue
        class_type = node.get("class_type")
        if class_type is None:
            problems.append(f"node {node_id} has no class_type")
        elif not isinstance(class_type, str) or not class_type.strip():
            problems.append(f"node {node_id}: 'class_type' must be the name of a node class")
        elif len(class_type) > MAX_TITLE_LENGTH:
            problems.append(f"node {node_id}: 'class_type' {shown(class_type)} is too long")
        inputs = node.get("inputs")
        if inputs is None:
            problems.append(f"node {node_id} has no 'inputs' object")
        elif not isinstance(inputs, Mapping):
            problems.append(
                f"node {node_id}: 'inputs' must be an object of input names to values, "
                f"not {_kind(inputs)}"
            )
        else:
            for name, value in inputs.items():
                if is_link(value) and value[0] not in graph:
                    problems.append(
                        f"node {node_id}: input {shown(name)} links to node {shown(value[0])}, "
                        "which is not in the graph"
                    )
    return problems


# -- schemas -------------------------------------------------------------------------------


def schema_problems(schema: Mapping) -> list[str]:
    """Rules beyond JSON Schema's own meta-schema: references stay inside the document, and
    every property is one the brief form can show. Robust to any input shape."""
    problems = reference_problems(schema)
    dialect = schema.get("$schema", DIALECT)
    if not isinstance(dialect, str) or dialect.rstrip("#") != DIALECT:
        problems.append(f"'$schema' must be {DIALECT!r} (JSON Schema 2020-12)")
    title = schema.get("x-title")
    if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE_LENGTH):
        problems.append(f"'x-title' must be text of at most {MAX_TITLE_LENGTH} characters")
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, prop in properties.items():
            if not _plain(name, PROPERTY_NAME_RE):
                problems.append(
                    f"property name {shown(name)} must start with a letter and hold only "
                    f"letters, digits and '_' (at most {MAX_ID_LENGTH} characters)"
                )
            elif isinstance(prop, Mapping):
                problems.extend(property_problems(name, prop))
    return problems


def reference_problems(schema: Mapping) -> list[str]:
    """``$ref``/``$dynamicRef`` that leave the document, and ``$id`` below the root (it would
    move the base that references resolve against)."""
    problems = []
    for path, value in _walk(schema):
        if not path or not isinstance(value, str):
            continue
        keyword, where = path[-1], _parent(path)
        if keyword in REFERENCE_KEYWORDS and not value.startswith("#"):
            problems.append(
                f"'{keyword}' at {where} points outside the schema ({shown(value, 80)}); "
                "only references inside the schema, starting with '#', are allowed"
            )
        elif keyword == "$id" and len(path) > 1:
            problems.append(f"'$id' at {where}: only the schema's root may set '$id'")
    return problems


def reference_cycle_problems(schema: Mapping) -> list[str]:
    """Internal references that point nowhere, or that lead back to themselves (validating
    would then recurse without end). Call after ``reference_problems`` found nothing, so that
    every reference resolves against the root."""
    resolver = OFFLINE.resolver_with_root(DRAFT202012.create_resource(schema))
    where: dict[str, tuple] = {}
    targets: dict[str, Any] = {}
    problems = []
    for path, ref in _walk(schema):
        if not _is_reference(path, ref) or ref in where:
            continue
        where[ref] = path
        try:
            targets[ref] = resolver.lookup(ref).contents
        except Unresolvable:
            problems.append(
                f"'{path[-1]}' at {_parent(path)} points to {shown(ref, 80)}, "
                "which is not in the schema"
            )
    if problems:
        return problems
    # The references inside each reference's target: a cycle there is endless recursion.
    leads_to = {
        ref: {v for p, v in _walk(target) if _is_reference(p, v)} for ref, target in targets.items()
    }
    for start in leads_to:
        seen, todo = set(), [start]
        while todo:
            for ref in leads_to.get(todo.pop(), ()):
                if ref == start:
                    path = where[start]
                    return [
                        f"'{path[-1]}' at {_parent(path)} leads back to itself; "
                        "references must not go round in a circle"
                    ]
                if ref not in seen:
                    seen.add(ref)
                    todo.append(ref)
    return []


def _parent(path: tuple) -> str:
    return pointer(path[:-1]) if len(path) > 1 else "the root"


def _is_reference(path: tuple, value: Any) -> bool:
    return bool(path) and path[-1] in REFERENCE_KEYWORDS and isinstance(value, str)


def _literal(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 20 else text[:20] + "…"


def _plain(name: Any, pattern: re.Pattern) -> bool:
    return isinstance(name, str) and len(name) <= MAX_ID_LENGTH and bool(pattern.fullmatch(name))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fits(kind: str, value: Any) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return _is_number(value)
    if kind == "string":
        return isinstance(value, str)
    return isinstance(value, bool)


def property_problems(name: str, prop: Mapping) -> list[str]:
    """One property's form-facing rules: a single scalar type, numeric order, bounds that
    leave some value, choices and default of the declared type."""
    where = f"property {name!r}"
    problems = []
    kind = prop.get("type")
    if kind is None:
        problems.append(f"{where} has no 'type' (one of {', '.join(FORM_TYPES)})")
    elif not isinstance(kind, str) or kind not in FORM_TYPES:
        what = "a list of types" if isinstance(kind, list) else f"type {shown(kind)}"
        problems.append(
            f"{where}: 'type' must be one of {', '.join(FORM_TYPES)}; "
            f"the brief form cannot show {what}"
        )
        kind = None
    if "x-order" in prop and not _is_number(prop["x-order"]):
        problems.append(f"{where}: 'x-order' must be a number")
    fmt = prop.get("format")
    if fmt == "x-image" and kind != "string":
        problems.append(f'image property {name!r} must have "type": "string"')
    if fmt == "x-image" and ("default" in prop or "enum" in prop or "const" in prop):
        # Its value names a stored file the worker uploads: only an operator's upload may
        # set it, never a name written into the schema (another brief's image, say).
        problems.append(
            f"image property {name!r} may not have a 'default', 'enum' or 'const': "
            "its image comes from the operator's upload"
        )
    if fmt == "x-color" and kind != "integer":
        problems.append(f'colour property {name!r} must have "type": "integer"')
    if kind in ("integer", "number"):
        problems.extend(_bound_problems(where, kind, prop))
    low, high = prop.get("minLength"), prop.get("maxLength")
    if _is_number(low) and _is_number(high) and low > high:
        problems.append(f"{where}: 'minLength' ({low}) is greater than 'maxLength' ({high})")
    if "enum" in prop:
        problems.extend(_enum_problems(where, kind, prop["enum"]))
    if "default" in prop and kind and not _fits(kind, prop["default"]):
        problems.append(f"{where}: 'default' must be of type {kind}")
    return problems


def _bound_problems(where: str, kind: str, prop: Mapping) -> list[str]:
    problems = []
    bounds = {}
    for key in (*_LOWER_BOUNDS, *_UPPER_BOUNDS):
        if key not in prop:
            continue
        value = prop[key]
        if not _is_number(value):
            problems.append(f"{where}: '{key}' must be a number")
        elif kind == "integer" and not _fits("integer", value):
            problems.append(f"{where}: '{key}' of an integer must be a whole number")
        else:
            bounds[key] = value
    for low_key in _LOWER_BOUNDS:
        for high_key in _UPPER_BOUNDS:
            if low_key not in bounds or high_key not in bounds:
                continue
            low, high = bounds[low_key], bounds[high_key]
            strict = low_key.startswith("exclusive") or high_key.startswith("exclusive")
            if low > high or (strict and low == high):
                relation = "below" if strict else "at most"
                problems.append(
                    f"{where}: '{low_key}' ({low}) must be {relation} '{high_key}' ({high})"
                )
    return problems


def _enum_problems(where: str, kind: str | None, enum: Any) -> list[str]:
    if not isinstance(enum, list) or not enum:
        return [f"{where}: 'enum' must be a non-empty list of choices"]
    if kind == "boolean":
        return [f"{where}: a boolean cannot have 'enum' (the form shows a checkbox)"]
    wrong = [v for v in enum if kind and not _fits(kind, v)]
    if wrong:
        listed = ", ".join(_literal(v) for v in wrong[:5])
        return [f"{where}: 'enum' holds values that are not of type {kind}: {listed}"]
    return []


def value_problems(validator: Draft202012Validator, properties: Mapping) -> list[str]:
    """Each property's ``default`` and ``enum`` choices satisfy the property's own rules: the
    form offers them, so a brief must be able to use them."""
    problems = []
    for name, prop in properties.items():
        candidates = [("'default'", prop["default"])] if "default" in prop else []
        for choice in prop.get("enum", []):
            candidates.append((f"'enum' choice {_literal(choice)}", choice))
        for label, value in candidates:
            messages = [
                error.message
                for error in validator.iter_errors({name: value})
                if error.path and error.path[0] == name
            ]
            if messages:
                problems.append(f"property {name!r}: {label} is not allowed: {messages[0]}")
    return problems
