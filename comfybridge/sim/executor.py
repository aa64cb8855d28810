"""Cache and the single worker thread that runs prompts (the queue is in promptqueue.py).

Mirrors ComfyUI's prompt_worker (main.py) and its PromptExecutor (execution.py): one thread
takes prompts in priority order and runs them to completion, so messages of two
prompts never interleave and their order matches PROTOCOL.md §3.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import string
import struct
import sys
import threading
import time
import traceback
from typing import Any

from PIL import Image

from comfybridge.sim.catalog import Catalog
from comfybridge.sim.config import SimConfig
from comfybridge.sim.files import Folders
from comfybridge.sim.nodes import NODES, NodeContext
from comfybridge.sim.promptqueue import Hub, PromptQueue

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4


class Interrupted(Exception):
    pass


class SimulatedFailure(RuntimeError):
    """Raised by --fail-rate; looks like any runtime error of a node."""


TERMINAL_EVENTS = ("execution_success", "execution_error", "execution_interrupted")


def now_ms() -> int:
    return int(time.time() * 1000)


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def full_type_name(ex: BaseException) -> str:
    typ = type(ex)
    if typ.__module__ == "builtins":
        return typ.__qualname__
    return f"{typ.__module__}.{typ.__qualname__}"


# --------------------------------------------------------------------------- scheduling


class ExecutionList:
    """ComfyUI's topological staging (comfy_execution/graph.py), including its UX pick."""

    def __init__(self, prompt: dict, catalog: Catalog, is_cached):
        self.prompt = prompt
        self.catalog = catalog
        self.is_cached = is_cached
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, dict]] = {}

    def _links(self, node_id: str) -> list[tuple[str, int]]:
        node = self.prompt[node_id]
        out = []
        for name, _, _, _ in self.catalog.ordered_inputs(node["class_type"]):
            value = node["inputs"].get(name)
            if is_link(value):
                out.append((value[0], value[1]))
        return out

    def add_node(self, node_id: str) -> None:
        stack = [node_id]
        links = []
        while stack:
            unique_id = stack.pop()
            if unique_id in self.pending:
                continue
            self.pending[unique_id] = True
            self.block_count[unique_id] = 0
            self.blocking[unique_id] = {}
            for src, slot in self._links(unique_id):
                if not self.is_cached(src):
                    stack.append(src)
                links.append((src, slot, unique_id))
        for src, slot, to in links:
            if not self.is_cached(src):
                self.add_node(src)
                if to not in self.blocking[src]:
                    self.blocking[src][to] = {}
                    self.block_count[to] += 1
                self.blocking[src][to][slot] = True

    def is_empty(self) -> bool:
        return not self.pending

    def _is_output(self, node_id: str) -> bool:
        return self.catalog.is_output_node(self.prompt[node_id]["class_type"])

    def stage(self) -> str | None:
        available = [n for n in self.pending if self.block_count[n] == 0]
        if not available:
            return None
        for n in available:
            if self._is_output(n):
                return n
        for n in available:
            if any(self._is_output(b) for b in self.blocking[n]):
                return n
        for n in available:
            for b in self.blocking[n]:
                if any(self._is_output(b1) for b1 in self.blocking[b]):
                    return n
        return available[0]

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for to in self.blocking.pop(node_id):
            self.block_count[to] -= 1


class ProgressState:
    """The per-prompt node registry behind `progress_state` messages."""

    def __init__(self, prompt: dict, prompt_id: str, hub: Hub):
        self.prompt_id = prompt_id
        self.hub = hub
        # Insertion order is the order nodes first became active, as in ComfyUI.
        self.nodes: dict[str, dict] = {}

    def _send(self) -> None:
        nodes = {
            nid: {
                "value": s["value"],
                "max": s["max"],
                "state": s["state"],
                "node_id": nid,
                "prompt_id": self.prompt_id,
                "display_node_id": nid,
                "parent_node_id": None,
                "real_node_id": nid,
            }
            for nid, s in self.nodes.items()
            if s["state"] != "pending"
        }
        self.hub.send_sync(
            "progress_state", {"prompt_id": self.prompt_id, "nodes": nodes}, self.hub.client_id
        )

    def _node(self, nid: str) -> dict:
        return self.nodes.setdefault(nid, {"state": "pending", "value": 0, "max": 1})

    def start(self, nid: str) -> None:
        self._node(nid).update(state="running", value=0.0, max=1.0)
        self._send()

    def update(self, nid: str, value: Any, maximum: Any) -> None:
        self._node(nid).update(state="running", value=value, max=maximum)
        self._send()

    def finish(self, nid: str) -> None:
        s = self._node(nid)
        s.update(state="finished", value=s["max"])
        self._send()


