"""A campaign's variant plan: read from a matrix (axes) or from rows (CSV or JSONL), kept
as JSON on the campaign, expanded into cells, and every cell checked against the contract.

The stored form:
    {"kind": "matrix", "axes": [{"name": ..., "values": [{"label": ..., "params": {...}}]}],
     "fixed": {...}, "template": {"prompt": "a {product} on {scene}"}}
    {"kind": "rows", "columns": [...], "rows": [{"params": {...}, "metadata": {...}}]}
An image value is {"file": NAME} until the file is stored, then its storage name. Random
seeds are drawn when the plan is read, so a stored plan expands the same way every time.

Every problem names where it is (axis, row, cell) and the field; nothing here touches the
database.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django import forms as django_forms

from comfybridge.contract import IMAGE_FORMAT
from comfybridge.errors import ParamsInvalid
from reviewapp.briefs.forms import field_for

MAX_AXES = 8
# Problems listed before "and N more": enough to see the pattern, not a wall of text.
SHOWN_PROBLEMS = 20
SEED_MAX = 2147483647


class PlanInvalid(Exception):
    """The plan cannot run as given. `problems` each name the place and the field."""

    def __init__(self, problems: list[str], *, total: int | None = None):
        self.problems = problems[:SHOWN_PROBLEMS]
        self.total = total if total is not None else len(problems)
        more = self.total - len(self.problems)
        text = "; ".join(self.problems) + (f"; and {more} more" if more > 0 else "")
        super().__init__(text)


@dataclass
class CellSpec:
    index: int
    coords: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        """How a problem names this cell: its number and coordinates, or its row."""
        if self.coords:
            shown = ", ".join(f"{k}={v}" for k, v in self.coords.items())
            return f"cell {self.index + 1} ({shown})"
        return f"row {self.index + 1}"


# -- reading values --------------------------------------------------------------------


def _convert(contract, name: str, value, files: set[str]):
    """`value` for property `name` as the contract wants it: text is read the way the
    brief form reads it (so "#ff8000" is a colour, "1024" an integer); an image names a
    file of the upload. Raises ValueError with the message."""
    spec = contract.properties[name]
    if spec.get("format") == IMAGE_FORMAT:
        if isinstance(value, dict) and set(value) == {"file"}:
            value = value["file"]
        if not isinstance(value, str) or not value:
            raise ValueError("name an image file")
        if value not in files:
            raise ValueError(f"no file named {value!r} was uploaded")
        return {"file": value}
    if isinstance(value, str) and spec.get("type") != "string":
        # Read only (text to a value); the bounds are the contract's to check, in its words.
        formfield = field_for(name, spec, required=False)
        try:
            if isinstance(formfield, django_forms.TypedChoiceField):
                converted = formfield.coerce(value.strip()) if value.strip() else None
            else:
                converted = formfield.to_python(value)
        except django_forms.ValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from None
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not a {spec.get('type', 'value')}") from None
        if converted is None:
            raise ValueError("is empty")
        return converted
    return value


def _known_list(contract) -> str:
    return ", ".join(contract.ordered_properties())


# -- matrix ----------------------------------------------------------------------------


def matrix_plan(spec, contract, *, files: set[str] = frozenset(), rng=None) -> dict:
    """The stored plan of a matrix file (see README, "Campaigns"). Raises PlanInvalid."""
    rng = rng or random.SystemRandom()
    if not isinstance(spec, dict):
        raise PlanInvalid(["the matrix must be a JSON object with 'axes'"])
    problems: list[str] = []
    axes_in = spec.get("axes")
    if not isinstance(axes_in, list) or not axes_in:
        raise PlanInvalid(["'axes' must be a non-empty list"])
    if len(axes_in) > MAX_AXES:
        raise PlanInvalid([f"{len(axes_in)} axes; a matrix has at most {MAX_AXES}"])
    axes, names = [], set()
    for number, axis in enumerate(axes_in, 1):
        try:
            parsed = _axis(axis, number, contract, files, rng)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if parsed["name"] in names:
            problems.append(f"axis {parsed['name']!r} appears twice")
        names.add(parsed["name"])
        axes.append(parsed)
    fixed = {}
    fixed_in = spec.get("fixed", {})
    if not isinstance(fixed_in, dict):
        problems.append("'fixed' must be an object of parameter values")
        fixed_in = {}
    for name, value in fixed_in.items():
        if name not in contract.properties:
            problems.append(f"fixed: {name!r} is not a parameter ({_known_list(contract)})")
            continue
        try:
            fixed[name] = _convert(contract, name, value, files)
        except ValueError as exc:
            problems.append(f"fixed: {name}: {exc}")
    template = _template(spec.get("template", {}), contract, names, problems)
    if problems:
        raise PlanInvalid(problems)
    return {"kind": "matrix", "axes": axes, "fixed": fixed, "template": template}


def _axis(axis, number: int, contract, files, rng) -> dict:
    if not isinstance(axis, dict):
        raise ValueError(f"axis {number} must be an object with 'name' and 'values'")
    name = axis.get("name") or axis.get("property")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"axis {number} needs a 'name'")
    name = name.strip()[:60]
    prop = axis.get("property")
    where = f"axis {name!r}"
    if prop is not None and not isinstance(prop, str):
        raise ValueError(f"{where}: 'property' must name one parameter")
    if prop is not None and prop not in contract.properties:
        raise ValueError(f"{where}: {prop!r} is not a parameter ({_known_list(contract)})")
    kinds = [k for k in ("values", "files", "random") if k in axis]
    if len(kinds) != 1:
        raise ValueError(f"{where}: give exactly one of 'values', 'files' or 'random'")
    kind = kinds[0]
    if kind != "values" and prop is None:
        raise ValueError(f"{where}: '{kind}' needs a 'property'")
    values: list[dict] = []
    if kind == "random":
        count = axis["random"]
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
            raise ValueError(f"{where}: 'random' must be a whole number from 1 to 1000")
        spec = contract.properties[prop]
        low, high = int(spec.get("minimum", 0)), int(spec.get("maximum", SEED_MAX))
        if high - low + 1 < count:
            raise ValueError(f"{where}: {prop} has fewer than {count} values")
        drawn: list[int] = []
        while len(drawn) < count:
            seed = rng.randint(low, high)
            if seed not in drawn:
                drawn.append(seed)
        values = [{"label": str(seed), "params": {prop: seed}} for seed in drawn]
    elif kind == "files":
        listed = axis["files"]
        if not isinstance(listed, list) or not listed:
            raise ValueError(f"{where}: 'files' must be a non-empty list of file names")
        for item in listed:
            try:
                value = _convert(contract, prop, item, files)
            except ValueError as exc:
                raise ValueError(f"{where}: {prop}: {exc}") from None
            label = str(item).rsplit("/", 1)[-1].rsplit(".", 1)[0]
            values.append({"label": label, "params": {prop: value}})
    else:
        values = _axis_values(axis["values"], prop, where, contract, files)
    labels = [v["label"] for v in values]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{where}: two values have the same label")
    return {"name": name, "values": values}


def _axis_values(given, prop, where, contract, files) -> list[dict]:
    if isinstance(given, dict):
        pairs = list(given.items())
    elif isinstance(given, list):
        pairs = []
        for item in given:
            if isinstance(item, dict) and "label" in item:
                pairs.append((item["label"], item.get("value", item.get("params"))))
            else:
                pairs.append((None, item))
    else:
        raise ValueError(f"{where}: 'values' must be a list or an object of label: value")
    if not pairs:
        raise ValueError(f"{where}: 'values' is empty")
    values = []
    for label, value in pairs:
        if prop is None:
            # Several parameters per value: {"square": {"width": 1024, "height": 1024}}.
            if not isinstance(value, dict) or not value:
                raise ValueError(
                    f"{where}: without a 'property', each value is an object of parameters"
                )
            params = {}
            for name, item in value.items():
                if name not in contract.properties:
                    raise ValueError(f"{where}: {name!r} is not a parameter")
                try:
                    params[name] = _convert(contract, name, item, files)
                except ValueError as exc:
                    raise ValueError(f"{where}, {label}: {name}: {exc}") from None
        else:
            try:
                params = {prop: _convert(contract, prop, value, files)}
            except ValueError as exc:
                raise ValueError(f"{where}: {prop}: {exc}") from None
        shown = label if label is not None else value
        values.append({"label": str(shown)[:100], "params": params})
    return values


def _template(given, contract, axis_names: set[str], problems: list[str]) -> dict:
    if not isinstance(given, dict):
        problems.append("'template' must be an object of parameter: text")
        return {}
    template = {}
    for name, text in given.items():
        if name not in contract.properties:
            problems.append(f"template: {name!r} is not a parameter")
            continue
        if not isinstance(text, str):
            problems.append(f"template: {name}: must be text")
            continue
        try:
            parts = [p for p in string.Formatter().parse(text) if p[1] is not None]
        except ValueError as exc:
            problems.append(f"template: {name}: {exc} (write a literal brace as {{{{ or }}}})")
            continue
        if any(spec or conversion for _, _, spec, conversion in parts):
            problems.append(
                f"template: {name}: write an axis as {{name}}, without a format or conversion"
            )
            continue
        fields = {field for _, field, _, _ in parts}
        unknown = sorted(f for f in fields if f not in axis_names)
        if unknown:
            problems.append(
                f"template: {name}: {{{unknown[0]}}} is not an axis "
                f"(axes: {', '.join(sorted(axis_names)) or 'none'})"
            )
            continue
        template[name] = text
    return template


# -- rows ------------------------------------------------------------------------------


def rows_plan(data: bytes, filename: str, contract, *, files: set[str] = frozenset()) -> dict:
    """The stored plan of a CSV or JSONL file: one brief per row. Columns that are
    parameters become parameters; the others (SKU, locale, channel) are kept as the
    cell's metadata. An empty CSV field leaves the parameter to its default."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PlanInvalid([f"{filename}: not UTF-8 text"]) from None
    if filename.lower().endswith((".jsonl", ".ndjson")):
        records = list(_jsonl_records(text, filename))
    else:
        records = list(_csv_records(text, filename))
    if not records:
        raise PlanInvalid([f"{filename}: no rows"])
    columns: list[str] = []
    for _, record in records:
        columns.extend(c for c in record if c not in columns)
    if not any(c in contract.properties for c in columns):
        raise PlanInvalid(
            [f"{filename}: no column is a parameter of this workflow ({_known_list(contract)})"]
        )
    rows, problems = [], []
    for number, record in records:
        params, metadata = {}, {}
        for column, value in record.items():
            if column not in contract.properties:
                metadata[column] = value
                continue
            if value == "" or value is None:
                continue
            try:
                params[column] = _convert(contract, column, value, files)
            except ValueError as exc:
                problems.append(f"row {number}, column {column}: {exc}")
        rows.append({"params": params, "metadata": metadata})
    if problems:
        raise PlanInvalid(problems)
    return {"kind": "rows", "columns": columns, "rows": rows}


