from django import forms


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

    MAX_BYTES = 2 * 1024 * 1024

    def clean_slug(self):
        return self.cleaned_data["slug"].lower()

    def _small(self, name):
        upload = self.cleaned_data[name]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("That file is larger than 2 MB; is it the right one?")
        return upload

    def clean_graph(self):
        return self._small("graph")

    def clean_schema(self):
        return self._small("schema")
