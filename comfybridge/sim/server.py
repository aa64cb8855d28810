"""aiohttp application: the HTTP routes and websocket of ComfyUI's server.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import mimetypes
import os
import random
import sys
import urllib.parse
import uuid
from io import BytesIO
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image

from comfybridge.sim.catalog import Catalog
from comfybridge.sim.config import SimConfig
from comfybridge.sim.executor import Executor
from comfybridge.sim.files import Folders
from comfybridge.sim.promptqueue import PromptQueue
from comfybridge.sim.validation import Validator, prompt_id_of

log = logging.getLogger("comfybridge.sim")

MODEL_FOLDERS = [
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
]
# Events that are not "execution messages": never dropped by --ws-drop-rate.
_UNDROPPABLE = {"status", "feature_flags"}

APP_KEY = web.AppKey("comfybridge_sim", object)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SimServer:
    """Holds the state ComfyUI keeps on PromptServer, plus the fault settings."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.folders = Folders(config.resolve_data_dir())
        self.folders.clean_temp()
        self.rng = random.Random(config.seed)
        self.catalog = Catalog(self.folders, config.checkpoints)
        self.validator = Validator(self.catalog, self.folders)
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.sockets_metadata: dict[str, dict] = {}
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.last_prompt_id: str | None = None
        self.number = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.messages: asyncio.Queue | None = None
        self.queue = PromptQueue(self)
        self.executor = Executor(
            config, self, self.queue, self.catalog, self.folders, random.Random(self.rng.random())
        )

    # ---- messaging (called from the loop and from the worker thread)

    def send_sync(self, event: str | int, data: Any, sid: str | None) -> None:
        if isinstance(data, bytes | bytearray):
            payload: Any = bytes(data)
        else:
            payload = json.dumps({"type": event, "data": data})
        assert self.loop is not None and self.messages is not None
        self.loop.call_soon_threadsafe(self.messages.put_nowait, (event, payload, sid))

    def queue_info(self) -> dict:
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}

    def queue_updated(self) -> None:
        self.send_sync("status", {"status": self.queue_info()}, None)

    def supports_preview_metadata(self, sid: str | None) -> bool:
        meta = self.sockets_metadata.get(sid or "", {})
        return bool(meta.get("feature_flags", {}).get("supports_preview_metadata"))

    async def _send_one(self, ws: web.WebSocketResponse, event: Any, payload: Any) -> None:
        rate = self.config.ws_drop_rate
        if event not in _UNDROPPABLE and rate > 0 and self.rng.random() < rate:
            return
        try:
            if isinstance(payload, bytes):
                await ws.send_bytes(payload)
            else:
                await ws.send_str(payload)
        except Exception as ex:
            log.debug("send failed: %s", ex)

    async def publish_loop(self) -> None:
        assert self.messages is not None
        while True:
            event, payload, sid = await self.messages.get()
            if sid is None:
                for ws in list(self.sockets.values()):
                    await self._send_one(ws, event, payload)
            elif sid in self.sockets:
                await self._send_one(self.sockets[sid], event, payload)


# --------------------------------------------------------------------------- middlewares


@web.middleware
async def fault_middleware(request: web.Request, handler):
    sim: SimServer = request.app[APP_KEY]
    rate = sim.config.http_error_rate
    if rate > 0 and not request.path.endswith("/ws") and sim.rng.random() < rate:
        return web.Response(
            status=500, text="500 Internal Server Error\n\nServer got itself in trouble"
        )
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler):
    # --auth: stands for a proxy in front of ComfyUI that wants a bearer token everywhere,
    # including the websocket upgrade (which is a GET like the others).
    token = request.app[APP_KEY].config.auth_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return web.Response(
                status=401, text="401: Unauthorized", headers={"WWW-Authenticate": "Bearer"}
            )
    return await handler(request)


@web.middleware
async def origin_middleware(request: web.Request, handler):
    # Blocks cross-site requests to a loopback server (server.py:107-148).
    if "Host" in request.headers and "Origin" in request.headers:
        host_domain = request.headers["Host"].lower()
        parsed = urllib.parse.urlparse(request.headers["Origin"])
        origin_domain = parsed.netloc.lower()
        host_parsed = urllib.parse.urlsplit("//" + host_domain)
        loopback = _is_loopback(host_parsed.hostname)
        if parsed.port is None:
            host_domain = host_parsed.hostname
        if host_parsed.port is None:
            origin_domain = parsed.hostname
        if loopback and host_domain and origin_domain and host_domain != origin_domain:
            return web.Response(status=403)
    if request.method == "OPTIONS":
        return web.Response()
    return await handler(request)


