"""Images beside a plan: ZIPs read only for what the plan names, every problem by name."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from reviewapp.campaigns import inputs
from reviewapp.campaigns.plans import PlanInvalid

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "campaigns"


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_only_the_named_images_are_read(settings):
    mug = (EXAMPLES / "mug.png").read_bytes()
    images = inputs.ZipImages(zipped({"shots/mug.png": mug, "huge.png": b"\0" * 10_000_000}))
    assert set(images) == {"mug.png", "huge.png"}
    settings.UPLOAD_MAX_BYTES = 1_000_000
    prepared = inputs.prepare(images, {"mug.png"})
    assert prepared["mug.png"].width == 240
    assert images.read_so_far == len(mug)
    with pytest.raises(PlanInvalid, match=r"huge\.png is larger than 1 MB"):
        inputs.prepare(images, {"huge.png"})


def test_an_encrypted_member_is_refused_by_name():
    data = bytearray(zipped({"mug.png": (EXAMPLES / "mug.png").read_bytes()}))
    # Mark the member encrypted (general purpose flag bit 0) where zipfile reads it.
    data[6] |= 0x1  # local file header
    central = data.rindex(b"PK\x01\x02")
    data[central + 8] |= 0x1  # central directory entry
    images = inputs.ZipImages(bytes(data), "shots.zip")
    with pytest.raises(PlanInvalid) as exc:
        inputs.prepare(images, {"mug.png"})
    assert exc.value.problems == ["shots.zip: mug.png cannot be read (encrypted or damaged)"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not a zip", "the ZIP is not a ZIP file"),
        (zipped({"a/x.png": b"1", "b/x.png": b"2"}), "the ZIP holds two files named x.png"),
    ],
)
def test_a_bad_zip_says_why(data, problem):
    with pytest.raises(PlanInvalid) as exc:
        inputs.ZipImages(data)
    assert exc.value.problems == [problem]


def test_the_images_inflated_in_all_are_bounded(settings, monkeypatch):
    settings.UPLOAD_MAX_BYTES = 2_000_000
    monkeypatch.setattr(inputs, "ZIP_MAX_TOTAL", 1_500_000)
    images = inputs.ZipImages(zipped({f"{i}.png": b"\0" * 1_000_000 for i in range(3)}))
    images.get("0.png")
    with pytest.raises(PlanInvalid, match="inflates past 1 MB of images in all"):
        images.get("1.png")
