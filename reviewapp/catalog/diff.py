"""A readable difference between two workflow versions: graph and parameter contract."""

from __future__ import annotations

from dataclasses import dataclass, field

# Schema keywords worth showing when they change: the ones that bound cost and meaning.
SCHEMA_KEYS = (
    "type", "title", "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "enum", "minLength", "maxLength", "format", "x-bind",
)  # fmt: skip


@dataclass
class VersionDiff:
    nodes_added: list[tuple[str, str]] = field(default_factory=list)  # (id, class)
    nodes_removed: list[tuple[str, str]] = field(default_factory=list)
    class_changed: list[tuple[str, str, str]] = field(default_factory=list)  # (id, old, new)
    inputs_changed: list[tuple[str, str, str, object, object]] = field(default_factory=list)
    props_added: list[str] = field(default_factory=list)
    props_removed: list[str] = field(default_factory=list)
    props_changed: list[tuple[str, str, object, object]] = field(default_factory=list)
    required_changed: tuple[list[str], list[str]] | None = None

    @property
    def empty(self) -> bool:
        return not any(
            [self.nodes_added, self.nodes_removed, self.class_changed, self.inputs_changed,
             self.props_added, self.props_removed, self.props_changed, self.required_changed]
        )  # fmt: skip


_MISSING = object()


def _order(node_id: str):
    # isdigit() alone also says yes to '²' and '١٢', which int() refuses or misreads.
    plain = node_id.isascii() and node_id.isdigit()
    return (0, int(node_id), "") if plain else (1, 0, node_id)


def _object(value) -> dict:
    # Imports are checked, but a version stored before the checks may hold anything.
    return value if isinstance(value, dict) else {}


def _names(value) -> set:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def diff_versions(old, new) -> VersionDiff:
    """What changed from `old` to `new` (two WorkflowVersions, or anything with
    .graph and .schema)."""
    out = VersionDiff()
    a, b = _object(old.graph), _object(new.graph)
    for node_id in sorted(set(a) | set(b), key=_order):
        if node_id not in a:
            out.nodes_added.append((node_id, _object(b[node_id]).get("class_type", "?")))
            continue
        if node_id not in b:
            out.nodes_removed.append((node_id, _object(a[node_id]).get("class_type", "?")))
            continue
        old_node, new_node = _object(a[node_id]), _object(b[node_id])
        old_class, new_class = old_node.get("class_type"), new_node.get("class_type")
        if old_class != new_class:
            out.class_changed.append((node_id, old_class, new_class))
        old_inputs = _object(old_node.get("inputs"))
        new_inputs = _object(new_node.get("inputs"))
        for name in sorted(set(old_inputs) | set(new_inputs)):
            before, after = old_inputs.get(name, _MISSING), new_inputs.get(name, _MISSING)
            if before != after:
                out.inputs_changed.append(
                    (node_id, new_class or old_class, name, _shown(before), _shown(after))
                )
    pa = _object(_object(old.schema).get("properties"))
    pb = _object(_object(new.schema).get("properties"))
    out.props_added = [p for p in pb if p not in pa]
    out.props_removed = [p for p in pa if p not in pb]
    for prop in (p for p in pb if p in pa):
        for key in SCHEMA_KEYS:
            before = _object(pa[prop]).get(key, _MISSING)
            after = _object(pb[prop]).get(key, _MISSING)
            if before != after:
                out.props_changed.append((prop, key, _shown(before), _shown(after)))
    ra = _names(_object(old.schema).get("required"))
    rb = _names(_object(new.schema).get("required"))
    if ra != rb:
        out.required_changed = (sorted(rb - ra), sorted(ra - rb))
    return out


def _shown(value):
    if value is _MISSING:
        return "(absent)"
    is_link = isinstance(value, list) and len(value) == 2
    if is_link and isinstance(value[0], str) and isinstance(value[1], int):
        return f"link from node {value[0]} output {value[1]}"
    return value
