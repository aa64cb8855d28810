"""The prompt queue and history, as ComfyUI's PromptQueue (execution.py) keeps them."""

from __future__ import annotations

import copy
import heapq
import threading
from typing import Any, Protocol

MAXIMUM_HISTORY_SIZE = 10000
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


class Hub(Protocol):
    """The part of the server the worker talks to (thread-safe sends)."""

    client_id: str | None
    last_node_id: str | None
    last_prompt_id: str | None

    def send_sync(self, event: str | int, data: Any, sid: str | None) -> None: ...

    def queue_updated(self) -> None: ...

    def supports_preview_metadata(self, sid: str | None) -> bool: ...


class PromptQueue:
    def __init__(self, hub: Hub):
        self.hub = hub
        self.mutex = threading.RLock()
        self.not_empty = threading.Condition(self.mutex)
        # Heap of (number, arrival, item): ties on number run in arrival order.
        self.queue: list[tuple[Any, int, list]] = []
        self.arrivals = 0
        self.task_counter = 0
        self.running: dict[int, list] = {}
        self.history: dict[str, dict] = {}

    def put(self, item: list) -> None:
        with self.mutex:
            heapq.heappush(self.queue, (item[0], self.arrivals, item))
            self.arrivals += 1
            self.hub.queue_updated()
            self.not_empty.notify()

    def get(self) -> tuple[list, int]:
        with self.not_empty:
            while not self.queue:
                self.not_empty.wait()
            item = heapq.heappop(self.queue)[2]
            task_id = self.task_counter
            self.running[task_id] = copy.deepcopy(item)
            self.task_counter += 1
            self.hub.queue_updated()
            return item, task_id

    def task_done(self, task_id: int, history_result: dict, status: dict) -> None:
        with self.mutex:
            prompt = self.running.pop(task_id)
            if len(self.history) > MAXIMUM_HISTORY_SIZE:
                self.history.pop(next(iter(self.history)))
            for key in SENSITIVE_EXTRA_DATA_KEYS:
                prompt[3].pop(key, None)
            # Assigning an existing key keeps its position: a reused prompt_id overwrites
            # its entry in place, as in ComfyUI.
            self.history[prompt[1]] = {"prompt": prompt, "outputs": {}, "status": status}
            self.history[prompt[1]].update(history_result)
            self.hub.queue_updated()

    def remaining(self) -> int:
        with self.mutex:
            return len(self.queue) + len(self.running)

    def current(self) -> tuple[list, list]:
        with self.mutex:
            return (
                copy.deepcopy(list(self.running.values())),
                copy.deepcopy([entry[2] for entry in self.queue]),
            )

    def delete(self, prompt_id: str) -> bool:
        with self.mutex:
            for i, entry in enumerate(self.queue):
                if entry[2][1] == prompt_id:
                    if len(self.queue) == 1:
                        self.wipe()
                    else:
                        self.queue.pop(i)
                        heapq.heapify(self.queue)
                    self.hub.queue_updated()
                    return True
            return False

    def wipe(self) -> None:
        with self.mutex:
            self.queue = []
            self.hub.queue_updated()

    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict:
        with self.mutex:
            if prompt_id is None:
                out = {}
                if offset < 0 and max_items is not None:
                    offset = len(self.history) - max_items
                for i, key in enumerate(self.history):
                    if i >= offset:
                        out[key] = self.history[key]
                        if max_items is not None and len(out) >= max_items:
                            break
                return copy.deepcopy(out)
            if prompt_id in self.history:
                return {prompt_id: copy.deepcopy(self.history[prompt_id])}
            return {}

    def delete_history(self, prompt_id: str) -> None:
        with self.mutex:
            self.history.pop(prompt_id, None)

    def wipe_history(self) -> None:
        with self.mutex:
            self.history = {}
