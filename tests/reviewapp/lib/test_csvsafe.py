"""One helper makes every CSV cell safe to open in a spreadsheet."""

import csv
import io

import pytest

from reviewapp.lib import csvsafe


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_that_could_start_a_formula_is_made_text(start):
    assert csvsafe.cell(f"{start}cmd") == f"'{start}cmd"
    assert csvsafe.cell(f"a{start}b") == f"a{start}b"
    assert csvsafe.cell(-3) == -3 and csvsafe.cell(None) is None


def test_writerow_makes_every_cell_safe():
    out = io.StringIO()
    csvsafe.writerow(csv.writer(out), ["=a", 1, "b", "-c"])
    assert out.getvalue() == "'=a,1,b,'-c\r\n"
