from django import forms

from comfybridge import checks
from reviewapp.lib.filters import INVALID_CHOICE, form_problems


class ImportVersionForm(forms.Form):
    """Upload a ComfyUI API-format graph and its parameter schema as a new version."""

    slug = forms.SlugField(
        label="Workflow name",
        max_length=100,
        help_text="An existing name adds a version to it; a new name creates a workflow.",
    )
    graph = forms.FileField(label="Graph (.api.json)", help_text="ComfyUI → Export (API).")
    schema = forms.FileField(label="Parameter schema (.schema.json)")
    publish = forms.BooleanField(
        label="Publish at once", required=False, help_text="Otherwise it is kept as a draft."
    )

    def clean_slug(self):
        return self.cleaned_data["slug"].lower()

    def _contents(self, name) -> bytes:
        # One byte past the limit lets the import name the file that is too large without
        # reading all of it into memory.
        return self.cleaned_data[name].read(checks.MAX_DOCUMENT_BYTES + 1)

    def clean_graph(self):
        return self._contents("graph")

    def clean_schema(self):
        return self._contents("schema")


class DiffChoiceForm(forms.Form):
    """The two versions the workflow page compares (?a=1&b=2); absent: the newest two."""

    a = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="From", error_messages=INVALID_CHOICE
    )
    b = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="To", error_messages=INVALID_CHOICE
    )

    def __init__(self, data, *, numbers: list[int]):
        super().__init__(data)
        choices = [(str(n), f"v{n}") for n in numbers]
        self.fields["a"].choices = self.fields["b"].choices = choices

    def problems(self) -> list[str]:
        return form_problems(self)
