"""Images to and from a backend: uploads named by their content, downloads with a size limit.

An upload is stored under the sha256 prefix of its bytes plus the extension of its file name,
so the same image uploaded twice is stored once, and an upload retried after a timeout lands
on the same name instead of leaving a second copy. A download is streamed and refused past
``max_bytes`` (the declared Content-Length first, then the bytes as they come, since a reply
may declare nothing or less than it sends), so a wrong or hostile ``/view`` cannot fill memory.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import PurePosixPath

import requests

from .errors import ComfyError, ComfyUnavailable, DownloadTooLarge, OutputMissing
from .transport import Transport
from .values import ImageRef, OutputImage

DEFAULT_MAX_DOWNLOAD = 256 * 1024 * 1024


def upload_name(data: bytes, filename: str) -> str:
    """``<32 hex digits of sha256><extension of filename, lower case; .png if none>``."""
    suffix = PurePosixPath(filename).suffix.lower() or ".png"
    return hashlib.sha256(data).hexdigest()[:32] + suffix


def upload_image(
    http: Transport, data: bytes, filename: str, *, subfolder: str, overwrite: bool
) -> ImageRef:
    """``POST /upload/image`` into the input folder under ``upload_name``; where it landed."""
    name = upload_name(data, filename)
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = http.request(
        "POST",
        "/upload/image",
        files={"image": (name, data, mime)},
        data={
            "type": "input",
            "subfolder": subfolder,
            "overwrite": "true" if overwrite else "false",
        },
    )
    if response.status_code != 200:
        raise ComfyError(f"upload of {filename!r} refused: HTTP {response.status_code}")
    reply = response.json()
    return ImageRef(reply["name"], reply.get("subfolder", ""), reply.get("type", "input"))


def download(http: Transport, ref: ImageRef | OutputImage, *, max_bytes: int) -> bytes:
    """The file's bytes from ``/view``; ``DownloadTooLarge`` past ``max_bytes``."""
    if isinstance(ref, OutputImage):
        ref = ref.ref
    response = http.request("GET", "/view", params=ref.query(), stream=True)
    with response:
        if response.status_code == 404:
            raise OutputMissing(f"{ref.type}/{ref.load_name} is not on the backend")
        if response.status_code != 200:
            raise ComfyError(f"GET /view {ref.load_name}: HTTP {response.status_code}")
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise DownloadTooLarge(f"{ref.load_name} is {declared} bytes; limit {max_bytes}")
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(chunk_size=65536):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadTooLarge(f"{ref.load_name} exceeds {max_bytes} bytes")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise ComfyUnavailable(f"GET /view {ref.load_name}: {exc}") from exc
    return b"".join(chunks)
