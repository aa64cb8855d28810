from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def param_rows(params: dict, schema: dict) -> list[tuple[str, str]]:
    """Parameters as (label, display value) in the schema's order, colours as swatches."""
    props = schema.get("properties", {})
    order = sorted(params, key=lambda k: (props.get(k, {}).get("x-order", 1000), k))
    rows = []
    for name in order:
        spec = props.get(name, {})
        value = params[name]
        if spec.get("format") == "x-color" and isinstance(value, int):
            hex_value = f"#{value:06x}"
            # An SVG fill, not a style attribute: the Content-Security-Policy refuses those.
            shown = format_html(
                '<svg class="swatch" viewBox="0 0 1 1" aria-hidden="true">'
                '<rect width="1" height="1" fill="{}"/></svg> {}',
                hex_value,
                hex_value,
            )
        elif spec.get("format") == "x-image":
            shown = str(value).rsplit("/", 1)[-1]
        else:
            shown = value
        rows.append((spec.get("title") or name, shown))
    return rows


@register.filter
def seconds(value: float) -> str:
    """A span of a run: hundredths while it is short (ingest, a quick swatch), whole
    seconds and minutes once hundredths would be noise."""
    if value < 10:
        return f"{value:.2f} s"
    if value < 90:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s"
