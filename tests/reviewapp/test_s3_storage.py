"""The whole loop with media on a real S3 server (SeaweedFS): input images, outputs, their
delivery copies and thumbnails land in the bucket, pages serve them behind the app's
permission checks, and a campaign's approved set is exported from there."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from reviewapp.briefs import services as briefs
from reviewapp.briefs.models import Generation
from reviewapp.campaigns import export
from reviewapp.catalog.models import WorkflowVersion
from reviewapp.review import services as review
from tests.conftest import PASSWORD, make_user, run_worker

pytestmark = [pytest.mark.s3, pytest.mark.django_db]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "campaigns"


def keys(s3_media) -> list[str]:
    client, prefix, bucket = s3_media
    found = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("Contents", [])
    return sorted(item["Key"][len(prefix) + 1 :] for item in found)


def read(s3_media, key: str) -> bytes:
    client, prefix, bucket = s3_media
    return client.get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read()


def test_a_brief_runs_with_its_media_in_the_bucket(
    s3_media, client, operator, workflows, rq_queue, sim, settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    version = WorkflowVersion.objects.get(workflow__slug="product_mockup", status="published")
    with (
        open(EXAMPLES / "mug.png", "rb") as product,
        django_capture_on_commit_callbacks(execute=True),
    ):
        brief = briefs.submit_brief(
            version, {"seed": 3}, actor=operator, files={"product": product}
        )
    run_worker(rq_queue)
    generation = brief.generations.get()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    asset = generation.assets.get()
    stored = keys(s3_media)
    assert brief.params["product"] in stored  # the input image
    for name in (asset.file.name, asset.delivery_file.name, asset.thumbnail.name):
        assert name in stored
    assert hashlib.sha256(read(s3_media, asset.file.name)).hexdigest() == asset.sha256
    assert not any(Path(settings.MEDIA_ROOT).rglob("*.png"))  # nothing on local disk
    # Served by the app, to those who may see it, from the bucket.
    client.login(username=operator.username, password=PASSWORD)
    served = b"".join(client.get(reverse("asset_file", args=[asset.pk])).streaming_content)
    assert served == read(s3_media, asset.delivery_file.name)
    thumb = client.get(reverse("asset_thumbnail", args=[asset.pk]))
    assert b"".join(thumb.streaming_content) == read(s3_media, asset.thumbnail.name)
    other = make_user("otto", "operator")
    client.login(username=other.username, password=PASSWORD)
    assert client.get(reverse("asset_file", args=[asset.pk])).status_code == 404


def test_a_campaign_is_exported_from_the_bucket(
    s3_media, operator, reviewer, workflows, rq_queue, sim, django_capture_on_commit_callbacks
):
    from reviewapp.campaigns import scheduler
    from tests.reviewapp.campaigns.helpers import swatch_campaign

    campaign = swatch_campaign(operator, 2)
    with django_capture_on_commit_callbacks(execute=True):
        scheduler.tick()
    run_worker(rq_queue)
    for generation in Generation.objects.filter(lane=campaign.lane):
        review.approve(generation, actor=reviewer)
    Generation.objects.filter(lane=campaign.lane).update(
        decided_at=timezone.now() - timedelta(minutes=1)
    )
    archive = zipfile.ZipFile(io.BytesIO(b"".join(export.stream(campaign))))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["campaign"]["delivered"] == 2
    for entry in manifest["cells"]:
        (original,) = entry["files"]
        data = archive.read(original["path"])
        assert hashlib.sha256(data).hexdigest() == original["sha256"]
        asset = Generation.objects.get(pk=entry["generation"]).assets.get()
        assert data == read(s3_media, asset.delivery_file.name)
    # The same set written to a prefix of the bucket by the command.
    out = io.StringIO()
    call_command("export_campaign", campaign.pk, "--to-storage", "exports/spring.zip", stdout=out)
    assert out.getvalue().startswith("wrote exports/spring.zip: ")
    stored = zipfile.ZipFile(io.BytesIO(read(s3_media, "exports/spring.zip")))
    assert stored.namelist() == archive.namelist()
