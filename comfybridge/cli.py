"""Command line: run a workflow with parameters, or check that a backend answers.

python -m comfybridge run workflows/color_swatch.api.json --set color=0xFF8000 --out out/
python -m comfybridge health http://127.0.0.1:8188
python -m comfybridge warmup http://127.0.0.1:8188 workflows/sdxl_base_refiner.api.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from .catalog import Catalog
from .client import ComfyClient, Progress, bearer_auth
from .contract import Contract, stamp_save_prefixes
from .errors import ComfyError, ContractError, ParamsInvalid

DEFAULT_URL = "http://127.0.0.1:8188"


def parse_value(prop: dict, text: str) -> Any:
    """A ``--set`` value converted to the property's JSON type."""
    kinds = prop.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if "integer" in kinds:
        if prop.get("format") == "x-color" and text.startswith("#"):
            return int(text[1:], 16)
        try:
            return int(text)
        except ValueError:
            return int(text, 0)  # 0xFF8000
    if "number" in kinds:
        return float(text)
    if "boolean" in kinds:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{text!r} is not true or false")
    return text


def parse_sets(contract: Contract, pairs: list[str]) -> dict:
    params: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            errors.setdefault("", []).append(f"--set {pair!r} is not NAME=VALUE")
            continue
        prop = contract.properties.get(name)
        if prop is None:
            errors.setdefault("", []).append(f"unknown parameter {name!r}")
            continue
        try:
            params[name] = parse_value(prop, text)
        except ValueError as exc:
            errors.setdefault(name, []).append(str(exc))
    if errors:
        raise ParamsInvalid(errors)
    return params


class ProgressBar:
    """One line on a terminal, redrawn in place; whole lines otherwise."""

    def __init__(self, stream: TextIO, width: int = 30):
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.last_shown = -100

    def __call__(self, progress: Progress) -> None:
        percent = int(progress.fraction * 100)
        if not self.tty and percent < 100 and percent - self.last_shown < 10:
            return
        self.last_shown = percent
        filled = int(self.width * progress.fraction)
        bar = "#" * filled + "." * (self.width - filled)
        node = f" node {progress.node} {progress.value}/{progress.max}" if progress.node else ""
        line = f"[{bar}] {percent:3d}%{node}"
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width + 30))
            if progress.fraction >= 1:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def default_schema(workflow: Path) -> Path:
    name = workflow.name.removesuffix(".api.json").removesuffix(".json")
    return workflow.resolve().parent.parent / "params" / f"{name}.schema.json"


def client_headers(args: argparse.Namespace) -> dict[str, str]:
    """``--header NAME:VALUE`` (repeatable) and ``--token`` / COMFYUI_TOKEN (a bearer token)."""
    headers: dict[str, str] = {}
    if args.token:
        headers.update(bearer_auth(args.token))
    for item in args.header or []:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header {item!r} is not NAME: VALUE")
        headers[name.strip()] = value.strip()
    return headers


def make_client(args: argparse.Namespace, url: str) -> ComfyClient:
    return ComfyClient(url, headers=client_headers(args), timeout=args.http_timeout)


def cmd_run(args: argparse.Namespace) -> int:
    workflow = Path(args.workflow)
    schema_path = Path(args.schema) if args.schema else default_schema(workflow)
    graph = json.loads(workflow.read_text("utf-8"))
    contract = Contract.from_schema(json.loads(schema_path.read_text("utf-8")))
    params = contract.validate(parse_sets(contract, args.set or []))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prompt_id = str(uuid.uuid4())
    with make_client(args, args.url) as client:
        if not args.no_check:
            contract.check_graph(graph, Catalog(client.object_info()))
        for name in contract.image_properties():
            if name in params:
                path = Path(params[name])
                ref = client.upload_image(path.read_bytes(), path.name)
                params[name] = ref.load_name
        patched = stamp_save_prefixes(contract.patch(graph, params), prompt_id[:8])
        print(f"prompt {prompt_id} on {args.url}", file=sys.stderr)
        result = client.run(
            patched,
            prompt_id=prompt_id,
            timeout=args.timeout,
            on_progress=None if args.quiet else ProgressBar(sys.stderr),
            contract=contract,
        )
        images = result.outputs if args.previews else result.saved
        for image in images:
            target = out / image.filename
            target.write_bytes(client.download(image, max_bytes=args.max_bytes))
            print(target)
    if not images:
        print("the run produced no images", file=sys.stderr)
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    with make_client(args, args.url) as client:
        health = client.health()
        queue = client.queue()
        capabilities = client.capabilities()
    devices = ", ".join(d.name for d in health.devices) or "none"
    running = len(queue.get("queue_running") or [])
    pending = len(queue.get("queue_pending") or [])
    print(
        f"ok: ComfyUI {health.comfyui_version or '?'} at {health.url}; "
        f"devices: {devices}; running {running}, pending {pending}"
    )
    print(f"capabilities: {capabilities.summary()}")
    return 0