# --------------------------------------------------------------------------- executor


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, int | float | bool | str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], Image.Image):
        w, h = value[0].size
        return f"<{len(value)} image(s) {w}x{h}>"
    if isinstance(value, dict):
        return (
            "<" + ", ".join(f"{k}={v}" for k, v in value.items() if isinstance(v, int | str)) + ">"
        )
    return str(value)


class Executor:
    def __init__(
        self,
        config: SimConfig,
        hub: Hub,
        queue: PromptQueue,
        catalog: Catalog,
        folders: Folders,
        rng: random.Random,
    ):
        self.config = config
        self.hub = hub
        self.queue = queue
        self.catalog = catalog
        self.folders = folders
        self.rng = rng
        self.rng_lock = threading.Lock()
        self.interrupt_flag = threading.Event()
        self.cache: dict[str, tuple[tuple, Any]] = {}
        # The model each kind of loader last loaded: what sits in (simulated) VRAM.
        self.loaded_models: dict[str, str] = {}
        self.preview_prefixes: dict[tuple[str, str], str] = {}
        self.started = 0
        self.thread: threading.Thread | None = None

    # ---- control

    def start(self) -> None:
        self.thread = threading.Thread(target=self._worker, name="prompt_worker", daemon=True)
        self.thread.start()

    def interrupt(self) -> None:
        self.interrupt_flag.set()

    def _random(self) -> float:
        with self.rng_lock:
            return self.rng.random()

    def _check_interrupt(self) -> None:
        if self.interrupt_flag.is_set():
            self.interrupt_flag.clear()
            raise Interrupted("Processing interrupted")

    def _worker(self) -> None:
        while True:
            item, task_id = self.queue.get()
            prompt_id = item[1]
            self.hub.last_prompt_id = prompt_id
            history_result, status = self.execute(item)
            self.queue.task_done(task_id, history_result, status)
            if self.config.timing_log:
                self._log_timing(prompt_id, status)
            if self.hub.client_id is not None:
                self.hub.send_sync(
                    "executing", {"node": None, "prompt_id": prompt_id}, self.hub.client_id
                )

    # ---- faults

    def _on_start(self, item: list) -> None:
        self.started += 1
        if self.config.exec_log:
            line = json.dumps(
                {
                    "prompt_id": item[1],
                    "number": item[0],
                    "time": time.time(),
                    "pid": os.getpid(),
                    "n": self.started,
                }
            )
            with open(self.config.exec_log, "a") as f:
                f.write(line + "\n")
                f.flush()
        if self.config.crash_after is not None and self.started >= self.config.crash_after:
            # Let the first messages of the doomed prompt go out, like a real crash mid-run.
            time.sleep(0.05)
            sys.stdout.flush()
            os._exit(17)

    def _log_timing(self, prompt_id: str, status: dict) -> None:
        # The history entry's own timestamps, kept in a file because clients delete
        # the history once they have fetched the outputs.
        times = {event: data.get("timestamp") for event, data in status["messages"]}
        end = next((e for e in TERMINAL_EVENTS if e in times), None)
        line = {
            "prompt_id": prompt_id,
            "status": status["status_str"],
            "execution_start": times.get("execution_start"),
            "end_event": end,
            "end": times.get(end) if end else None,
        }
        with open(self.config.timing_log, "a") as f:
            f.write(json.dumps(line) + "\n")

    def _sleep_ms(self, ms: float) -> None:
        if ms > 0:
            time.sleep(ms / 1000)

    def _step_delay(self) -> None:
        ms = self.config.step_ms
        if ms > 0 and self.config.jitter > 0:
            ms *= 1 + self._random() * self.config.jitter
        self._sleep_ms(ms)

    def _load_model(self, kind: str, name: str) -> None:
        """Pay ``--model-load-ms`` when a loader switches models. A loader whose output is
        still cached from the previous prompt does not run at all, so repeating a workflow
        costs nothing, as in ComfyUI. Simplified: ComfyUI would also reload the same file
        after a prompt without that loader dropped it from the cache; only switches count
        here, the cost that choosing backends by model can avoid."""
        if self.loaded_models.get(kind) != name:
            self._sleep_ms(self.config.model_load_ms)
            self.loaded_models[kind] = name

    def _work(self, megapixels: float) -> None:
        ms = megapixels * self.config.ms_per_megapixel
        if ms > 0 and self.config.jitter > 0:
            ms *= 1 + self._random() * self.config.jitter
        self._sleep_ms(ms)

    # ---- signatures

    def _signatures(self, prompt: dict) -> dict[str, str]:
        sigs: dict[str, str] = {}

        def sig(nid: str, visiting: frozenset) -> str:
            if nid in sigs:
                return sigs[nid]
            node = prompt.get(nid)
            if not isinstance(node, dict) or nid in visiting:
                # Dangling or cyclic link: never matches anything cached.
                return f"missing:{nid}:{time.time_ns()}"
            class_type = node.get("class_type")
            items = []
            for name in sorted(node.get("inputs", {})):
                value = node["inputs"][name]
                if is_link(value):
                    items.append([name, "LINK", sig(value[0], visiting | {nid}), value[1]])
                else:
                    items.append([name, value])
            node_def = NODES.get(class_type)
            changed = None
            if node_def is not None and node_def.is_changed is not None:
                try:
                    changed = node_def.is_changed(self.folders, node.get("inputs", {}))
                except Exception:
                    changed = time.time_ns()
            raw = json.dumps([class_type, items, changed], sort_keys=True, default=str)
            sigs[nid] = hashlib.sha256(raw.encode()).hexdigest()
            return sigs[nid]

        for nid in prompt:
            sig(nid, frozenset())
        return sigs

    # ---- one prompt

    def execute(self, item: list) -> tuple[dict, dict]:
        _, prompt_id, prompt, extra_data, execute_outputs = item[:5]
        hub = self.hub
        self.interrupt_flag.clear()
        hub.client_id = extra_data.get("client_id")
        messages: list[list] = []

        def add_message(event: str, data: dict, broadcast: bool) -> None:
            data = {**data, "timestamp": now_ms()}
            messages.append([event, data])
            if hub.client_id is not None or broadcast:
                hub.send_sync(event, data, hub.client_id)

        add_message("execution_start", {"prompt_id": prompt_id}, False)
        self._on_start(item)

        sigs = self._signatures(prompt)
        keep = set(sigs.values())
        self.cache = {k: v for k, v in self.cache.items() if k in keep}
        cached_nodes = [nid for nid in prompt if sigs[nid] in self.cache]
        add_message("execution_cached", {"nodes": cached_nodes, "prompt_id": prompt_id}, False)

        run = _PromptRun(self, prompt, prompt_id, extra_data, sigs)
        run.fail_pending = self.config.fail_rate > 0 and self._random() < self.config.fail_rate
        exec_list = ExecutionList(prompt, self.catalog, lambda n: sigs.get(n) in self.cache)
        for output_id in execute_outputs:
            exec_list.add_node(output_id)

        success = True
        while not exec_list.is_empty():
            node_id = exec_list.stage()
            if node_id is None:
                node_id = next(iter(exec_list.pending))
                error = RuntimeError("Dependency cycle detected")
                add_message("execution_error", run.error_message(node_id, error, None), False)
                success = False
                break
            error = run.execute_node(node_id)
            if error is not None:
                success = False
                if isinstance(error, Interrupted):
                    mes = {
                        "prompt_id": prompt_id,
                        "node_id": node_id,
                        "node_type": prompt[node_id]["class_type"],
                        "executed": list(run.executed),
                    }
                    add_message("execution_interrupted", mes, True)
                else:
                    add_message("execution_error", run.error_message(node_id, error, run.tb), False)
                break
            exec_list.complete(node_id)
        else:
            add_message("execution_success", {"prompt_id": prompt_id}, False)

        hub.last_node_id = None
        status = {
            "status_str": "success" if success else "error",
            "completed": success,
            "messages": messages,
        }
        return {"outputs": run.ui_outputs, "meta": run.meta}, status


