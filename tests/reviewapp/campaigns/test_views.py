"""The campaign pages as an operator and a reviewer use them."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from reviewapp.briefs.models import Generation
from reviewapp.campaigns.models import Campaign, Cell
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "campaigns"


def image(name):
    return SimpleUploadedFile(name, (EXAMPLES / name).read_bytes(), content_type="image/png")


def builder_post(**overrides):
    data = {
        "title": "Mockups",
        "plan_kind": "builder",
        "values-scene": "sand = #E8D5B0\nsage = #9CAF88\nstudio = #E6E6E6\nnight = #1B2631",
        "values-seed": "77",
        "values-width": "768",
        "values-height": "768",
        "files-product": [image("mug.png"), image("tote.png"), image("cap.png")],
    }
    data.update(overrides)
    return data


@pytest.fixture
def as_operator(client, operator):
    client.login(username=operator.username, password=PASSWORD)
    return client


def test_an_operator_builds_a_matrix_previews_it_and_submits(as_operator, workflows):
    url = reverse("campaign_new", args=["product_mockup"])
    assert as_operator.get(url).status_code == 200
    response = as_operator.post(url, builder_post())
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response.url == f"/campaigns/{campaign.pk}/"
    page = as_operator.get(response.url).content.decode()
    assert "12 cells" in page
    assert "3 product \N{MULTIPLICATION SIGN} 4 scene = 12 cells" in page
    assert "No estimate yet" in page
    assert not Generation.objects.exists()  # a draft runs nothing
    response = as_operator.post(reverse("campaign_submit", args=[campaign.pk]))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "running"
    cells = Cell.objects.filter(campaign=campaign).select_related("brief")
    assert cells.count() == 12
    assert cells[5].coords == {"product": "tote", "scene": "sage"}
    assert cells[5].brief.params["scene"] == 0x9CAF88
    page = as_operator.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'data-count="held">12<' in page
    status = as_operator.get(reverse("campaign_status", args=[campaign.pk])).json()
    assert status["counts"]["held"] == 12 and status["status"] == "running"


def test_problems_are_listed_and_nothing_is_created(as_operator, workflows):
    url = reverse("campaign_new", args=["product_mockup"])
    response = as_operator.post(url, builder_post(**{"values-width": "64\n768"}))
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was created" in page
    assert (
        "cell 1 (product=mug, scene=sand, width=64): width: 64 is less than the minimum of 256"
        in page
    )
    assert page.count("is less than the minimum of 256") == 12  # of 24 cells
    assert not Campaign.objects.exists()


def test_a_matrix_needs_an_axis(as_operator, workflows):
    url = reverse("campaign_new", args=["product_mockup"])
    response = as_operator.post(url, builder_post(**{"files-product": [image("mug.png")],
                                                    "values-scene": "#E8D5B0"}))  # fmt: skip
    assert "vary at least one parameter" in response.content.decode()


def test_rows_upload_with_a_zip_of_images(as_operator, workflows, tmp_path):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("mug.png", "cap.png"):
            archive.writestr(f"shots/{name}", (EXAMPLES / name).read_bytes())
    rows = b"sku,product,scene,seed\nM-1,mug.png,#112233,1\nC-1,cap.png,#445566,2\n"
    response = as_operator.post(
        reverse("campaign_new", args=["product_mockup"]),
        {
            "plan_kind": "rows",
            "plan_file": SimpleUploadedFile("rows.csv", rows, content_type="text/csv"),
            "images": SimpleUploadedFile("shots.zip", buffer.getvalue()),
        },
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.kind == "rows" and campaign.cell_count == 2
    assert campaign.plan["rows"][1]["metadata"] == {"sku": "C-1"}


def test_another_operator_cannot_see_it_and_a_reviewer_can_pause_it(
    client, operator, reviewer, workflows
):
    from .helpers import swatch_campaign

    campaign = swatch_campaign(operator, 3)
    other = make_user("oscar", "operator")
    client.login(username=other.username, password=PASSWORD)
    assert client.get(f"/campaigns/{campaign.pk}/").status_code == 404
    assert client.post(reverse("campaign_pause", args=[campaign.pk])).status_code == 404
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(reverse("campaign_pause", args=[campaign.pk]), {"reason": "off-brand"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == ("paused", "off-brand")
    response = client.post(
        reverse("campaign_limits", args=[campaign.pk]),
        {"breaker_min_decided": "5", "breaker_max_reject_pct": "30", "gpu_budget_s": ""},
    )
    campaign.refresh_from_db()
    assert (campaign.breaker_min_decided, campaign.breaker_max_reject_rate) == (5, 0.3)
