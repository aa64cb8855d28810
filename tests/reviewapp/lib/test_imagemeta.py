"""Taking generation metadata out of PNG, JPEG and WebP files without touching a pixel."""

import io

from PIL import Image, PngImagePlugin

from reviewapp.lib import imagemeta
from tests.reviewapp import imagefiles


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_stripping_a_png_drops_its_text_chunks_and_keeps_its_pixels():
    meta = PngImagePlugin.PngInfo()
    meta.add_text("prompt", '{"3": {"class_type": "KSampler"}}')
    meta.add_text("workflow", '{"nodes": []}')
    mask = imagefiles.rgba_mask()
    original = imagefiles.encode(mask, pnginfo=meta)
    assert imagemeta.png_text_keys(original) == ["prompt", "workflow"]
    stripped = imagemeta.strip_metadata(original)
    assert imagemeta.png_text_keys(stripped) == []
    assert decoded(stripped).tobytes() == decoded(original).tobytes()


def test_stripping_a_jpeg_or_webp_drops_exif_and_keeps_its_pixels():
    exif = Image.Exif()
    exif[0x010E] = "prompt: a red bicycle"  # ImageDescription, as ComfyUI's WebP saver does
    for fmt, options in (("JPEG", {}), ("WEBP", {"lossless": True, "xmp": b"<x:xmpmeta/>"})):
        original = imagefiles.encode(
            imagefiles.rgba_mask().convert("RGB"), fmt, exif=exif.tobytes(), **options
        )
        stripped = imagemeta.strip_metadata(original)
        img = decoded(stripped)
        assert not img.getexif() and "xmp" not in img.info and b"prompt" not in stripped
        assert img.tobytes() == decoded(original).tobytes()