def _csv_records(text: str, filename: str) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise PlanInvalid([f"{filename}, line 1: {exc}"]) from None
    header = [h.strip() for h in header]
    if any(not h for h in header) or len(set(header)) != len(header):
        raise PlanInvalid([f"{filename}: the first line must name every column, once each"])
    number = 0
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            number += 1
            if len(fields) != len(header):
                raise PlanInvalid(
                    [f"row {number} has {len(fields)} fields; the header has {len(header)}"]
                )
            yield number, dict(zip(header, (f.strip() for f in fields), strict=True))
    except csv.Error as exc:
        raise PlanInvalid([f"{filename}, row {number + 1}: {exc}"]) from None


def _jsonl_records(text: str, filename: str) -> Iterator[tuple[int, dict]]:
    number = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        number += 1
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise PlanInvalid([f"row {number}: not JSON ({exc})"]) from None
        if not isinstance(record, dict):
            raise PlanInvalid([f"row {number}: each line must be a JSON object"])
        yield number, record


# -- counting, expanding, checking -----------------------------------------------------


def cell_count(plan: dict) -> int:
    if plan["kind"] == "rows":
        return len(plan["rows"])
    return math.prod(len(axis["values"]) for axis in plan["axes"])


def describe_count(plan: dict) -> str:
    if plan["kind"] == "rows":
        return f"{len(plan['rows']):,} rows"
    times = " \N{MULTIPLICATION SIGN} "
    sizes = times.join(f"{len(a['values'])} {a['name']}" for a in plan["axes"])
    return f"{sizes} = {cell_count(plan):,} cells"


