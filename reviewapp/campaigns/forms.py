"""The new-campaign page: a matrix built from the workflow's parameters, a matrix file, or
a row file; and the options every campaign has. Each way ends as the same matrix spec or
row file the command line reads (plans.py), so there is one reading of a plan."""

from __future__ import annotations

import json
import random
import re

from django import forms
from django.conf import settings

from comfybridge.contract import IMAGE_FORMAT
from reviewapp.campaigns import inputs, plans, services

# "label = value": the label names the value in the matrix and in prompt templates.
_LABELLED = re.compile(r"^(?P<label>[^=]{1,60}?)\s+=\s+(?P<value>.*)$")


class PlanKind:
    BUILDER = "builder"
    MATRIX_FILE = "matrix_file"
    ROWS = "rows"
    CHOICES = [
        (BUILDER, "Build a matrix here"),
        (MATRIX_FILE, "Upload a matrix file (JSON)"),
        (ROWS, "Upload rows (CSV or JSONL, one brief per row)"),
    ]


class OptionsForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)
    plan_kind = forms.ChoiceField(
        choices=PlanKind.CHOICES, widget=forms.RadioSelect, initial=PlanKind.BUILDER
    )
    canary_size = forms.IntegerField(
        min_value=0,
        required=False,
        label="Canary",
        help_text="Run this many cells first and wait for their review before the rest "
        "(0 or empty: no canary).",
    )
    breaker_min_decided = forms.IntegerField(
        min_value=1, required=False, label="Breaker: after decided cells"
    )
    breaker_max_reject_pct = forms.FloatField(
        min_value=0, max_value=100, required=False, label="Breaker: reject rate above (%)"
    )
    gpu_budget_s = forms.FloatField(
        min_value=0.001,
        required=False,
        label="GPU budget (seconds)",
        help_text="Pause once the campaign's runs have used this much backend time.",
    )

    def options(self) -> services.Options:
        data = self.cleaned_data
        pct = data.get("breaker_max_reject_pct")
        return services.Options(
            title=data.get("title") or "",
            canary_size=data.get("canary_size") or 0,
            breaker_min_decided=data.get("breaker_min_decided"),
            breaker_max_reject_rate=None if pct is None else pct / 100,
            gpu_budget_s=data.get("gpu_budget_s"),
        )


class LimitsForm(forms.Form):
    breaker_min_decided = forms.IntegerField(min_value=1, label="After decided cells")
    breaker_max_reject_pct = forms.FloatField(
        min_value=0, max_value=100, label="Reject rate above (%)"
    )
    gpu_budget_s = forms.FloatField(min_value=0.001, required=False, label="GPU budget (s)")

    def options(self) -> services.Options:
        data = self.cleaned_data
        return services.Options(
            breaker_min_decided=data["breaker_min_decided"],
            breaker_max_reject_rate=data["breaker_max_reject_pct"] / 100,
            gpu_budget_s=data.get("gpu_budget_s"),
        )


