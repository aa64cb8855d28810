"""Take the metadata out of an image without touching its pixels.

ComfyUI's SaveImage writes the prompt (the whole API graph, with every parameter) and, when
the caller sent one, the UI workflow into PNG text chunks; other save nodes put the same into
EXIF. A delivered image should not carry them. These functions rewrite the container (PNG
chunks, JPEG segments, WebP RIFF chunks) and copy the compressed image data as it is, so the
pixels are exactly the original's, and no re-encoding cost is paid.
"""

from __future__ import annotations

import struct

from reviewapp.lib.images import BadImage

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Text (tEXt, zTXt, iTXt) and EXIF chunks. The rest (palette, transparency, gamma, ICC
# profile, animation control) says how to show the pixels and stays.
PNG_METADATA_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf"}
# APP1 (EXIF, XMP), APP13 (Photoshop/IPTC), COM. APP0 (JFIF), APP2 (ICC) and APP14 (Adobe:
# the colour transform) change how the pixels decode and stay.
JPEG_METADATA_MARKERS = {0xE1, 0xED, 0xFE}
WEBP_METADATA_CHUNKS = {b"EXIF", b"XMP "}
_VP8X_EXIF_XMP_FLAGS = 0x08 | 0x04


def strip_metadata(data: bytes) -> bytes:
    """The same image without text/EXIF/XMP metadata; formats without any come back as
    they are. Raises BadImage on a container it cannot walk."""
    try:
        if data.startswith(PNG_SIGNATURE):
            return _strip_png(data)
        if data.startswith(b"\xff\xd8"):
            return _strip_jpeg(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _strip_webp(data)
    except (struct.error, IndexError):
        raise BadImage("the image's structure is damaged") from None
    return data


def png_text_keys(data: bytes) -> list[str]:
    """The keywords of a PNG's text chunks (e.g. ["prompt", "workflow"])."""
    keys = []
    for kind, body in _png_chunks(data):
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keys.append(body.split(b"\x00", 1)[0].decode("latin-1"))
    return keys


def _png_chunks(data: bytes):
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise BadImage("the PNG is cut short")
        yield kind, data[pos + 8 : pos + 8 + length]
        pos = end
        if kind == b"IEND":
            return


def _strip_png(data: bytes) -> bytes:
    out = [PNG_SIGNATURE]
    pos = len(PNG_SIGNATURE)
    for kind, body in _png_chunks(data):
        end = pos + 12 + len(body)
        if kind not in PNG_METADATA_CHUNKS:
            out.append(data[pos:end])  # with its CRC, unchanged
        pos = end
    return b"".join(out)


def _strip_jpeg(data: bytes) -> bytes:
    out = [data[:2]]
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise BadImage("the JPEG's structure is damaged")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out.append(data[pos : pos + 2])
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if marker == 0xDA:
            # Start of scan: the entropy-coded data (and any later scans) follow up to the
            # end; metadata segments come before it.
            out.append(data[pos:])
            break
        if marker not in JPEG_METADATA_MARKERS:
            out.append(data[pos:end])
        pos = end
    return b"".join(out)


def _strip_webp(data: bytes) -> bytes:
    chunks = []
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size + (size & 1)
        if kind == b"VP8X":
            body = bytearray(data[pos:end])
            body[8] &= ~_VP8X_EXIF_XMP_FLAGS & 0xFF
            chunks.append(bytes(body))
        elif kind not in WEBP_METADATA_CHUNKS:
            chunks.append(data[pos:end])
        pos = end
    payload = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(payload)) + payload