def check_size(plan: dict, maximum: int) -> None:
    count = cell_count(plan)
    if count > maximum:
        raise PlanInvalid(
            [
                f"{describe_count(plan)}: a campaign has at most {maximum:,} cells "
                "(CAMPAIGN_MAX_CELLS); split it, or ask an admin to raise the cap"
            ]
        )


def expand(plan: dict) -> Iterator[CellSpec]:
    """The cells in order: rows as given; a matrix's Cartesian product, the last axis
    varying fastest."""
    if plan["kind"] == "rows":
        for index, row in enumerate(plan["rows"]):
            yield CellSpec(index, {}, dict(row["metadata"]), dict(row["params"]))
        return
    axes, fixed, template = plan["axes"], plan["fixed"], plan["template"]
    names = [axis["name"] for axis in axes]
    for index, combo in enumerate(itertools.product(*(axis["values"] for axis in axes))):
        params = dict(fixed)
        coords = {}
        for name, value in zip(names, combo, strict=True):
            params.update(value["params"])
            coords[name] = value["label"]
        for prop, text in template.items():
            params[prop] = text.format_map(coords)
        yield CellSpec(index, coords, {}, params)


def checked(cells, contract) -> list[CellSpec]:
    """Every cell's parameters validated (defaults filled in), or PlanInvalid naming
    each cell and field that fails; nothing is partly accepted."""
    problems: list[str] = []
    total = 0
    out = []
    for cell in cells:
        try:
            cell.params = contract.validate(_as_named(cell.params))
        except ParamsInvalid as exc:
            total += 1
            if len(problems) < SHOWN_PROBLEMS:
                detail = "; ".join(
                    f"{name or 'parameters'}: {' '.join(messages)}"
                    for name, messages in exc.errors.items()
                )
                problems.append(f"{cell.where}: {detail}")
            continue
        out.append(cell)
    if total:
        raise PlanInvalid(problems, total=total)
    return out


