"""Parameter contracts: a JSON Schema that bounds a workflow's parameters and binds them to inputs.

A schema is JSON Schema 2020-12 plus one keyword per property, ``x-bind``: the list of graph
inputs the value is written to, each as ``"<node_id>.inputs.<input_name>"``. A property with
``"format": "x-image"`` is an image: the caller uploads it first and binds the returned name;
its optional ``x-formats`` lists the image formats it accepts (a subset of ``IMAGE_FORMATS``,
all of them when absent).

The graph is designed once; ``Contract.patch`` only ever writes values into bound literal inputs.
It never adds, removes or rewires nodes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from . import checks
from .catalog import Catalog
from .checks import is_link
from .errors import ContractError, ParamsInvalid

BIND_KEYWORD = "x-bind"
IMAGE_FORMAT = "x-image"
FORMATS_KEYWORD = "x-formats"
# The image formats an image property may accept, by the names ``x-formats`` uses.
IMAGE_FORMATS = ("png", "jpeg", "webp")

_UNFOLLOWABLE = (
    "this workflow's schema has a reference that cannot be followed; "
    "ask a workflow admin to import a corrected version"
)
_BINDING_RE = re.compile(r"^(?P<node>[^.\s]+)\.inputs\.(?P<input>[^.\s]+)$")
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Which JSON Schema types may feed which ComfyUI literal input types.
_COMPATIBLE = {
    "INT": {"integer"},
    "FLOAT": {"number", "integer"},
    "STRING": {"string"},
    "BOOLEAN": {"boolean"},
    "COMBO": {"string"},
}


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: equal data gives equal bytes."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def checksum(obj: Any) -> str:
    """sha256 hex digest of ``canonical_json(obj)``."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()


@dataclass(frozen=True, order=True)
class Binding:
    """One graph input a property writes to."""

    node_id: str
    input_name: str

    @classmethod
    def parse(cls, text: str) -> Binding:
        match = _BINDING_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not of the form '<node_id>.inputs.<input_name>'")
        return cls(match["node"], match["input"])

    def __str__(self) -> str:
        return f"{self.node_id}.inputs.{self.input_name}"


def _json_types(prop: Mapping) -> set[str]:
    declared = prop.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    values = prop.get("enum", [prop["const"]] if "const" in prop else [])
    names = set()
    for value in values:
        if isinstance(value, bool):
            names.add("boolean")
        elif isinstance(value, int):
            names.add("integer")
        elif isinstance(value, float):
            names.add("number")
        elif isinstance(value, str):
            names.add("string")
    return names


def _format_problems(name: str, prop: Mapping) -> list[str]:
    if FORMATS_KEYWORD not in prop:
        return []
    formats = prop[FORMATS_KEYWORD]
    if prop.get("format") != IMAGE_FORMAT:
        return [f"property {name!r}: '{FORMATS_KEYWORD}' is only for image properties"]
    known = ", ".join(IMAGE_FORMATS)
    if (
        not isinstance(formats, list)
        or not formats
        or any(f not in IMAGE_FORMATS for f in formats)
        or len(set(formats)) != len(formats)
    ):
        return [
            f"property {name!r}: '{FORMATS_KEYWORD}' must be a list of distinct formats among "
            + known
        ]
    return []