class _PromptRun:
    """State of one prompt's execution (executed set, ui outputs, progress)."""

    def __init__(
        self,
        executor: Executor,
        prompt: dict,
        prompt_id: str,
        extra_data: dict,
        sigs: dict[str, str],
    ):
        self.ex = executor
        self.hub = executor.hub
        self.prompt = prompt
        self.prompt_id = prompt_id
        self.extra_data = extra_data
        self.sigs = sigs
        self.progress = ProgressState(prompt, prompt_id, executor.hub)
        self.executed: set[str] = set()
        self.ui_outputs: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.current_inputs: dict[str, Any] = {}
        self.tb: list[str] | None = None
        self.fail_pending = False

    def _record_ui(self, node_id: str, ui: Any) -> None:
        if self.hub.client_id is not None:
            self.hub.send_sync(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": ui,
                    "prompt_id": self.prompt_id,
                },
                self.hub.client_id,
            )
        if ui:
            self.ui_outputs[node_id] = ui
            self.meta[node_id] = {
                "node_id": node_id,
                "display_node": node_id,
                "parent_node": None,
                "real_node_id": node_id,
            }

    def execute_node(self, node_id: str) -> BaseException | None:
        hub = self.hub
        node = self.prompt[node_id]
        class_type = node["class_type"]
        sig = self.sigs[node_id]
        cached = self.ex.cache.get(sig)
        if cached is not None:
            self._record_ui(node_id, cached[1])
            self.progress.finish(node_id)
            return None

        self.progress.start(node_id)
        if hub.client_id is not None:
            hub.last_node_id = node_id
            hub.send_sync(
                "executing",
                {"node": node_id, "display_node": node_id, "prompt_id": self.prompt_id},
                hub.client_id,
            )
        self.current_inputs = {}
        try:
            self.ex._check_interrupt()
            inputs = self._inputs(node)
            self.current_inputs = inputs
            if self.fail_pending:
                self.fail_pending = False
                raise SimulatedFailure("Simulated failure (--fail-rate)")
            result = NODES[class_type].function(self._context(node_id, class_type), **inputs)
        except Interrupted as ex:
            return ex
        except Exception as ex:
            self.tb = traceback.format_tb(ex.__traceback__)
            return ex

        if isinstance(result, dict):
            ui, outputs = result.get("ui"), tuple(result.get("result", ()))
        else:
            ui, outputs = None, tuple(result)
        self.ex.cache[sig] = (outputs, ui)
        if ui:
            self._record_ui(node_id, ui)
        self.executed.add(node_id)
        self.progress.finish(node_id)
        return None

    def _inputs(self, node: dict) -> dict[str, Any]:
        out = {}
        # Only declared inputs reach the node: extra keys in a graph are ignored, as in ComfyUI.
        for name, _, _, _ in self.ex.catalog.ordered_inputs(node["class_type"]):
            if name not in node["inputs"]:
                continue
            value = node["inputs"][name]
            if is_link(value):
                outputs = self.ex.cache[self.sigs[value[0]]][0]
                value = outputs[value[1]]
            out[name] = value
        return out

    def _context(self, node_id: str, class_type: str) -> NodeContext:
        key = (node_id, class_type)
        if key not in self.ex.preview_prefixes:
            letters = "".join(random.choice(string.ascii_lowercase) for _ in range(5))
            self.ex.preview_prefixes[key] = f"ComfyUI_temp_{letters}"
        return NodeContext(
            node_id=node_id,
            prompt=self.prompt,
            extra_pnginfo=self.extra_data.get("extra_pnginfo"),
            folders=self.ex.folders,
            progress=lambda value, total, preview=None: self._progress(
                node_id, value, total, preview
            ),
            work=self.ex._work,
            step_delay=self.ex._step_delay,
            preview_prefix=self.ex.preview_prefixes[key],
            load_model=self.ex._load_model,
        )

    def _progress(self, node_id: str, value: int, total: int, preview: tuple | None) -> None:
        hub = self.hub
        self.ex._check_interrupt()
        self.progress.update(node_id, value, total)
        png = None
        if preview is not None:
            kind, payload = preview
            if kind == "PNG_BYTES":
                png = payload
            else:
                buf = io.BytesIO()
                payload.save(buf, format="PNG", compress_level=1)
                png = buf.getvalue()
        client_id = hub.client_id
        wants_metadata = client_id is not None and hub.supports_preview_metadata(client_id)
        if png is not None and wants_metadata:
            meta = json.dumps(
                {
                    "node_id": node_id,
                    "prompt_id": self.prompt_id,
                    "display_node_id": node_id,
                    "parent_node_id": None,
                    "real_node_id": node_id,
                    "image_type": "image/png",
                }
            ).encode()
            frame = struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + png
            hub.send_sync(PREVIEW_IMAGE_WITH_METADATA, frame, client_id)
        hub.send_sync(
            "progress",
            {"value": value, "max": total, "prompt_id": self.prompt_id, "node": node_id},
            client_id,
        )
        if png is not None and not wants_metadata:
            hub.send_sync(PREVIEW_IMAGE, struct.pack(">II", PREVIEW_IMAGE, 2) + png, client_id)

    def error_message(self, node_id: str, error: BaseException, tb: list[str] | None) -> dict:
        return {
            "prompt_id": self.prompt_id,
            "node_id": node_id,
            "node_type": self.prompt[node_id]["class_type"],
            "executed": list(self.executed),
            "exception_message": f"{error}\n",
            "exception_type": full_type_name(error),
            "traceback": tb or [],
            "current_inputs": {k: [_format_value(v)] for k, v in self.current_inputs.items()},
            "current_outputs": list(self.prompt),
        }