def _as_named(params: dict) -> dict:
    """Image values still naming an upload ({"file": name}) validate as that name."""
    return {k: v["file"] if isinstance(v, dict) and "file" in v else v for k, v in params.items()}


def referenced_files(plan: dict) -> set[str]:
    found = set()
    for params in _all_params(plan):
        found.update(v["file"] for v in params.values() if isinstance(v, dict) and "file" in v)
    return found


def with_stored_files(plan: dict, stored: Callable[[str], str]) -> dict:
    """The plan with each {"file": name} replaced by `stored(name)` (its storage name)."""
    plan = json.loads(json.dumps(plan))
    for params in _all_params(plan):
        for key, value in params.items():
            if isinstance(value, dict) and "file" in value:
                params[key] = stored(value["file"])
    return plan


def _all_params(plan: dict) -> Iterator[dict]:
    if plan["kind"] == "rows":
        for row in plan["rows"]:
            yield row["params"]
        return
    yield plan["fixed"]
    for axis in plan["axes"]:
        for value in axis["values"]:
            yield value["params"]


def varying_params(plan: dict) -> set[str]:
    """The parameters that differ between cells: a matrix's axes and templates, or the
    columns whose values differ between rows."""
    if plan["kind"] == "matrix":
        names = set(plan["template"])
        for axis in plan["axes"]:
            for value in axis["values"]:
                names.update(value["params"])
        return names
    rows = [row["params"] for row in plan["rows"]]
    keys = set().union(*rows) if rows else set()
    return {k for k in keys if len({json.dumps(r.get(k), sort_keys=True) for r in rows}) > 1}


def stored_files(plan: dict, image_properties) -> set[str]:
    """The storage names of the images a stored plan names."""
    return {
        value
        for params in _all_params(plan)
        for key, value in params.items()
        if key in image_properties and isinstance(value, str)
    }


def in_plan_order(plan: dict, coords: dict, metadata: dict) -> list[tuple[str, str]]:
    """A cell's coordinates, or a row's other columns, as (name, value) in the plan's
    order. Stored JSON keeps no key order on PostgreSQL (jsonb), so anything shown or
    named from them goes through here."""
    if plan["kind"] == "matrix":
        return [(name, coords[name]) for name in axis_names(plan) if name in coords]
    return [(name, metadata[name]) for name in plan.get("columns", []) if name in metadata]


def axis_names(plan: dict) -> list[str]:
    if plan["kind"] == "rows":
        return []
    return [axis["name"] for axis in plan["axes"]]