def cmd_warmup(args: argparse.Namespace) -> int:
    """Run a workflow once (e.g. to load its models) and say how long it took."""
    workflow = Path(args.workflow)
    graph = json.loads(workflow.read_text("utf-8"))
    schema_path = Path(args.schema) if args.schema else default_schema(workflow)
    # Without parameters the graph runs as written: its literals are a valid run already.
    if args.schema or args.set:
        contract = Contract.from_schema(json.loads(schema_path.read_text("utf-8")))
        graph = contract.prepare(graph, parse_sets(contract, args.set or []))
    with make_client(args, args.url) as client:
        client.check_can_run(graph)
        started = time.monotonic()
        result = client.run(graph, timeout=args.timeout)
        took = time.monotonic() - started
    cached = next(
        (
            len(data.get("nodes") or [])
            for kind, data in (result.history.get("status") or {}).get("messages") or []
            if kind == "execution_cached"
        ),
        0,
    )
    note = f" ({cached} of {len(graph)} nodes from cache)" if cached else ""
    print(f"warmed {client.base_url} with {workflow.name} in {took:.2f}s{note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m comfybridge", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--http-timeout", type=float, default=30.0, help="seconds per request")
    commands = parser.add_subparsers(dest="command", required=True)
    auth = argparse.ArgumentParser(add_help=False)
    auth.add_argument(
        "--token",
        default=os.environ.get("COMFYUI_TOKEN"),
        help="bearer token for a proxy in front of ComfyUI (default: $COMFYUI_TOKEN)",
    )
    auth.add_argument(
        "--header", action="append", metavar="NAME:VALUE", help="extra header (repeat)"
    )

    run = commands.add_parser("run", parents=[auth], help="run a workflow and write its images")
    run.add_argument("workflow", help="an API-format graph, e.g. workflows/NAME.api.json")
    run.add_argument("--schema", help="its parameter schema (default: params/NAME.schema.json)")
    run.add_argument("--set", action="append", metavar="NAME=VALUE", help="a parameter (repeat)")
    run.add_argument("--out", default=".", help="folder for the images (default: .)")
    run.add_argument("--url", default=os.environ.get("COMFYUI_URL", DEFAULT_URL))
    run.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole run")
    run.add_argument("--max-bytes", type=int, default=256 * 1024 * 1024, help="per image")
    run.add_argument("--previews", action="store_true", help="also write temporary previews")
    run.add_argument("--no-check", action="store_true", help="skip the /object_info check")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    health = commands.add_parser(
        "health", parents=[auth], help="check that a backend answers; list what it can run"
    )
    health.add_argument("url", nargs="?", default=os.environ.get("COMFYUI_URL", DEFAULT_URL))
    health.set_defaults(func=cmd_health)

    warmup = commands.add_parser(
        "warmup", parents=[auth], help="run a workflow once (load its models) and time it"
    )
    warmup.add_argument("url", help="the backend")
    warmup.add_argument("workflow", help="an API-format graph, e.g. workflows/NAME.api.json")
    warmup.add_argument("--schema", help="its parameter schema (default: params/NAME.schema.json)")
    warmup.add_argument("--set", action="append", metavar="NAME=VALUE", help="a parameter")
    warmup.add_argument("--timeout", type=float, default=600.0, help="seconds for the run")
    warmup.set_defaults(func=cmd_warmup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ParamsInvalid, ContractError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ComfyError as exc:
        retry = " (temporary; try again)" if exc.retryable else ""
        print(f"error: {type(exc).__name__}: {exc}{retry}", file=sys.stderr)
        return 1
