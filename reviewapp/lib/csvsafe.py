"""CSV cells that a spreadsheet shows as text, never runs as a formula.

Excel, LibreOffice and Google Sheets treat a cell starting with = + - @ (and a tab or
carriage return before one) as a formula, so a value someone typed into the app, e.g. a
request header or a reason, could run in the auditor's spreadsheet (CSV injection).
Every CSV export writes its rows through `writerow`.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    """A text value that could start a formula gets a leading apostrophe; others pass."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def writerow(writer, values):
    """csv writer.writerow with every cell made safe."""
    return writer.writerow([cell(value) for value in values])
