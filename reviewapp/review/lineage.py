"""A brief's generations as a tree (regenerations are children), with what changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from reviewapp.briefs.models import Generation


@dataclass
class Node:
    generation: Generation
    changes: list[tuple[str, object, object]]
    children: list[Node] = field(default_factory=list)


def param_changes(old: Generation | None, new: Generation) -> list[tuple[str, object, object]]:
    """[(name, old, new)] for every parameter that differs, e.g. seed 12 -> 98."""
    if old is None:
        return []
    names = sorted(set(old.params) | set(new.params))
    return [
        (name, old.params.get(name), new.params.get(name))
        for name in names
        if old.params.get(name) != new.params.get(name)
    ]


def lineage_tree(brief) -> list[Node]:
    generations = list(
        brief.generations.select_related("parent")
        .prefetch_related("decisions__actor", "assets")
        .order_by("created_at", "id")
    )
    nodes = {g.pk: Node(g, param_changes(g.parent, g)) for g in generations}
    roots = []
    for g in generations:
        if g.parent_id in nodes:
            nodes[g.parent_id].children.append(nodes[g.pk])
        else:
            roots.append(nodes[g.pk])
    return roots