def builder_rows(contract, data=None) -> list[dict]:
    """What the builder shows per parameter: its spec, the text typed (or the default,
    and a fresh random seed), whether it takes files or random seeds."""
    rows = []
    for name in contract.ordered_properties():
        spec = contract.properties[name]
        is_image = spec.get("format") == IMAGE_FORMAT
        if data is not None:
            text = data.get(f"values-{name}", "")
            seeds = data.get(f"random-{name}", "")
        else:
            text, seeds = _initial_text(name, spec), ""
        rows.append(
            {
                "name": name,
                "title": spec.get("title") or name,
                "description": spec.get("description", ""),
                "required": name in contract.required,
                "is_image": is_image,
                "is_seed": name == "seed" and spec.get("type") == "integer",
                "text": text,
                "lines": min(8, max(1, text.count("\n") + 1, len(text) // 70 + 1)),
                "random": seeds,
            }
        )
    return rows


def _initial_text(name, spec) -> str:
    if name == "seed" and "default" not in spec:
        low, high = int(spec.get("minimum", 0)), int(spec.get("maximum", plans.SEED_MAX))
        return str(random.randint(low, high))
    if "default" not in spec:
        return ""
    value = spec["default"]
    if spec.get("format") == "x-color" and isinstance(value, int):
        return f"#{value:06X}"
    return str(value)


def builder_spec(contract, data, files) -> tuple[dict, dict[str, bytes]]:
    """The matrix spec the builder's fields describe, and the uploaded images by name.
    One line: a fixed value; several: an axis named after the parameter ("label = value"
    names a value); a text with {axis} in it: a template."""
    axes, fixed, template, named, problems = [], {}, {}, {}, []
    for name in contract.ordered_properties():
        spec = contract.properties[name]
        if spec.get("format") == IMAGE_FORMAT:
            uploaded = files.getlist(f"files-{name}")
            names = []
            for upload in uploaded:
                filename = (upload.name or "image")[:100]
                if upload.size > settings.UPLOAD_MAX_BYTES:
                    problems.append(
                        f"{name}: {filename} is larger than {settings.UPLOAD_MAX_BYTES // 2**20} MB"
                    )
                    continue
                if filename in named:
                    problems.append(f"{name}: two files are named {filename}")
                    continue
                named[filename] = upload.read()
                names.append(filename)
            if len(names) > 1:
                axes.append({"name": name, "property": name, "files": names})
            elif names:
                fixed[name] = {"file": names[0]}
            continue
        lines = [line.strip() for line in data.get(f"values-{name}", "").splitlines()]
        lines = [line for line in lines if line]
        seeds = data.get(f"random-{name}", "").strip()
        if seeds:
            if lines:
                problems.append(f"{name}: give values or a number of random seeds, not both")
                continue
            if not (seeds.isascii() and seeds.isdigit()):
                problems.append(f"{name}: the number of random seeds must be a whole number")
                continue
            axes.append({"name": name, "property": name, "random": int(seeds)})
            continue
        if len(lines) == 1:
            match = _LABELLED.match(lines[0])
            value = match["value"] if match else lines[0]
            if spec.get("type") == "string" and "{" in value:
                template[name] = value
            else:
                fixed[name] = value
        elif len(lines) > 1:
            values = {}
            for line in lines:
                match = _LABELLED.match(line)
                label, value = (match["label"], match["value"]) if match else (line, line)
                if label in values:
                    problems.append(f"{name}: the value {label[:40]!r} is given twice")
                values[label] = value
            axes.append({"name": name, "property": name, "values": values})
    if problems:
        raise plans.PlanInvalid(problems)
    if not axes:
        raise plans.PlanInvalid(
            ["vary at least one parameter: give it several values, one per line, "
             "several images, or a number of random seeds"]
        )  # fmt: skip
    return {"axes": axes, "fixed": fixed, "template": template}, named


def uploaded_images(files, field: str = "images") -> inputs.Sources:
    """Images uploaded beside a plan file: several images, or ZIPs of them; read only
    when the plan names them."""
    sources = inputs.Sources()
    for upload in files.getlist(field):
        filename = (upload.name or "file")[:100]
        if upload.size > settings.UPLOAD_MAX_BYTES * 10:
            raise plans.PlanInvalid([f"{filename} is too large"])
        data = upload.read()
        if filename.lower().endswith(".zip"):
            sources.add(inputs.ZipImages(data, filename), filename)
        else:
            sources.add({filename: data}, filename)
    return sources


def read_plan(kind: str, contract, data, files) -> tuple[dict, dict, dict]:
    """(plan, prepared images, settings from a matrix file) for the chosen way."""
    spec: dict = {}
    if kind == PlanKind.BUILDER:
        spec, named = builder_spec(contract, data, files)
        plan = plans.matrix_plan(spec, contract, files=set(named))
    else:
        upload = files.get("plan_file")
        if upload is None:
            raise plans.PlanInvalid(["choose the file to upload"])
        if upload.size > settings.UPLOAD_MAX_BYTES:
            raise plans.PlanInvalid([f"{upload.name[:100]} is too large"])
        raw = upload.read()
        named = uploaded_images(files)
        if kind == PlanKind.MATRIX_FILE:
            try:
                spec = json.loads(raw.decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise plans.PlanInvalid([f"{upload.name[:100]}: not JSON ({exc})"]) from None
            plan = plans.matrix_plan(spec, contract, files=set(named))
        else:
            plan = plans.rows_plan(raw, upload.name or "rows.csv", contract, files=set(named))
    referenced = plans.referenced_files(plan)
    prepared = inputs.prepare(named, referenced)
    return plan, prepared, spec if isinstance(spec, dict) else {}
