"""`manage.py submit_campaign`, run on the examples the README shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from reviewapp.briefs.models import Generation, Upload
from reviewapp.campaigns.models import Campaign, Cell

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "campaigns"


def run(*args) -> str:
    import io

    out = io.StringIO()
    call_command("submit_campaign", *args, stdout=out)
    return out.getvalue()


def test_the_readme_matrix_submits_twelve_mockups(operator, workflows):
    out = run(
        "--workflow", "product_mockup", "--user", operator.username,
        "--matrix", str(EXAMPLES / "mockups.json"),
    )  # fmt: skip
    campaign = Campaign.objects.get()
    assert out.strip() == f"campaign {campaign.pk}: 12 cells, running"
    assert campaign.title == "Spring mockups"
    assert campaign.breaker_min_decided == 6
    assert [r["name"] for r in campaign.renditions] == ["square", "thumb"]
    cells = list(Cell.objects.filter(campaign=campaign).select_related("brief"))
    assert cells[0].coords == {"product": "mug", "scene": "sand"}
    assert cells[0].brief.params["scene"] == 0xE8D5B0
    # Three product shots, stored once each however many cells use them.
    assert Upload.objects.count() == 3
    assert len({c.brief.params["product"] for c in cells}) == 3
    assert Generation.objects.filter(lane=campaign.lane, status="held").count() == 12


def test_the_readme_rows_carry_their_other_columns(operator, workflows):
    out = run(
        "--workflow", "color_swatch", "--user", operator.username,
        "--rows", str(EXAMPLES / "swatches.csv"),
    )  # fmt: skip
    assert out.strip().endswith(": 5 cells, running")
    cells = list(Cell.objects.select_related("brief"))
    assert cells[2].metadata == {"sku": "SW-002", "locale": "en-GB"}
    assert cells[2].brief.params == {"color": 0x3366CC, "width": 512, "height": 256,
                                     "blur_radius": 1}  # fmt: skip


def test_a_bad_row_names_row_and_column_and_submits_nothing(operator, workflows, tmp_path):
    rows = tmp_path / "bad.csv"
    rows.write_text("sku,color,width\nA,#FF0000,256\nB,orange,256\nC,#00FF00,99999\n")
    with pytest.raises(CommandError) as exc:
        run("--workflow", "color_swatch", "--user", operator.username, "--rows", str(rows))
    assert str(exc.value) == (
        f"{rows}: nothing was submitted:\n  row 2, column color: Enter a colour as #rrggbb."
    )
    rows.write_text("sku,color,width\nA,#FF0000,256\nC,#00FF00,99999\n")
    with pytest.raises(CommandError) as exc:
        run("--workflow", "color_swatch", "--user", operator.username, "--rows", str(rows))
    assert "row 2: width: 99999 is greater than the maximum of 1024" in str(exc.value)
    assert not Campaign.objects.exists() and not Generation.objects.exists()


def test_a_matrix_naming_a_missing_file_is_refused(operator, workflows, tmp_path):
    spec = json.loads((EXAMPLES / "mockups.json").read_text())
    spec["axes"][0]["files"] = ["mug.png", "../secret.png"]
    (tmp_path / "m.json").write_text(json.dumps(spec))
    (tmp_path / "mug.png").write_bytes((EXAMPLES / "mug.png").read_bytes())
    with pytest.raises(CommandError) as exc:
        run("--workflow", "product_mockup", "--user", operator.username,
            "--matrix", str(tmp_path / "m.json"))  # fmt: skip
    assert "axis 'product': product: no file named '../secret.png' was uploaded" in str(exc.value)


def test_only_operators_submit(reviewer, workflows):
    with pytest.raises(CommandError, match="only operators make campaigns"):
        run("--workflow", "color_swatch", "--user", reviewer.username,
            "--rows", str(EXAMPLES / "swatches.csv"))  # fmt: skip
