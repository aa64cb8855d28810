"""Image files for tests, made in memory: small, and quick to make."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, PngImagePlugin

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims width x height (1-bit grey) with a few bytes of IDAT:
    under a hundred bytes that a decoder would try to turn into ~110 MB of pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def rgba_mask(size=(64, 48)) -> Image.Image:
    """Every alpha value and distinct colours, so a lossy step would show."""
    w, h = size
    img = Image.new("RGBA", size)
    img.putdata(
        [
            ((x * 4) % 256, (y * 5) % 256, (x * y) % 256, (x + y * w) % 256)
            for y in range(h)
            for x in range(w)
        ]
    )
    return img


def l_mask(size=(64, 48)) -> Image.Image:
    w, h = size
    img = Image.new("L", size)
    img.putdata([(x * 7 + y * 3) % 256 for y in range(h) for x in range(w)])
    return img


def png_with_text(size=(40, 30)) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe, 12 Rue de la Paix")
    info.add_itxt("Comment", "shot at home", zip=True)
    return encode(Image.new("RGB", size, (10, 120, 200)), "PNG", pnginfo=info)


def jpeg_with_gps(size=(40, 30)) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    return encode(Image.new("RGB", size, (200, 60, 30)), "JPEG", exif=exif.tobytes())


def tiff_bytes() -> bytes:
    return encode(Image.new("RGB", (8, 8), "white"), "TIFF")


def gif_bytes() -> bytes:
    return encode(Image.new("RGB", (8, 8), "white"), "GIF")


def eps_bytes() -> bytes:
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"
        b"newpath 0 0 moveto 8 8 lineto stroke\nshowpage\n%%EOF\n"
    )
