"""The node classes the simulator implements.

IMAGE values are lists of PIL images (one per batch entry), MASK values lists of mode
"L" images (255 = masked). Model-related types are symbolic: MODEL/CLIP/VAE carry the
checkpoint name, CONDITIONING the prompt text, LATENT a dict describing what a sampler
would produce. Only VAEDecode turns a latent into pixels (see render.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageChops, ImageFilter, ImageOps
from PIL.PngImagePlugin import PngInfo

from comfybridge.sim import render
from comfybridge.sim.files import Folders, file_sha256


class NodeContext:
    """What a node may use besides its inputs; built by the executor per node run."""

    def __init__(
        self,
        *,
        node_id: str,
        prompt: dict,
        extra_pnginfo: Any,
        folders: Folders,
        progress: Callable[[int, int, tuple | None], None],
        work: Callable[[float], None],
        step_delay: Callable[[], None],
        preview_prefix: str,
        load_model: Callable[[str, str], None] = lambda kind, name: None,
    ):
        self.node_id = node_id
        self.prompt = prompt
        self.extra_pnginfo = extra_pnginfo
        self.folders = folders
        self.progress = progress
        self.work = work
        self.step_delay = step_delay
        self.preview_prefix = preview_prefix
        self.load_model = load_model


@dataclasses.dataclass
class NodeDef:
    function: Callable[..., Any]
    output_node: bool = False
    # Extra cache-key material, like ComfyUI's IS_CHANGED.
    is_changed: Callable[[Folders, dict], Any] | None = None
    # Like VALIDATE_INPUTS: receives the listed inputs; True or an error string.
    validate: Callable[[Folders, dict], Any] | None = None
    validate_inputs: tuple[str, ...] = ()


NODES: dict[str, NodeDef] = {}


def node(name: str, **kwargs: Any) -> Callable:
    def register(fn: Callable) -> Callable:
        NODES[name] = NodeDef(function=fn, **kwargs)
        return fn

    return register


# --------------------------------------------------------------------------- helpers


def _mp(images: list[Image.Image]) -> float:
    return sum(i.width * i.height for i in images) / 1_000_000


def _rgb_tuple(color: int) -> tuple[int, int, int]:
    return ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)


def _mask_like(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    return mask if mask.size == size else mask.resize(size, Image.Resampling.BILINEAR)


def _pick(batch: list, i: int) -> Any:
    return batch[min(i, len(batch) - 1)]


def _save_images(ctx: NodeContext, images, prefix, base_dir, type_name, compress, prompt):
    full_folder, filename, counter, subfolder = ctx.folders.save_path(prefix, base_dir)
    results = []
    for batch_number, img in enumerate(images):
        meta = PngInfo()
        if prompt is not None:
            meta.add_text("prompt", json.dumps(prompt))
        if isinstance(ctx.extra_pnginfo, dict):
            for key, value in ctx.extra_pnginfo.items():
                meta.add_text(key, json.dumps(value))
        name = filename.replace("%batch_num%", str(batch_number))
        file = f"{name}_{counter:05}_.png"
        img.save(os.path.join(full_folder, file), pnginfo=meta, compress_level=compress)
        results.append({"filename": file, "subfolder": subfolder, "type": type_name})
        counter += 1
    return {"ui": {"images": results}, "result": ()}


# --------------------------------------------------------------------------- images


@node("EmptyImage")
def empty_image(ctx, width, height, batch_size=1, color=0):
    img = Image.new("RGB", (width, height), _rgb_tuple(color))
    images = [img.copy() for _ in range(batch_size)]
    ctx.work(_mp(images))
    return (images,)


@node("ImageBlur")
def image_blur(ctx, image, blur_radius, sigma):
    ctx.work(_mp(image))
    if blur_radius == 0:
        return (image,)
    return ([i.filter(ImageFilter.GaussianBlur(radius=sigma)) for i in image],)


@node("ImageAddNoise")
def image_add_noise(ctx, image, seed, strength):
    ctx.work(_mp(image))
    rng = random.Random(seed)
    out = []
    for img in image:
        noise = Image.frombytes(
            img.mode, img.size, rng.randbytes(img.width * img.height * len(img.getbands()))
        )
        out.append(Image.blend(img, noise, max(0.0, min(1.0, strength))))
    return (out,)


@node("ImageScale")
def image_scale(ctx, image, upscale_method, width, height, crop):
    ctx.work(_mp(image))
    methods = {
        "nearest-exact": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "area": Image.Resampling.BOX,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
    }
    out = []
    for img in image:
        w, h = width, height
        if w == 0 and h == 0:
            out.append(img)
            continue
        if w == 0:
            w = max(1, round(img.width * h / img.height))
        elif h == 0:
            h = max(1, round(img.height * w / img.width))
        src = img
        if crop == "center":
            src = ImageOps.fit(img, (w, h), method=methods[upscale_method])
        out.append(src.resize((w, h), methods[upscale_method]))
    return (out,)


@node("ImageInvert")
def image_invert(ctx, image):
    ctx.work(_mp(image))
    return ([ImageChops.invert(i) for i in image],)


@node("ImageCompositeMasked")
def image_composite_masked(ctx, destination, source, x, y, resize_source, mask=None):
    ctx.work(_mp(destination))
    out = []
    for i, dst in enumerate(destination):
        dst = dst.copy()
        src = _pick(source, i)
        if resize_source:
            src = src.resize(dst.size, Image.Resampling.BILINEAR)
        src = src.convert(dst.mode)
        m = None
        if mask is not None:
            m = _mask_like(_pick(mask, i), src.size)
        dst.paste(src, (x, y), m)
        out.append(dst)
    return (out,)


@node("ImagePadForOutpaint")
def image_pad_for_outpaint(ctx, image, left, top, right, bottom, feathering):
    ctx.work(_mp(image))
    images, masks = [], []
    for img in image:
        w, h = img.width + left + right, img.height + top + bottom
        fill = tuple(128 for _ in img.getbands())
        padded = Image.new(img.mode, (w, h), fill if len(fill) > 1 else fill[0])
        padded.paste(img, (left, top))
        mask = Image.new("L", (w, h), 255)
        inner = Image.new("L", img.size, 0)
        if feathering > 0:
            inner = _feather(
                inner.point(lambda _: 255),
                left and feathering,
                top and feathering,
                right and feathering,
                bottom and feathering,
            )
            inner = ImageChops.invert(inner)
        mask.paste(inner, (left, top))
        images.append(padded)
        masks.append(mask)
    return (images, masks)


@node("JoinImageWithAlpha")
def join_image_with_alpha(ctx, image, alpha):
    out = []
    for i, img in enumerate(image):
        a = ImageChops.invert(_mask_like(_pick(alpha, i), img.size))
        rgba = img.convert("RGB").convert("RGBA")
        rgba.putalpha(a)
        out.append(rgba)
    return (out,)


@node("ImageToMask")
def image_to_mask(ctx, image, channel):
    index = ["red", "green", "blue", "alpha"].index(channel)
    out = []
    for img in image:
        bands = img.split()
        out.append(bands[index] if index < len(bands) else Image.new("L", img.size, 0))
    return (out,)


@node("MaskToImage")
def mask_to_image(ctx, mask):
    return ([m.convert("RGB") for m in mask],)


@node("SolidMask")
def solid_mask(ctx, value, width, height):
    return ([Image.new("L", (width, height), round(max(0.0, min(1.0, value)) * 255))],)


@node("InvertMask")
def invert_mask(ctx, mask):
    return ([ImageChops.invert(m) for m in mask],)


@node("GrowMask")
def grow_mask(ctx, mask, expand, tapered_corners):
    if expand == 0:
        return (mask,)
    size = 2 * min(abs(expand), 64) + 1
    flt = ImageFilter.MaxFilter(size) if expand > 0 else ImageFilter.MinFilter(size)
    return ([m.filter(flt) for m in mask],)


def _feather(m: Image.Image, left: int, top: int, right: int, bottom: int) -> Image.Image:
    w, h = m.size
    ramp = Image.new("L", (w, h), 255)
    px = ramp.load()
    for x in range(w):
        for y in range(h):
            f = 1.0
            if left and x < left:
                f *= (x + 1) / left
            if right and x >= w - right:
                f *= (w - x) / right
            if top and y < top:
                f *= (y + 1) / top
            if bottom and y >= h - bottom:
                f *= (h - y) / bottom
            if f < 1.0:
                px[x, y] = round(255 * f)
    return ImageChops.multiply(m, ramp)


@node("FeatherMask")
def feather_mask(ctx, mask, left, top, right, bottom):
    return ([_feather(m, left, top, right, bottom) for m in mask],)


# --------------------------------------------------------------------------- files


def _load_is_changed(folders: Folders, inputs: dict) -> str:
    path = folders.annotated_path(str(inputs.get("image", "")))
    try:
        return file_sha256(path)
    except OSError:
        return ""


def _load_validate(folders: Folders, inputs: dict) -> Any:
    name = str(inputs.get("image", ""))
    if not os.path.exists(folders.annotated_path(name)):
        return f"Invalid image file: {name}"
    return True


@node("LoadImage", is_changed=_load_is_changed, validate=_load_validate, validate_inputs=("image",))
def load_image(ctx, image):
    path = ctx.folders.annotated_path(image)
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    rgb = img.convert("RGB")
    if "A" in img.getbands():
        mask = ImageChops.invert(img.getchannel("A"))
    elif img.mode == "P" and "transparency" in img.info:
        mask = ImageChops.invert(img.convert("RGBA").getchannel("A"))
    else:
        # ComfyUI quirk: images without alpha give a 64x64 empty mask, not image-sized.
        mask = Image.new("L", (64, 64), 0)
    return ([rgb], [mask])


@node(
    "LoadImageMask",
    is_changed=_load_is_changed,
    validate=_load_validate,
    validate_inputs=("image",),
)
def load_image_mask(ctx, image, channel):
    img = Image.open(ctx.folders.annotated_path(image))
    img = ImageOps.exif_transpose(img)
    if img.mode == "P":
        img = img.convert("RGBA")
    c = channel[0].upper()
    if c in img.getbands():
        m = img.getchannel(c)
        if c == "A":
            m = ImageChops.invert(m)
    else:
        m = Image.new("L", (64, 64), 0)
    return ([m],)


@node("SaveImage", output_node=True)
def save_image(ctx, images, filename_prefix="ComfyUI"):
    return _save_images(ctx, images, filename_prefix, ctx.folders.output, "output", 4, ctx.prompt)


@node("PreviewImage", output_node=True)
def preview_image(ctx, images):
    return _save_images(ctx, images, ctx.preview_prefix, ctx.folders.temp, "temp", 1, ctx.prompt)


@node("SaveImageWebsocket", output_node=True, is_changed=lambda folders, inputs: time.time())
def save_image_websocket(ctx, images):
    # Like the bundled custom node: one progress step per image, never reaching max.
    for step, img in enumerate(images):
        ctx.progress(step, len(images), ("PNG", img.convert("RGB")))
    return {"ui": None, "result": ()}


# --------------------------------------------------------------------------- models


@node("CheckpointLoaderSimple")
def checkpoint_loader(ctx, ckpt_name):
    ctx.load_model("checkpoint", ckpt_name)
    return ({"model": ckpt_name}, {"clip": ckpt_name}, {"vae": ckpt_name})


def _cond(text: str, **extra: Any) -> list[dict]:
    return [{"text": text, **extra}]


def _cond_text(cond: Any) -> str:
    if isinstance(cond, list) and cond and isinstance(cond[0], dict):
        return str(cond[0].get("text", ""))
    return ""


@node("CLIPTextEncode")
def clip_text_encode(ctx, text, clip):
    return (_cond(text),)


@node("CLIPTextEncodeSDXL")
def clip_text_encode_sdxl(
    ctx, clip, width, height, crop_w, crop_h, target_width, target_height, text_g, text_l
):
    text = text_g if text_l in ("", text_g) else f"{text_g} {text_l}"
    return (_cond(text),)


@node("CLIPTextEncodeSDXLRefiner")
def clip_text_encode_sdxl_refiner(ctx, ascore, width, height, text, clip):
    return (_cond(text),)


@node("EmptyLatentImage")
def empty_latent_image(ctx, width, height, batch_size=1):
    return ({"width": width, "height": height, "batch_size": batch_size},)


def _latent_from_pixels(pixels: list[Image.Image], **extra: Any) -> dict:
    w, h = pixels[0].size
    # Like the VAE, sizes snap down to multiples of 8.
    w8, h8 = max(8, w // 8 * 8), max(8, h // 8 * 8)
    src = [p.convert("RGB").crop((0, 0, w8, h8)) for p in pixels]
    return {"width": w8, "height": h8, "batch_size": len(pixels), "source": src, **extra}


@node("VAEEncode")
def vae_encode(ctx, pixels, vae):
    return (_latent_from_pixels(pixels),)


@node("VAEEncodeForInpaint")
def vae_encode_for_inpaint(ctx, pixels, vae, mask, grow_mask_by=6):
    latent = _latent_from_pixels(pixels)
    masks = [_mask_like(m, (latent["width"], latent["height"])) for m in mask]
    if grow_mask_by:
        masks = [m.filter(ImageFilter.MaxFilter(2 * min(grow_mask_by, 64) + 1)) for m in masks]
    latent["noise_mask"] = masks
    latent["denoise_full"] = True
    return (latent,)


@node("SetLatentNoiseMask")
def set_latent_noise_mask(ctx, samples, mask):
    return ({**samples, "noise_mask": list(mask)},)


@node("InpaintModelConditioning")
def inpaint_model_conditioning(ctx, positive, negative, vae, pixels, mask, noise_mask=True):
    latent = _latent_from_pixels(pixels)
    masks = [_mask_like(m, (latent["width"], latent["height"])) for m in mask]
    if noise_mask:
        latent["noise_mask"] = masks
    else:
        latent["inpaint_mask"] = masks
    pos = [{**c, "concat_mask": True} for c in positive]
    neg = [{**c, "concat_mask": True} for c in negative]
    return (pos, neg, latent)


def _sample(ctx, positive, negative, latent, seed, steps, denoise):
    text = _cond_text(positive)
    w, h = latent["width"], latent["height"]
    final = render.render(text, seed, w, h)
    for step in range(steps):
        ctx.step_delay()
        preview = render.preview(final, (step + 1) / steps)
        ctx.progress(step + 1, steps, ("PNG_BYTES", preview))
    return {
        **latent,
        "text": text,
        "negative": _cond_text(negative),
        "seed": int(seed),
        "steps": steps,
        "denoise": denoise,
        "sampled": True,
    }


@node("KSampler")
def ksampler(
    ctx,
    model,
    seed,
    steps,
    cfg,
    sampler_name,
    scheduler,
    positive,
    negative,
    latent_image,
    denoise=1.0,
):
    return (_sample(ctx, positive, negative, latent_image, seed, steps, denoise),)


@node("KSamplerAdvanced")
def ksampler_advanced(
    ctx,
    model,
    add_noise,
    noise_seed,
    steps,
    cfg,
    sampler_name,
    scheduler,
    positive,
    negative,
    latent_image,
    start_at_step,
    end_at_step,
    return_with_leftover_noise,
):
    run = max(0, min(end_at_step, steps) - start_at_step)
    if run == 0:
        return (latent_image,)
    denoise = run / steps
    return (_sample(ctx, positive, negative, latent_image, noise_seed, run, denoise),)


@node("VAEDecode")
def vae_decode(ctx, samples, vae):
    w, h = samples["width"], samples["height"]
    text = samples.get("text", "")
    seed = samples.get("seed", 0)
    source = samples.get("source")
    masks = samples.get("noise_mask") or samples.get("inpaint_mask")
    out = []
    for i in range(samples.get("batch_size", 1)):
        img = render.render(text, seed + i, w, h)
        if source is not None and samples.get("sampled"):
            base = _pick(source, i).resize((w, h))
            if masks:
                img = Image.composite(img, base, _mask_like(_pick(masks, i), (w, h)))
            else:
                img = Image.blend(base, img, max(0.0, min(1.0, samples.get("denoise", 1.0))))
        elif source is not None:
            img = _pick(source, i).resize((w, h))
        ctx.work(w * h / 1_000_000)
        out.append(img)
    return (out,)
