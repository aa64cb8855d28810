"""Image checks, re-encoding and thumbnails (Pillow), free of Django models.

Every image that comes from outside (an operator's upload, a backend's output) is opened
here: its format is detected from its bytes (never from a file name or a content type),
among the formats allowed, and its width x height is checked against a pixel limit from
its header, before a single pixel is decoded. Callers pass the limit
(settings.IMAGE_MAX_PIXELS).

Messages of BadImage are fit to show to a user: they never contain a Python repr.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps

from comfybridge.contract import IMAGE_FORMATS

# The formats an image property may accept (its "x-formats"; all three by default), by
# their schema names. Not TIFF, EPS, BMP, GIF, ICO...: large parsers for formats nobody
# feeds a diffusion model, and EPS would run Ghostscript.
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
DEFAULT_FORMATS = IMAGE_FORMATS
LABELS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "MPO": "JPEG"}
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

# Pillow raises all of these on malformed input, depending on the format and where the
# data goes wrong; to a caller they all mean "not a readable image".
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    EOFError,
    struct.error,
    ZeroDivisionError,
    Image.DecompressionBombError,
)

# Modes a PNG holds as they are; anything else is converted before re-encoding.
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "P", "RGB", "RGBA"}


class BadImage(ValueError):
    """The bytes are not an image we accept. The message says why, without the file name
    (the caller knows it): "the file is empty", "TIFF images are not accepted (...)"."""


class TooManyPixels(BadImage):
    """The header announces more pixels than the limit: refused before decoding."""

    def __init__(self, width: int, height: int, limit: int):
        self.width, self.height, self.limit = width, height, limit
        super().__init__(
            f"{width}x{height} is {width * height:,} pixels, "
            f"over the limit of {limit:,} pixels (IMAGE_MAX_PIXELS)"
        )


def describe_formats(formats) -> str:
    return ", ".join(LABELS[FORMATS[name]] for name in formats)


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Raise TooManyPixels when width x height is over the limit."""
    if width * height > max_pixels:
        raise TooManyPixels(width, height, max_pixels)


