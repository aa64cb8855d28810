"""Deterministic stand-in for diffusion: a seeded pattern with the prompt written on it.

The picture depends only on (text, seed, width, height), so tests can compare bytes,
and any change of those four is visible to a human reviewer.
"""

from __future__ import annotations

import functools
import hashlib
import io
import random
import textwrap

from PIL import Image, ImageDraw, ImageFont

# Above this we render small and upscale: a 4096² pattern would cost seconds for nothing.
_MAX_RENDER_SIDE = 1024


def _rng(text: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{text}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _color(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def render(text: str, seed: int, width: int, height: int) -> Image.Image:
    width = max(1, int(width))
    height = max(1, int(height))
    scale = max(width, height) / _MAX_RENDER_SIDE
    if scale > 1:
        small = render(text, seed, max(1, round(width / scale)), max(1, round(height / scale)))
        return small.resize((width, height), Image.Resampling.BICUBIC)
    return _render(text, int(seed), width, height).copy()


@functools.lru_cache(maxsize=32)
def _render(text: str, seed: int, width: int, height: int) -> Image.Image:
    rng = _rng(text, seed)
    top, bottom = _color(rng), _color(rng)
    gradient = Image.linear_gradient("L").resize((width, height))
    img = Image.composite(
        Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), gradient
    )
    draw = ImageDraw.Draw(img, "RGBA")
    unit = max(4, min(width, height))
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.randrange(-unit // 4, width), rng.randrange(-unit // 4, height)
        size = rng.randint(unit // 10 + 1, unit // 2 + 2)
        fill = (*_color(rng), rng.randint(90, 200))
        kind = rng.randrange(3)
        if kind == 0:
            draw.ellipse((x0, y0, x0 + size, y0 + size), fill=fill)
        elif kind == 1:
            draw.rectangle((x0, y0, x0 + size, y0 + size * rng.uniform(0.3, 1.5)), fill=fill)
        else:
            points = [(x0 + rng.randint(0, size), y0 + rng.randint(0, size)) for _ in range(3)]
            draw.polygon(points, fill=fill)
    _caption(draw, text, seed, width, height)
    return img


def _caption(draw: ImageDraw.ImageDraw, text: str, seed: int, width: int, height: int) -> None:
    font_size = max(8, min(width, height) // 16)
    font = _font(font_size)
    chars = max(8, int(width / (font_size * 0.55)))
    lines = [*textwrap.wrap(text or "(empty prompt)", chars)[:6], f"seed {seed}"]
    line_h = font_size + 2
    box_h = line_h * len(lines) + 8
    y = max(0, height - box_h)
    draw.rectangle((0, y, width, height), fill=(0, 0, 0, 150))
    for i, line in enumerate(lines):
        draw.text((4, y + 4 + i * line_h), line, fill=(255, 255, 255, 255), font=font)


def preview(final: Image.Image, fraction: float, max_side: int = 64) -> bytes:
    """A small PNG that goes from grey noise to the final image as sampling advances."""
    w, h = final.size
    factor = max_side / max(w, h)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = final.resize(size, Image.Resampling.BILINEAR)
    rng = random.Random(int(fraction * 1000))
    noise = Image.frombytes("L", size, rng.randbytes(size[0] * size[1])).convert("RGB")
    mixed = Image.blend(noise, small.convert("RGB"), max(0.0, min(1.0, fraction)))
    buf = io.BytesIO()
    mixed.save(buf, format="PNG")
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
