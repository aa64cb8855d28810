"""Django forms generated from a workflow's JSON Schema (its parameter contract).

enum -> select, bounded numbers -> number inputs with min/max, long text -> textarea,
x-image -> file input, x-color -> colour picker; defaults fill the initial values.
The schema is checked again by the service (and by the job): the form is a
convenience, not the guard.
"""

from __future__ import annotations

import random
import re

from django import forms
from django.conf import settings

from comfybridge.contract import Contract
from comfybridge.errors import ParamsInvalid
from reviewapp.lib import images

# Strings longer than this get a textarea.
TEXTAREA_FROM = 120

# ASCII digits only: int() and float() also accept '+5', '1_0' and other scripts' digits
# ('١٢'); a brief's numbers are written one plain way.
_INTEGER_RE = re.compile(r"-?[0-9]+")
_NUMBER_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_COLOR_RE = re.compile(r"#[0-9A-Fa-f]{6}")


class StrictIntegerField(forms.IntegerField):
    """An integer written as plain ASCII digits with an optional '-'."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        try:
            if not _INTEGER_RE.fullmatch(text):
                raise ValueError
            return int(text)
        except ValueError:  # also more digits than int() converts
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class StrictFloatField(forms.FloatField):
    """A decimal number such as -1.5 or 2e3, in ASCII digits."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        text = str(value).strip()
        if not _NUMBER_RE.fullmatch(text):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return float(text)


class ColorInput(forms.TextInput):
    input_type = "color"


class ColorField(forms.Field):
    """An integer 0xRRGGBB shown as a colour picker (ComfyUI's EmptyImage takes an int)."""

    widget = ColorInput

    def prepare_value(self, value):
        if isinstance(value, int):
            return f"#{value:06x}"
        return value

    def to_python(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if not _COLOR_RE.fullmatch(text):
            raise forms.ValidationError("Enter a colour as #rrggbb.")
        return int(text[1:], 16)


class ImageUploadField(forms.FileField):
    """An input image (uploaded to the backend at run time). Its format is detected from its
    content and must be one of `formats`; it is cleaned into an images.PreparedImage (a
    lossless PNG without metadata), which is what gets stored and sent."""

    def __init__(self, *, formats=images.DEFAULT_FORMATS, **kwargs):
        # Empty files are refused in clean(), with the file's name in the message.
        super().__init__(allow_empty_file=True, **kwargs)
        self.formats = tuple(formats)
        self.widget.attrs["accept"] = ",".join(images.MIME_TYPES[f] for f in self.formats)

    def clean(self, data, initial=None):
        uploaded = super().clean(data, initial)
        if not uploaded:
            return uploaded
        name = (getattr(uploaded, "name", "") or "the file")[:100]
        if uploaded.size > settings.UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                f"{name}: larger than {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB."
            )
        content = uploaded.read()
        uploaded.seek(0)
        try:
            return images.prepare_input(
                content, name, max_pixels=settings.IMAGE_MAX_PIXELS, formats=self.formats
            )
        except images.BadImage as exc:
            raise forms.ValidationError(f"{name}: {exc}.") from None


def field_for(name: str, spec: dict, required: bool) -> forms.Field:
    label = spec.get("title") or name.replace("_", " ").capitalize()
    common = {"label": label, "required": required, "help_text": spec.get("description", "")}
    if "default" in spec:
        common["initial"] = spec["default"]
    kind = spec.get("type")
    fmt = spec.get("format")

    if fmt == "x-image":
        return ImageUploadField(formats=spec.get("x-formats", images.DEFAULT_FORMATS), **common)
    if fmt == "x-color":
        return ColorField(**common)
    if "enum" in spec:
        choices = [(v, str(v)) for v in spec["enum"]]
        coerce = {"integer": int, "number": float}.get(kind, str)
        if not required:
            choices = [("", "—"), *choices]
        return forms.TypedChoiceField(choices=choices, coerce=coerce, empty_value=None, **common)
    if kind == "integer":
        field = StrictIntegerField(
            min_value=spec.get("minimum"), max_value=spec.get("maximum"), **common
        )
        if name == "seed" and "initial" not in common:
            # A fresh random seed per form shown, so two briefs never collide by accident.
            low, high = _seed_range(spec)
            field.initial = lambda: random.randint(low, high)
        return field
    if kind == "number":
        field = StrictFloatField(
            min_value=spec.get("minimum"), max_value=spec.get("maximum"), **common
        )
        field.widget.attrs["step"] = spec.get("multipleOf", "any")
        return field
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if kind == "string":
        max_length = spec.get("maxLength")
        long_text = max_length is None or max_length > TEXTAREA_FROM
        widget = forms.Textarea(attrs={"rows": 3}) if long_text else forms.TextInput
        return forms.CharField(
            max_length=max_length, min_length=spec.get("minLength"), widget=widget,
            strip=False, **{**common, "required": required and spec.get("minLength", 1) > 0},
        )  # fmt: skip
    raise ValueError(f"property {name!r}: type {kind!r} has no form field")


def _seed_range(spec: dict) -> tuple[int, int]:
    # The contract makes integer bounds whole numbers and leaves some value between them.
    high = int(spec.get("maximum", spec.get("exclusiveMaximum", 2**31) - 1))
    low = int(spec.get("minimum", spec.get("exclusiveMinimum", min(0, high) - 1) + 1))
    return low, high


class BriefForm(forms.Form):
    """Base class of the generated forms; `contract` is set on the subclass."""

    contract: Contract

    def clean(self):
        cleaned = super().clean()
        # The schema is checked even when some fields failed, so one submission reports every
        # bad field. A failed field is absent from the params: the schema would only add
        # "required" to its own error, and a whole-brief rule may fail for the same reason.
        failed = set(self.errors)
        try:
            self.contract.validate(self.params())
        except ParamsInvalid as exc:
            for prop, messages in exc.errors.items():
                field = prop if prop in self.fields else None
                if prop in failed or (field is None and failed):
                    continue
                for message in messages:
                    self.add_error(field, message)
        return cleaned

    def params(self) -> dict:
        """The parameters, without the image properties (those come as files)."""
        image_props = set(self.contract.image_properties())
        required = set(self.contract.required)
        out = {}
        for name, value in self.cleaned_data.items():
            if name in image_props:
                continue
            if value is None or (value == "" and name not in required):
                continue
            out[name] = value
        # A placeholder string lets the schema check see required image properties
        # as present; the service replaces it with the stored file's name.
        for name in image_props:
            if self.cleaned_data.get(name):
                out[name] = "pending-upload.png"
        return out

    def files_by_property(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in self.contract.image_properties()
            if self.cleaned_data.get(name)
        }


_form_classes: dict[str, type[BriefForm]] = {}


def form_class_for(version) -> type[BriefForm]:
    """The generated form of a workflow version, built once per process (versions are
    immutable; their checksum names them)."""
    form_class = _form_classes.get(version.checksum)
    if form_class is None:
        form_class = _form_classes[version.checksum] = brief_form_class(version.schema)
    return form_class


def brief_form_class(schema: dict) -> type[BriefForm]:
    contract = Contract.from_schema(schema)
    required = set(contract.required)
    fields = {
        name: field_for(name, contract.properties[name], name in required)
        for name in contract.ordered_properties()
    }
    form_class = type("GeneratedBriefForm", (BriefForm,), {"contract": contract})
    # Set after the class is made: the declarative metaclass would drop a field named like a
    # form attribute ("prefix", "contract"), and a property may be called that.
    form_class.base_fields = form_class.declared_fields = fields
    return form_class