class Contract:
    """A validated schema and its bindings. Build it with ``Contract.from_schema``."""

    def __init__(self, schema: dict, bindings: dict[str, tuple[Binding, ...]]):
        self.schema = schema
        self.bindings = bindings
        # Never a bare Draft202012Validator: its default registry fetches any URL a $ref names.
        self._validator = checks.make_validator(schema)
        self._by_target = {b: name for name, targets in bindings.items() for b in targets}

    @classmethod
    def from_schema(cls, schema: Mapping) -> Contract:
        """Check the schema (JSON Schema 2020-12 plus the rules in ``checks``) and parse every
        property's ``x-bind``. Raises ``ContractError`` with every problem found."""
        problems = checks.structure_problems(schema, "the schema")
        if problems:
            raise ContractError(problems)
        schema = copy.deepcopy(dict(schema))
        problems = checks.schema_problems(schema)
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            path = "/".join(str(p) for p in exc.path)
            problems.insert(0, f"invalid JSON Schema at '{path}': {exc.message}")
        if schema.get("type") != "object":
            problems.append('the schema must have "type": "object"')
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            problems.append("the schema must declare its parameters in 'properties'")
            raise ContractError(problems)
        bindings: dict[str, tuple[Binding, ...]] = {}
        claimed: dict[Binding, str] = {}
        for name, prop in properties.items():
            if not isinstance(prop, dict):
                problems.append(f"property {checks.shown(name)} must be an object")
                continue
            raw = prop.get(BIND_KEYWORD)
            if raw is None:
                problems.append(f"property {name!r} has no '{BIND_KEYWORD}'")
                continue
            if not isinstance(raw, list) or not raw:
                problems.append(f"property {name!r}: '{BIND_KEYWORD}' must be a non-empty list")
                continue
            targets = []
            for text in raw:
                if not isinstance(text, str):
                    problems.append(
                        f"property {name!r}: each '{BIND_KEYWORD}' entry must be a string "
                        "like '<node_id>.inputs.<input_name>'"
                    )
                    continue
                try:
                    binding = Binding.parse(text)
                except ValueError as exc:
                    problems.append(f"property {name!r}: {exc}")
                    continue
                if binding in claimed:
                    problems.append(
                        f"property {name!r} binds {binding}, already bound by {claimed[binding]!r}"
                    )
                    continue
                claimed[binding] = name
                targets.append(binding)
            bindings[name] = tuple(targets)
            if prop.get("format") == IMAGE_FORMAT and _json_types(prop) != {"string"}:
                problems.append(f'image property {name!r} must have "type": "string"')
            problems.extend(_format_problems(name, prop))
        required = schema.get("required", [])
        for name in required if isinstance(required, list) else []:
            if isinstance(name, str) and name not in properties:
                problems.append(f"required property {checks.shown(name)} is not in 'properties'")
        if not problems:
            # Only once every reference is known to stay inside: these resolve them.
            problems = checks.reference_cycle_problems(schema)
        if problems:
            raise ContractError(problems)
        contract = cls(schema, bindings)
        problems = checks.value_problems(contract._validator, properties)
        if problems:
            raise ContractError(problems)
        return contract

    # -- describing -----------------------------------------------------------------------

    @property
    def properties(self) -> dict[str, dict]:
        return self.schema["properties"]

    @property
    def required(self) -> list[str]:
        return list(self.schema.get("required", []))

    def ordered_properties(self) -> list[str]:
        """Property names by ``x-order`` (when given), then in schema order: form field order."""
        names = list(self.properties)
        return sorted(names, key=lambda n: (self.properties[n].get("x-order", 1e9), names.index(n)))

    def image_properties(self) -> list[str]:
        """Properties with ``"format": "x-image"``: uploaded first, then bound by name."""
        return [n for n, p in self.properties.items() if p.get("format") == IMAGE_FORMAT]

    def image_formats(self, name: str) -> tuple[str, ...]:
        """The formats image property ``name`` accepts (its ``x-formats``, else all)."""
        return tuple(self.properties[name].get(FORMATS_KEYWORD, IMAGE_FORMATS))

    def property_for(self, node_id: str, input_name: str) -> str | None:
        """The property bound to that input, or None."""
        return self._by_target.get(Binding(str(node_id), input_name))

    # -- checking against a graph ---------------------------------------------------------

    def check_graph(self, graph: Mapping, catalog: Catalog) -> None:
        """Refuse bindings that do not fit the graph, and node classes the catalogue lacks.

        Raises ``ContractError`` with every problem found, each naming property and target.
        """
        problems = checks.graph_problems(graph)
        if problems:
            # The binding checks below rely on the graph's shape.
            raise ContractError(problems)
        for node_id, node in graph.items():
            class_type = node["class_type"]
            if not catalog.has_class(class_type):
                problems.append(f"node {node_id} has unknown class {class_type!r}")
        for name, targets in self.bindings.items():
            prop = self.properties[name]
            for target in targets:
                problems.extend(self._check_binding(name, prop, target, graph, catalog))
        if problems:
            raise ContractError(problems)

    def _check_binding(
        self, name: str, prop: dict, target: Binding, graph: Mapping, catalog: Catalog
    ) -> list[str]:
        head = f"property {name!r} binds {target}, but"
        node = graph.get(target.node_id)
        if not isinstance(node, Mapping):
            return [f"{head} the graph has no node {target.node_id}"]
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not catalog.has_class(class_type):
            return [f"{head} node {target.node_id} has unknown class {class_type!r}"]
        where = f"node {target.node_id} ({class_type})"
        spec = catalog.input_spec(class_type, target.input_name)
        if spec is None:
            return [f"{head} {where} has no input {target.input_name!r}"]
        if spec.section == "hidden":
            return [f"{head} {target.input_name!r} of {where} is filled in by the server"]
        if spec.is_link:
            return [f"{head} {target.input_name!r} of {where} takes a link of type {spec.type}"]
        current = node.get("inputs", {}).get(target.input_name)
        if is_link(current):
            return [
                f"{head} {target.input_name!r} of {where} is linked to node {current[0]}; "
                "patching it would rewire the graph"
            ]
        problems = []
        types = _json_types(prop)
        allowed = _COMPATIBLE[spec.type]
        if types and not types <= allowed:
            problems.append(
                f"{head} {target.input_name!r} of {where} is {spec.type}, "
                f"which cannot take JSON type {'/'.join(sorted(types))}"
            )
            return problems
        if spec.type == "COMBO" and spec.options and "enum" in prop:
            outside = [v for v in prop["enum"] if v not in spec.options]
            if outside:
                problems.append(
                    f"{head} {where} does not offer {outside!r} for {target.input_name!r}"
                )
        if spec.type in ("INT", "FLOAT"):
            problems.extend(self._check_bounds(head, where, target, prop, spec))
        return problems

    @staticmethod
    def _check_bounds(head, where, target, prop, spec) -> list[str]:
        # The schema may be stricter than the node, never looser: a value the schema accepts
        # must not be one ComfyUI rejects after the form said yes.
        values = [v for v in prop.get("enum", []) if isinstance(v, (int, float))]
        low = min(values) if values else prop.get("minimum", prop.get("exclusiveMinimum"))
        high = max(values) if values else prop.get("maximum", prop.get("exclusiveMaximum"))
        problems = []
        if spec.minimum is not None and low is not None and low < spec.minimum:
            problems.append(
                f"{head} {where} accepts {target.input_name!r} from {spec.minimum}, "
                f"and the schema allows {low}"
            )
        if spec.maximum is not None and high is not None and high > spec.maximum:
            problems.append(
                f"{head} {where} accepts {target.input_name!r} up to {spec.maximum}, "
                f"and the schema allows {high}"
            )
        return problems

    # -- parameters -----------------------------------------------------------------------

    def with_defaults(self, params: Mapping) -> dict:
        """A copy of ``params`` with each missing property's schema default filled in."""
        filled = dict(params)
        for name, prop in self.properties.items():
            if name not in filled and "default" in prop:
                filled[name] = copy.deepcopy(prop["default"])
        return filled

    def validate(self, params: Mapping) -> dict:
        """Params with defaults filled in, or ``ParamsInvalid`` with messages per property."""
        if not isinstance(params, Mapping):
            raise ParamsInvalid({"": ["parameters must be an object"]})
        filled = self.with_defaults(params)
        errors: dict[str, list[str]] = {}
        try:
            found = sorted(self._validator.iter_errors(filled), key=lambda e: list(e.path))
        except (Unresolvable, RecursionError):
            # Only a schema stored before references were checked gets here; the registry
            # refused to look outside it, and nothing of what it pointed at is shown.
            raise ParamsInvalid({"": [_UNFOLLOWABLE]}) from None
        for error in found:
            for key, message in self._describe(error, filled):
                messages = errors.setdefault(key, [])
                if message not in messages:
                    messages.append(message)
        if errors:
            raise ParamsInvalid(errors)
        # JSON Schema counts 30.0 as an integer; ComfyUI's INT inputs want 30.
        for name, value in filled.items():
            prop = self.properties.get(name, {})
            if isinstance(value, float) and value.is_integer() and _json_types(prop) == {"integer"}:
                filled[name] = int(value)
        return filled

    def _describe(self, error, instance: Mapping) -> Iterable[tuple[str, str]]:
        if error.path:
            key = str(error.path[0])
            if error.validator == "maxLength" and isinstance(error.instance, str):
                yield (
                    key,
                    (
                        f"is {len(error.instance)} characters long; "
                        f"the maximum is {error.validator_value}"
                    ),
                )
            elif error.validator == "minLength" and isinstance(error.instance, str):
                yield key, f"must be at least {error.validator_value} characters long"
            else:
                yield key, error.message
        elif error.validator == "required":
            for name in error.validator_value:
                if name not in instance:
                    yield name, "This parameter is required."
        elif error.validator == "additionalProperties":
            known = set(self.properties)
            for name in sorted(set(instance) - known):
                yield "", f"unknown parameter {name!r}"
        else:
            yield "", error.message

    def patch(self, graph: Mapping, params: Mapping) -> dict:
        """A deep copy of ``graph`` with each parameter written into its bound inputs.

        Only literal inputs are written; a binding that meets a link or a missing node raises
        ``ContractError`` rather than changing the graph's shape. Pass validated params.
        """
        unknown = sorted(set(params) - set(self.bindings))
        if unknown:
            raise ParamsInvalid({"": [f"unknown parameter {name!r}" for name in unknown]})
        patched = copy.deepcopy(dict(graph))
        for name, value in params.items():
            for target in self.bindings[name]:
                node = patched.get(target.node_id)
                if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
                    raise ContractError(
                        [f"property {name!r} binds {target}, but the graph has no such node"]
                    )
                if is_link(node["inputs"].get(target.input_name)):
                    raise ContractError(
                        [f"property {name!r} binds {target}, which is a link; refusing to rewire"]
                    )
                node["inputs"][target.input_name] = copy.deepcopy(value)
        return patched

    def prepare(self, graph: Mapping, params: Mapping) -> dict:
        """``patch(graph, validate(params))``."""
        return self.patch(graph, self.validate(params))


def stamp_save_prefixes(graph: Mapping, nonce: str) -> dict:
    """A deep copy where every SaveImage ``filename_prefix`` ends with ``_<nonce>``.

    ComfyUI caches by inputs: an identical resubmission executes nothing and reports the earlier
    run's files. A per-run nonce in the prefix makes SaveImage run again and write new files, so
    a run never hands back another run's image.
    """
    if not _NONCE_RE.match(nonce):
        raise ValueError("nonce must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    stamped = copy.deepcopy(dict(graph))
    for node in stamped.values():
        if isinstance(node, dict) and node.get("class_type") == "SaveImage":
            inputs = node.setdefault("inputs", {})
            prefix = inputs.get("filename_prefix", "ComfyUI")
            if isinstance(prefix, str):
                inputs["filename_prefix"] = f"{prefix}_{nonce}"
    return stamped