def _sniff(data: bytes) -> str:
    """The name of a format we refuse, for the message ("a TIFF image"), or ""."""
    signatures = (
        (b"II*\x00", "TIFF"),
        (b"MM\x00*", "TIFF"),
        (b"GIF8", "GIF"),
        (b"BM", "BMP"),
        (b"%!PS", "EPS"),
        (b"\xc5\xd0\xd3\xc6", "EPS"),
        (b"\x00\x00\x01\x00", "ICO"),
        (b"%PDF", "PDF"),
        (b"8BPS", "PSD"),
    )
    for magic, name in signatures:
        if data.startswith(magic):
            return name
    if data[4:12] in (b"ftypavif", b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "HEIF/AVIF"
    if data.lstrip()[:5].lower() in (b"<?xml", b"<svg "):
        return "SVG"
    return ""


def _open_header(data: bytes, formats, max_pixels: int) -> ImageFile.ImageFile:
    """Identify the image among `formats` from its bytes and read its header only.

    This is Image.open restricted to the plugins of `formats`, minus Pillow's own bomb
    check: that one only warns up to 2 x MAX_IMAGE_PIXELS and then raises an exception of
    its own, where we want our limit, our exception, and the size in the message.
    """
    if not data:
        raise BadImage("the file is empty")
    Image.init()
    fp = io.BytesIO(data)
    prefix = data[:16]
    for name in formats:
        factory, accept = Image.OPEN[FORMATS[name]]
        if accept is not None and accept(prefix) is not True:
            continue
        fp.seek(0)
        try:
            img = factory(fp, "")
        except _DECODE_ERRORS:
            raise BadImage(
                f"not a readable {LABELS[FORMATS[name]]} image (the file is damaged)"
            ) from None
        check_pixels(img.width, img.height, max_pixels)
        return img
    other = _sniff(data)
    accepted = describe_formats(formats)
    if other:
        raise BadImage(f"{other} images are not accepted (accepted formats: {accepted})")
    raise BadImage(f"not an image in an accepted format ({accepted})")


@dataclass
class ImageInfo:
    sha256: str
    width: int
    height: int
    format: str
    content_type: str


def inspect(data: bytes, *, max_pixels: int, formats=DEFAULT_FORMATS) -> ImageInfo:
    """Hash and verify an image (the size from its header, then its structure, without
    decoding the pixels); raise BadImage when it is not one we accept."""
    img = _open_header(data, formats, max_pixels)
    fmt = img.format or ""
    try:
        img.verify()
    except _DECODE_ERRORS:
        raise BadImage(
            f"not a readable {LABELS.get(fmt, fmt)} image (the file is damaged)"
        ) from None
    finally:
        img.close()
    content_type = Image.MIME.get(fmt, "application/octet-stream")
    return ImageInfo(hashlib.sha256(data).hexdigest(), img.width, img.height, fmt, content_type)


def decode(data: bytes, *, max_pixels: int, formats=DEFAULT_FORMATS) -> Image.Image:
    """The image with its pixels decoded, after the format and size checks."""
    img = _open_header(data, formats, max_pixels)
    label = LABELS.get(img.format or "", img.format)
    frames = getattr(img, "n_frames", 1)
    # A JPEG from a phone may carry a second picture (MPO): the first one is the photo.
    if frames > 1 and img.format != "MPO":
        raise BadImage(f"an animated {label} image ({frames} frames); send a single picture")
    try:
        img.load()
    except _DECODE_ERRORS:
        raise BadImage(f"not a readable {label} image (the data is damaged or cut short)") from None
    return img


@dataclass
class PreparedImage:
    """An input image re-encoded for the backend: PNG, same pixels, no metadata."""

    data: bytes
    name: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def prepare_input(
    data: bytes, name: str, *, max_pixels: int, formats=DEFAULT_FORMATS
) -> PreparedImage:
    """Re-encode an uploaded image as a PNG holding exactly the pixels ComfyUI's LoadImage
    would see in the original, and nothing else.

    - Lossless: a mask keeps its alpha channel and every value; palette images keep
      their palette and transparency.
    - The EXIF orientation is applied first (LoadImage applies it too), because the EXIF
      block goes, with text chunks, XMP, ICC profile and the rest: they tell the backend
      (and whoever reads its input folder) where and on what the photo was taken, and
      ComfyUI does no colour management with the profile.
    """
    img = decode(data, max_pixels=max_pixels, formats=formats)
    transparency = img.info.get("transparency")
    img = ImageOps.exif_transpose(img)
    if img.mode not in _PNG_MODES:
        # CMYK JPEG and the like: converted as LoadImage's own convert("RGB") would.
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        transparency = None
    clean = img.copy()
    clean.info = {}  # Pillow would otherwise carry the ICC profile over
    out = io.BytesIO()
    options = {} if transparency is None else {"transparency": transparency}
    clean.save(out, format="PNG", **options)
    return PreparedImage(out.getvalue(), name, clean.width, clean.height)


# Thumbnails are made in the worker for every output, so they are tuned for time:
# - shrink by an integer factor first (a box filter, about 1 ms for 1024²) while the image is
#   still at least 1.5x the target, then LANCZOS the rest of the way: a full-size LANCZOS of
#   1024² down to 320 costs ~20 ms for no difference visible at thumbnail size;
# - WebP method 2 instead of 4: about 4 ms instead of 11 for a 320² thumbnail, a few
#   percent larger at the same quality.
THUMBNAIL_REDUCING_GAP = 1.5
THUMBNAIL_WEBP_METHOD = 2


def thumbnail(data: bytes, size: int, *, max_pixels: int) -> bytes:
    """A WebP no larger than size x size, keeping the aspect ratio."""
    img = _open_header(data, DEFAULT_FORMATS, max_pixels)
    try:
        with img:
            img.draft("RGB", (size, size))
            img = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB")
            img.thumbnail(
                (size, size), Image.Resampling.LANCZOS, reducing_gap=THUMBNAIL_REDUCING_GAP
            )
    except _DECODE_ERRORS:
        raise BadImage("not a readable image (the data is damaged or cut short)") from None
    out = io.BytesIO()
    img.save(out, format="WEBP", quality=80, method=THUMBNAIL_WEBP_METHOD)
    return out.getvalue()
