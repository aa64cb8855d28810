"""Input images: only the declared formats, checked by content, within the pixel limit,
and re-encoded (lossless, no metadata) before they are stored and sent to the backend."""

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from comfybridge.errors import ParamsInvalid
from reviewapp.briefs import services
from reviewapp.briefs.forms import brief_form_class
from reviewapp.briefs.models import Brief, Generation
from reviewapp.briefs.worker import execution
from reviewapp.catalog.models import WorkflowVersion
from tests.conftest import PASSWORD
from tests.reviewapp import imagefiles

INPAINT = {"prompt": "a blue vase", "seed": "7", "width": "768", "height": "768", "steps": "10"}


def inpaint_version():
    return WorkflowVersion.objects.get(workflow__slug="sdxl_inpaint_masked", status="published")


def inpaint_form(
    image: bytes, mask: bytes, *, image_name="photo.png", mask_name="mask.png", schema=None
):
    form_class = brief_form_class(schema or inpaint_version().schema)
    files = {
        "image": SimpleUploadedFile(image_name, image, "image/png"),
        "mask": SimpleUploadedFile(mask_name, mask, "image/png"),
    }
    return form_class(INPAINT, files)


def good_png() -> bytes:
    return imagefiles.encode(Image.new("RGB", (32, 32), "white"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "mask.png: the file is empty."),
        (b"hello, I am text\n", "mask.png: not an image in an accepted format (PNG, JPEG, WebP)."),
        (
            imagefiles.encode(imagefiles.rgba_mask())[:300],
            "mask.png: not a readable PNG image (the data is damaged or cut short).",
        ),
        (
            imagefiles.eps_bytes(),
            "mask.png: EPS images are not accepted (accepted formats: PNG, JPEG, WebP).",
        ),
        (
            imagefiles.tiff_bytes(),
            "mask.png: TIFF images are not accepted (accepted formats: PNG, JPEG, WebP).",
        ),
        (
            imagefiles.gif_bytes(),
            "mask.png: GIF images are not accepted (accepted formats: PNG, JPEG, WebP).",
        ),
    ],
)
def test_a_bad_file_is_refused_with_its_name_and_no_python_repr(workflows, data, expected):
    form = inpaint_form(good_png(), data)
    assert not form.is_valid()
    assert form.errors["mask"] == [expected]
    assert "image" not in form.errors


@pytest.mark.django_db
def test_a_decompression_bomb_is_a_form_error_naming_the_file_and_the_limit(workflows):
    form = inpaint_form(good_png(), imagefiles.bomb_png(), mask_name="huge.png")
    assert not form.is_valid()
    assert form.errors["mask"] == [
        "huge.png: 30000x30000 is 900,000,000 pixels, over the limit of 67,108,864 pixels "
        "(IMAGE_MAX_PIXELS)."
    ]


@pytest.mark.django_db
def test_posting_a_bomb_shows_the_form_again_instead_of_failing(client, operator, workflows):
    assert client.login(username=operator.username, password=PASSWORD)
    response = client.post(
        reverse("brief_new", args=["sdxl_inpaint_masked"]),
        {
            **INPAINT,
            "image": SimpleUploadedFile("bomb.png", imagefiles.bomb_png()),
            "mask": SimpleUploadedFile("mask.png", good_png()),
        },
    )
    assert response.status_code == 200
    assert "bomb.png: 30000x30000" in response.context["form"].errors["image"][0]
    assert Brief.objects.count() == 0


@pytest.mark.django_db
def test_the_pixel_limit_is_a_setting(workflows, settings):
    settings.IMAGE_MAX_PIXELS = 1000
    form = inpaint_form(good_png(), good_png())
    assert not form.is_valid()
    assert "over the limit of 1,000 pixels" in form.errors["image"][0]


@pytest.mark.django_db
def test_x_formats_narrows_what_a_property_accepts_whatever_the_file_is_called(workflows):
    schema = inpaint_version().schema
    schema["properties"]["mask"]["x-formats"] = ["png"]
    jpeg = imagefiles.jpeg_with_gps()
    form = inpaint_form(good_png(), jpeg, mask_name="mask.png", schema=schema)
    assert not form.is_valid()
    assert form.errors["mask"] == ["mask.png: not an image in an accepted format (PNG)."]
    assert 'accept="image/png"' in str(form["mask"])
    assert 'accept="image/png,image/jpeg,image/webp"' in str(form["image"])
    # The other property keeps the default formats: JPEG is fine there.
    assert inpaint_form(jpeg, good_png(), image_name="photo.jpg", schema=schema).is_valid()


@pytest.mark.django_db
def test_files_given_to_the_service_directly_are_checked_and_re_encoded_too(operator, workflows):
    with pytest.raises(ParamsInvalid) as caught:
        services.submit_brief(
            inpaint_version(),
            {**INPAINT, "seed": 7, "width": 768, "height": 768, "steps": 10},
            actor=operator,
            files={
                "image": SimpleUploadedFile("scan.tif", imagefiles.tiff_bytes()),
                "mask": SimpleUploadedFile("mask.png", good_png()),
            },
        )
    assert caught.value.errors == {
        "image": ["scan.tif: TIFF images are not accepted (accepted formats: PNG, JPEG, WebP)."]
    }
    assert Brief.objects.count() == 0


@pytest.mark.django_db
def test_uploads_are_stored_re_encoded_and_named_by_the_hash_of_those_bytes(operator, workflows):
    form = inpaint_form(
        imagefiles.jpeg_with_gps(), imagefiles.png_with_text(), image_name="holiday.jpg"
    )
    assert form.is_valid(), form.errors
    brief = services.submit_brief(
        inpaint_version(), form.params(), actor=operator, files=form.files_by_property()
    )
    for upload in brief.uploads.all():
        data = upload.file.read()
        assert hashlib.sha256(data).hexdigest() == upload.sha256
        assert upload.file.name.endswith(f"/{upload.sha256[:16]}.png")
        assert Image.open(io.BytesIO(data)).format == "PNG"
    assert {u.original_name for u in brief.uploads.all()} == {"holiday.jpg", "mask.png"}


@pytest.mark.django_db
def test_what_reaches_the_backend_has_no_exif_and_no_text_chunks(
    client, operator, workflows, comfy, django_capture_on_commit_callbacks
):
    assert client.login(username=operator.username, password=PASSWORD)
    photo = imagefiles.jpeg_with_gps((96, 64))
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)  # it has GPS to lose
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("brief_new", args=["sdxl_inpaint_masked"]),
            {
                **INPAINT,
                "image": SimpleUploadedFile("holiday.jpg", photo, "image/jpeg"),
                "mask": SimpleUploadedFile("mask.png", imagefiles.png_with_text((96, 64))),
            },
        )
    assert response.status_code == 302, response.context["form"].errors
    brief = Brief.objects.get()
    generation = brief.generations.get()
    execution.run_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
    for upload in brief.uploads.all():
        # The client names an upload by the sha256 of the bytes it sends.
        received = (comfy.data_dir / "input" / f"{upload.sha256[:32]}.png").read_bytes()
        img = Image.open(io.BytesIO(received))
        assert img.format == "PNG"
        assert not img.getexif() and "exif" not in img.info
        assert not img.text  # no tEXt, zTXt or iTXt chunk
        assert b"Jane Doe" not in received and b"PhoneMaker" not in received
