"""Checking, re-encoding and stripping images without changing a pixel."""

import io
import time

import pytest
from PIL import Image, ImageCms

from reviewapp.lib import images
from tests.reviewapp import imagefiles

LIMIT = 64 * 1024 * 1024


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def prepare(data: bytes, **kwargs):
    return images.prepare_input(data, "in.png", max_pixels=LIMIT, **kwargs)


@pytest.mark.parametrize("make_mask", [imagefiles.rgba_mask, imagefiles.l_mask])
def test_re_encoding_a_mask_keeps_its_mode_and_every_pixel(make_mask):
    mask = make_mask()
    out = decoded(prepare(imagefiles.encode(mask)).data)
    assert out.format == "PNG" and out.mode == mask.mode
    assert out.tobytes() == mask.tobytes()
    if mask.mode == "RGBA":
        assert out.getchannel("A").tobytes() == mask.getchannel("A").tobytes()


def test_re_encoding_a_lossless_webp_mask_keeps_every_pixel():
    webp = imagefiles.encode(imagefiles.rgba_mask(), "WEBP", lossless=True)
    out = decoded(prepare(webp).data)
    assert out.mode == "RGBA" and out.tobytes() == decoded(webp).tobytes()


def test_re_encoding_keeps_a_palette_images_transparency():
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] * 128)
    img.putpixel((2, 2), 0)
    source = decoded(imagefiles.encode(img, transparency=0))
    out = decoded(prepare(imagefiles.encode(img, transparency=0)).data)
    assert out.convert("RGBA").tobytes() == source.convert("RGBA").tobytes()


def test_re_encoding_drops_exif_text_and_icc_profile():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    info_png = imagefiles.png_with_text()
    for data in (
        imagefiles.jpeg_with_gps(),
        info_png,
        imagefiles.encode(Image.new("RGB", (8, 8)), "PNG", icc_profile=srgb),
    ):
        out = prepare(data).data
        img = decoded(out)
        assert not img.getexif() and "exif" not in img.info
        assert "icc_profile" not in img.info
        assert not img.text


def test_re_encoding_applies_the_exif_orientation_before_dropping_it():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = imagefiles.encode(Image.new("RGB", (40, 20), "red"), "JPEG", exif=exif.tobytes())
    prepared = prepare(data)
    assert (prepared.width, prepared.height) == (20, 40)


def test_the_pixel_limit_is_checked_from_the_header_before_decoding():
    bomb = imagefiles.bomb_png()
    started = time.perf_counter()
    for check in (images.inspect, images.decode):
        with pytest.raises(images.TooManyPixels) as caught:
            check(bomb, max_pixels=LIMIT)
        # Had the pixels been decoded, the tiny IDAT would have failed as cut short.
        assert str(caught.value) == (
            "30000x30000 is 900,000,000 pixels, over the limit of 67,108,864 pixels "
            "(IMAGE_MAX_PIXELS)"
        )
    assert time.perf_counter() - started < 0.5


def test_the_limit_is_the_callers_not_pillows():
    # Pillow only warns below 2 x its own MAX_IMAGE_PIXELS; ours refuses 100 x 100 if asked.
    with pytest.raises(images.TooManyPixels):
        images.inspect(imagefiles.encode(Image.new("L", (100, 100))), max_pixels=9999)
    info = images.inspect(imagefiles.encode(Image.new("L", (100, 100))), max_pixels=10000)
    assert (info.width, info.height) == (100, 100)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"just some text\n", "not an image in an accepted format (PNG, JPEG, WebP)"),
        (
            imagefiles.tiff_bytes(),
            "TIFF images are not accepted (accepted formats: PNG, JPEG, WebP)",
        ),
        (imagefiles.gif_bytes(), "GIF images are not accepted (accepted formats: PNG, JPEG, WebP)"),
        (imagefiles.eps_bytes(), "EPS images are not accepted (accepted formats: PNG, JPEG, WebP)"),
        (
            imagefiles.encode(Image.new("RGB", (64, 64)), "BMP"),
            "BMP images are not accepted (accepted formats: PNG, JPEG, WebP)",
        ),
        (
            imagefiles.encode(imagefiles.rgba_mask())[:200],
            "not a readable PNG image (the data is damaged or cut short)",
        ),
    ],
)
def test_refusals_say_what_is_wrong_in_words(data, message):
    with pytest.raises(images.BadImage) as caught:
        prepare(data)
    assert str(caught.value) == message


def test_a_format_outside_the_allowed_ones_is_refused_by_content_not_name():
    jpeg = imagefiles.jpeg_with_gps()
    with pytest.raises(images.BadImage, match="accepted format"):
        images.prepare_input(jpeg, "looks.png", max_pixels=LIMIT, formats=("png",))


def test_an_animated_png_is_refused():
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    data = imagefiles.encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(images.BadImage, match="animated PNG image \\(2 frames\\)"):
        prepare(data)
