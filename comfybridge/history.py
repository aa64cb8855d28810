"""What the backend knows about a prompt, read from its queue and its history.

ComfyUI writes a prompt's history entry before it sends the prompt's last websocket message,
and keeps queue and history in memory only. So:

- the outcome of a prompt is decided from its history entry alone (``decide``), never from
  websocket messages, which can be lost or replay stale outputs of cached nodes;
- ``wait_for_entry`` follows the websocket only to know *when* to read the history: at once
  after an ending message or a reconnect, otherwise every ``poll_interval``. ComfyUI sends a
  prompt's messages only to the socket that submitted it; for a prompt submitted elsewhere
  (by another worker, ahead of this one) the history is read whenever the backend tells
  every socket that its queue changed (a ``status`` message: a prompt was queued, started
  or ended), so its end is seen at once instead of up to ``poll_interval`` later;
- a prompt in neither the queue nor the history was lost in a restart, once that has lasted
  ``lost_grace`` seconds (it moves from queue to history between two reads otherwise);
- after an ambiguous POST failure the id is looked up before anything is posted again,
  because ComfyUI does not deduplicate prompt ids (``recover_submission``).

The functions take the client as a ``Backend``: anything with ``history`` and ``queue``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

import websocket

from .errors import (
    ComfyError,
    ComfyUnavailable,
    ExecutionFailed,
    Interrupted,
    PromptLost,
    RunTimeout,
)
from .progress import ProgressTracker
from .values import RunResult
from .ws import Follower, ends_prompt

log = logging.getLogger(__name__)


class Backend(Protocol):
    """What these functions need of a client (``ComfyClient`` is one): its two lookups."""

    def history(self, prompt_id: str) -> dict | None: ...

    def queue(self) -> dict: ...


def item_id(item: Any) -> str | None:
    """The prompt id of a ``/queue`` item (``[number, prompt_id, prompt, extra, outputs]``)."""
    if isinstance(item, (list, tuple)) and len(item) > 1:
        return str(item[1])
    return None


def in_queue(queue: Mapping, prompt_id: str, *keys: str) -> bool:
    """True when ``prompt_id`` is in the ``/queue`` lists named (both when none are)."""
    keys = keys or ("queue_running", "queue_pending")
    return any(item_id(item) == prompt_id for key in keys for item in queue.get(key) or [])


def locate(backend: Backend, prompt_id: str) -> str | None:
    """Where the backend has this prompt: "running", "pending", "done", or None."""
    if backend.history(prompt_id) is not None:
        return "done"
    queue = backend.queue()
    for state, key in (("running", "queue_running"), ("pending", "queue_pending")):
        if in_queue(queue, prompt_id, key):
            return state
    # It may have finished between the two reads.
    return "done" if backend.history(prompt_id) is not None else None


def poll(backend: Backend, prompt_id: str) -> dict | str:
    """The history entry, or "queued", or "absent"."""
    entry = backend.history(prompt_id)
    if entry is not None:
        return entry
    if in_queue(backend.queue(), prompt_id):
        return "queued"
    entry = backend.history(prompt_id)
    return entry if entry is not None else "absent"


def decide(prompt_id: str, entry: dict) -> RunResult:
    """The ``RunResult`` of a finished prompt, or the error its history entry records."""
    status = entry.get("status") or {}
    for kind, data in status.get("messages") or []:
        if kind == "execution_error":
            raise ExecutionFailed(
                node_id=str(data.get("node_id")),
                node_type=str(data.get("node_type")),
                exception_type=str(data.get("exception_type")),
                exception_message=str(data.get("exception_message") or ""),
            )
        if kind == "execution_interrupted":
            node = data.get("node_id")
            raise Interrupted(
                f"prompt {prompt_id} was interrupted"
                + (f" before node {node} ({data.get('node_type')})" if node else "")
            )
    if status.get("status_str") != "success" or not status.get("completed", False):
        raise ComfyError(f"prompt {prompt_id} did not complete: {status or 'no status'}")
    return RunResult.from_history(prompt_id, entry)


def wait_for_entry(
    backend: Backend,
    follower: Follower,
    prompt_id: str,
    tracker: ProgressTracker,
    *,
    timeout: float,
    poll_interval: float,
    lost_grace: float,
) -> dict:
    """Follow ``prompt_id`` until its history entry exists; return the entry.

    Raises ``PromptLost`` (in neither queue nor history for ``lost_grace`` seconds) or
    ``RunTimeout`` after ``timeout`` seconds. ``tracker`` is fed the prompt's messages.
    """
    deadline = time.monotonic() + timeout
    # A prompt submitted through this socket reports its own end over it; anything else
    # (submitted elsewhere, or the socket dropped since) is looked up at once.
    poll_at = time.monotonic() + (poll_interval if follower.follows(prompt_id) else 0.0)
    queue_changes = follower.queue_changes
    absent_since: float | None = None
    last_problem = ""
    for message in follower.take(prompt_id):
        if ends_prompt(message):
            poll_at = time.monotonic()
        else:
            tracker.feed(message.get("type"), message.get("data") or {})
    while True:
        now = time.monotonic()
        if now >= poll_at:
            try:
                state = poll(backend, prompt_id)
            except ComfyUnavailable as exc:
                state, last_problem = "unreachable", str(exc)
            if isinstance(state, dict):
                follower.settle(prompt_id)
                return state
            if state == "absent":
                absent_since = absent_since or now
                if now - absent_since >= lost_grace:
                    raise PromptLost(
                        f"prompt {prompt_id} is neither queued nor in the history: "
                        "the backend forgot it (restarted?)"
                    )
                poll_at = now + min(0.5, lost_grace / 3)
            else:
                absent_since = None
                poll_at = now + poll_interval
        if now >= deadline:
            detail = f" (last problem: {last_problem})" if last_problem else ""
            raise RunTimeout(f"prompt {prompt_id} did not finish in {timeout:g}s{detail}")
        if not follower.ensure(quiet=True):
            last_problem = f"websocket {follower.url} unreachable"
            time.sleep(max(0.0, min(0.5, deadline - now, poll_at - now)))
            poll_at = min(poll_at, time.monotonic() + 0.5)
            continue
        try:
            message = follower.next_message(prompt_id)
        except (OSError, websocket.WebSocketException) as exc:
            # Messages sent while the socket was down are lost; the history is not.
            last_problem = f"websocket: {exc}"
            poll_at = time.monotonic()
            continue
        if message is None:
            if follower.queue_changes != queue_changes and not follower.follows(prompt_id):
                poll_at = time.monotonic()  # submitted elsewhere: did it just end?
            queue_changes = follower.queue_changes
            continue
        if ends_prompt(message):
            poll_at = time.monotonic()
        else:
            tracker.feed(message.get("type"), message.get("data") or {})
            poll_at = max(poll_at, time.monotonic() + poll_interval)


def recover_submission(backend: Backend, prompt_id: str, cause: Any, grace: float) -> dict:
    """After an ambiguous POST failure: submitted if the backend knows the id within ``grace``.

    Raises ``ComfyUnavailable`` when it does not: the prompt certainly was not queued.
    """
    deadline = time.monotonic() + grace
    last_error: Exception | None = None
    while True:
        try:
            if locate(backend, prompt_id) is not None:
                log.info("POST /prompt failed (%s) but %s was queued", cause, prompt_id)
                return {
                    "prompt_id": prompt_id,
                    "number": None,
                    "node_errors": {},
                    "recovered": True,
                }
        except ComfyError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    detail = f"; lookup failed: {last_error}" if last_error else ""
    raise ComfyUnavailable(
        f"POST /prompt failed ({cause}) and the backend does not know {prompt_id}{detail}"
    )