# --------------------------------------------------------------------------- routes


def _routes(sim: SimServer) -> web.RouteTableDef:
    routes = web.RouteTableDef()
    folders = sim.folders

    @routes.get("/ws")
    async def websocket_handler(request: web.Request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            sim.sockets.pop(sid, None)
        else:
            sid = uuid.uuid4().hex
        sim.sockets[sid] = ws
        sim.sockets_metadata[sid] = {"feature_flags": {}}
        try:
            await ws.send_str(
                json.dumps({"type": "status", "data": {"status": sim.queue_info(), "sid": sid}})
            )
            if sim.client_id == sid and sim.last_node_id is not None:
                await ws.send_str(
                    json.dumps({"type": "executing", "data": {"node": sim.last_node_id}})
                )
            first_message = True
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except json.JSONDecodeError:
                        continue
                    if (
                        first_message
                        and isinstance(data, dict)
                        and data.get("type") == "feature_flags"
                    ):
                        flags = data.get("data", {})
                        sim.sockets_metadata.setdefault(sid, {})["feature_flags"] = flags
                        await ws.send_str(
                            json.dumps({"type": "feature_flags", "data": _server_features(sim)})
                        )
                    first_message = False
        finally:
            # Keyed by id, not by socket: closing an older duplicate detaches the newer one.
            sim.sockets.pop(sid, None)
            sim.sockets_metadata.pop(sid, None)
        return ws

    @routes.get("/embeddings")
    async def get_embeddings(request):
        return web.json_response([])

    @routes.get("/models")
    async def list_model_types(request):
        return web.json_response(MODEL_FOLDERS)

    @routes.get("/models/{folder}")
    async def get_models(request):
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.Response(status=404)
        if folder != "checkpoints":
            return web.json_response([])
        sim.catalog.all()  # lists the model folder again, as ComfyUI does
        return web.json_response(list(sim.catalog.checkpoints))

    @routes.get("/extensions")
    async def get_extensions(request):
        return web.json_response([])

    @routes.post("/upload/image")
    async def upload_image(request):
        post = await request.post()
        return _image_upload(sim, post)

    @routes.post("/upload/mask")
    async def upload_mask(request):
        post = await request.post()

        def save_with_alpha(image, post, filepath):
            ref = json.loads(post.get("original_ref"))
            name, base = folders.annotated(ref["filename"])
            if not name:
                return
            base = base or folders.by_type(ref.get("type")) or folders.input
            original = os.path.join(base, os.path.normpath(ref.get("subfolder", "")), name)
            if not os.path.exists(original):
                return
            with Image.open(original) as orig:
                rgba = orig.convert("RGBA")
                with Image.open(image.file) as mask:
                    alpha = mask.convert("RGBA").getchannel("A").resize(rgba.size)
                rgba.putalpha(alpha)
                rgba.save(filepath, compress_level=4)

        return _image_upload(sim, post, save_with_alpha)

    @routes.get("/view")
    async def view_image(request):
        query = request.rel_url.query
        if "filename" not in query:
            return web.Response(status=404)
        filename, output_dir = folders.annotated(query["filename"])
        if not filename:
            return web.Response(status=400)
        if filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        if output_dir is None:
            output_dir = folders.by_type(query.get("type", "output"))
        if output_dir is None:
            return web.Response(status=400)
        if "subfolder" in query:
            full = os.path.join(output_dir, query["subfolder"])
            if os.path.commonpath((os.path.abspath(full), output_dir)) != output_dir:
                return web.Response(status=403)
            output_dir = full
        filename = os.path.basename(filename)
        file = os.path.join(output_dir, filename)
        if not os.path.isfile(file):
            return web.Response(status=404)
        disposition = {"Content-Disposition": f'filename="{filename}"'}
        channel = query.get("channel", "rgba")
        if "preview" in query:
            info = query["preview"].split(";")
            fmt = info[0]
            if fmt not in ("webp", "jpeg") or "a" in query.get("channel", ""):
                fmt = "webp"
            quality = int(info[-1]) if info[-1].isdigit() else 90
            with Image.open(file) as img:
                if fmt == "jpeg" or channel == "rgb":
                    img = img.convert("RGB")
                buf = BytesIO()
                img.save(buf, format=fmt, quality=quality)
            return web.Response(
                body=buf.getvalue(), content_type=f"image/{fmt}", headers=disposition
            )
        if channel == "rgb":
            with Image.open(file) as img:
                buf = BytesIO()
                img.convert("RGB").save(buf, format="PNG")
            return web.Response(body=buf.getvalue(), content_type="image/png", headers=disposition)
        if channel == "a":
            with Image.open(file) as img:
                alpha = (
                    img.getchannel("A") if "A" in img.getbands() else Image.new("L", img.size, 255)
                )
                out = Image.new("RGBA", img.size)
                out.putalpha(alpha)
                buf = BytesIO()
                out.save(buf, format="PNG")
            return web.Response(body=buf.getvalue(), content_type="image/png", headers=disposition)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if content_type in {
            "text/html",
            "text/html-sandboxed",
            "application/xhtml+xml",
            "text/javascript",
            "text/css",
        }:
            content_type = "application/octet-stream"
        return web.FileResponse(file, headers={**disposition, "Content-Type": content_type})

    @routes.get("/system_stats")
    async def system_stats(request):
        ram_total, ram_free = _ram()
        return web.json_response(
            {
                "system": {
                    "os": os.name,
                    "ram_total": ram_total,
                    "ram_free": ram_free,
                    "comfyui_version": "0.3.64",
                    "required_frontend_version": "1.27.10",
                    "installed_templates_version": "0.1.95",
                    "required_templates_version": "0.1.95",
                    "python_version": sys.version,
                    "pytorch_version": "none (comfybridge.sim)",
                    "embedded_python": False,
                    "argv": sim.config.argv or ["comfybridge.sim"],
                },
                "devices": [
                    {
                        "name": "cpu",
                        "type": "cpu",
                        "index": None,
                        "vram_total": ram_total,
                        "vram_free": ram_free,
                        "torch_vram_total": ram_total,
                        "torch_vram_free": ram_free,
                    }
                ],
            }
        )

    @routes.get("/features")
    async def get_features(request):
        return web.json_response(_server_features(sim))

    @routes.get("/prompt")
    async def get_prompt(request):
        return web.json_response(sim.queue_info())

    @routes.get("/object_info")
    async def get_object_info(request):
        return web.json_response(sim.catalog.all())

    @routes.get("/object_info/{node_class}")
    async def get_object_info_node(request):
        node_class = request.match_info["node_class"]
        if not sim.catalog.has(node_class):
            return web.json_response({})
        return web.json_response({node_class: sim.catalog.info(node_class)})

    @routes.get("/history")
    async def get_history(request):
        max_items = request.rel_url.query.get("max_items")
        offset = int(request.rel_url.query.get("offset", -1))
        return web.json_response(
            sim.queue.get_history(
                max_items=int(max_items) if max_items is not None else None, offset=offset
            )
        )

    @routes.get("/history/{prompt_id}")
    async def get_history_prompt(request):
        return web.json_response(sim.queue.get_history(prompt_id=request.match_info["prompt_id"]))

    @routes.get("/queue")
    async def get_queue(request):
        running, pending = sim.queue.current()
        return web.json_response({"queue_running": running, "queue_pending": pending})

    @routes.post("/prompt")
    async def post_prompt(request):
        json_data = await request.json()
        if "number" in json_data:
            number: Any = float(json_data["number"])
        else:
            number = sim.number
            if json_data.get("front"):
                number = -number
            sim.number += 1
        if "prompt" not in json_data:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt = json_data["prompt"]
        prompt_id, error = prompt_id_of(json_data, strict=sim.config.require_uuid_prompt_ids)
        if error is not None:
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        targets = json_data.get("partial_execution_targets")
        valid = sim.validator.validate_prompt(prompt, targets)
        extra_data = json_data.get("extra_data", {})
        if "client_id" in json_data:
            extra_data["client_id"] = json_data["client_id"]
        if not valid[0]:
            return web.json_response({"error": valid[1], "node_errors": valid[3]}, status=400)
        sim.queue.put([number, prompt_id, prompt, extra_data, valid[2]])
        if sim.config.slow_accept_ms > 0:
            await asyncio.sleep(sim.config.slow_accept_ms / 1000)
        return web.json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": valid[3]}
        )

    @routes.post("/queue")
    async def post_queue(request):
        json_data = await request.json()
        if json_data.get("clear"):
            sim.queue.wipe()
        for prompt_id in json_data.get("delete", []) if "delete" in json_data else []:
            sim.queue.delete(prompt_id)
        return web.Response(status=200)

    @routes.post("/interrupt")
    async def post_interrupt(request):
        try:
            json_data = await request.json()
        except json.JSONDecodeError:
            json_data = {}
        prompt_id = json_data.get("prompt_id") if isinstance(json_data, dict) else None
        if prompt_id:
            running, _ = sim.queue.current()
            if any(item[1] == prompt_id for item in running):
                sim.executor.interrupt()
            else:
                log.info("Prompt %s is not currently running, skipping interrupt", prompt_id)
        else:
            sim.executor.interrupt()
        return web.Response(status=200)

    @routes.post("/free")
    async def post_free(request):
        return web.Response(status=200)

    @routes.post("/history")
    async def post_history(request):
        json_data = await request.json()
        if json_data.get("clear"):
            sim.queue.wipe_history()
        for prompt_id in json_data.get("delete", []) if "delete" in json_data else []:
            sim.queue.delete_history(prompt_id)
        return web.Response(status=200)

    return routes


