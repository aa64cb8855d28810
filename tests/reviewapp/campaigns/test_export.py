"""The approved set: a streamed ZIP whose manifest matches the database."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from reviewapp.briefs.models import Generation
from reviewapp.campaigns import export, scheduler
from reviewapp.review import services as review
from tests.conftest import PASSWORD, run_worker

from .helpers import swatch_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided_campaign(
    operator, reviewer, workflows, rq_queue, sim, django_capture_on_commit_callbacks
):
    campaign = swatch_campaign(
        operator,
        3,
        sizes=(64, 96),
        renditions=[
            {"name": "square", "width": 48, "height": 48, "format": "jpeg"},
            {"name": "wide", "width": 80, "height": 40, "format": "webp"},
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        scheduler.tick()
    run_worker(rq_queue)
    ready = list(Generation.objects.filter(lane=campaign.lane).order_by("id"))
    assert all(g.status == "awaiting_review" for g in ready)
    for generation in ready[:4]:
        review.approve(generation, actor=reviewer)
    review.reject(ready[4], actor=reviewer, tags=["Off-brand"])
    # Settled: decided longer ago than the undo window.
    Generation.objects.filter(lane=campaign.lane).update(
        decided_at=timezone.now() - timedelta(minutes=1)
    )
    return campaign


def read(campaign) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(export.stream(campaign))))


def test_the_zip_holds_the_approved_cells_and_a_manifest_that_matches(decided_campaign, reviewer):
    campaign = decided_campaign
    archive = read(campaign)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["campaign"]["delivered"] == 4
    version = campaign.workflow_version
    assert manifest["campaign"]["checksum"] == version.checksum
    approved = {g.pk: g for g in Generation.objects.filter(lane=campaign.lane, status="approved")}
    assert {entry["generation"] for entry in manifest["cells"]} == set(approved)
    for entry in manifest["cells"]:
        generation = approved[entry["generation"]]
        cell = generation.brief.cell
        assert entry["cell"] == cell.index + 1 and entry["coordinates"] == cell.coords
        assert entry["parameters"] == generation.params
        assert entry["backend_fingerprint"] == generation.backend_fingerprint != ""
        assert entry["approved_by"] == [reviewer.username]
        original, square, wide = entry["files"]
        data = archive.read(original["path"])
        assert hashlib.sha256(data).hexdigest() == original["sha256"]
        asset = generation.assets.get()
        # Delivered without the generation metadata the stored original carries.
        assert original["stored_original_sha256"] == asset.sha256 != original["sha256"]
        with Image.open(io.BytesIO(archive.read(square["path"]))) as img:
            assert (img.format, img.size) == ("JPEG", (48, 48))
        with Image.open(io.BytesIO(archive.read(wide["path"]))) as img:
            assert (img.format, img.size) == ("WEBP", (80, 40))
        assert hashlib.sha256(archive.read(wide["path"])).hexdigest() == wide["sha256"]
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert len(rows) == 12  # 4 cells x (original + 2 renditions)
    assert {r["path"] for r in rows} == {f["path"] for e in manifest["cells"] for f in e["files"]}
    assert archive.namelist()[0].startswith("images/00001_0_64")


def test_an_approval_inside_the_undo_window_waits(decided_campaign):
    campaign = decided_campaign
    Generation.objects.filter(lane=campaign.lane, status="approved").update(
        decided_at=timezone.now()
    )
    assert json.loads(read(campaign).read("manifest.json"))["campaign"]["delivered"] == 0
    assert export.not_yet_settled(campaign) == 4


def test_the_download_and_the_command_write_the_same_set(
    decided_campaign, client, operator, tmp_path
):
    campaign = decided_campaign
    client.login(username=operator.username, password=PASSWORD)
    response = client.get(reverse("campaign_export", args=[campaign.pk]))
    assert response["Content-Type"] == "application/zip"
    downloaded = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    out = tmp_path / "set.zip"
    call_command("export_campaign", campaign.pk, "--out", str(out), stdout=io.StringIO())
    written = zipfile.ZipFile(out)
    assert downloaded.namelist() == written.namelist()
    for name in downloaded.namelist():
        if not name.startswith("manifest"):
            assert downloaded.read(name) == written.read(name)
    assert AuditEvent.objects.filter(action=actions.CAMPAIGN_EXPORTED).count() == 2