def _server_features(sim: SimServer) -> dict:
    return {"supports_preview_metadata": True, "max_upload_size": sim.config.max_upload_size}


def _ram() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30, 4 << 30


def _same_bytes(path: str, data: bytes) -> bool:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()


def _image_upload(sim: SimServer, post, save_function=None) -> web.Response:
    image = post.get("image")
    overwrite = post.get("overwrite")
    upload_dir = sim.folders.by_type(post.get("type")) or sim.folders.input
    upload_type = post.get("type") if sim.folders.by_type(post.get("type")) else "input"
    if not image or not getattr(image, "file", None):
        return web.Response(status=400)
    filename = image.filename
    if not filename:
        return web.Response(status=400)
    subfolder = post.get("subfolder", "")
    full_folder = os.path.join(upload_dir, os.path.normpath(subfolder))
    filepath = os.path.abspath(os.path.join(full_folder, filename))
    if os.path.commonpath((upload_dir, filepath)) != upload_dir:
        return web.Response(status=400)
    os.makedirs(full_folder, exist_ok=True)
    data = image.file.read()
    image.file.seek(0)
    stem, ext = os.path.splitext(filename)
    duplicate = False
    if overwrite not in ("true", "1"):
        i = 1
        while os.path.exists(filepath):
            if _same_bytes(filepath, data):
                duplicate = True
                break
            filename = f"{stem} ({i}){ext}"
            filepath = os.path.join(full_folder, filename)
            i += 1
    if not duplicate:
        if save_function is not None:
            save_function(image, post, filepath)
        else:
            with open(filepath, "wb") as f:
                f.write(data)
    return web.json_response({"name": filename, "subfolder": subfolder, "type": upload_type})


# --------------------------------------------------------------------------- app


def create_app(config: SimConfig) -> web.Application:
    """The aiohttp application; the worker starts with the app (on_startup)."""
    sim = SimServer(config)
    app = web.Application(
        client_max_size=config.max_upload_size,
        middlewares=[auth_middleware, origin_middleware, fault_middleware],
    )
    app[APP_KEY] = sim
    routes = _routes(sim)
    api_routes = web.RouteTableDef()
    for route in routes:
        api_routes.route(route.method, "/api" + route.path)(route.handler)
    app.add_routes(routes)
    app.add_routes(api_routes)

    async def on_startup(app: web.Application) -> None:
        sim.loop = asyncio.get_running_loop()
        sim.messages = asyncio.Queue()
        app["publish_task"] = asyncio.create_task(sim.publish_loop())
        sim.executor.start()

    async def on_shutdown(app: web.Application) -> None:
        for ws in list(sim.sockets.values()):
            await ws.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


async def serve(config: SimConfig) -> None:
    """Serve until cancelled; prints the ready line once the socket accepts connections."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
        print(f"comfybridge.sim listening on http://{config.host}:{config.port}", flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(config: SimConfig) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config))
