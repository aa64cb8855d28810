"""The playbook's minimal client (seed article §3): submit, block on the websocket until
``executing`` with node None, fetch from /history and /view, one prompt at a time.

Kept as the playbook wrote it, with one change: the websocket is opened before the POST
instead of after it, so a prompt that finishes before the socket connects cannot hang it
(this only helps the naive client). It may also hand back the history entry's execution
timestamps it fetched anyway, for a backend that writes no timing log (a real ComfyUI).
"""

from __future__ import annotations

import copy
import json
import urllib.parse
import uuid

import requests
import websocket


def run_one(http: str, graph: dict, timings: list | None = None) -> list[bytes]:
    client_id = str(uuid.uuid4())
    ws = websocket.create_connection(
        f"{http.replace('http', 'ws', 1)}/ws?clientId={client_id}", timeout=180
    )
    try:
        r = requests.post(f"{http}/prompt", json={"prompt": graph, "client_id": client_id},
                          timeout=30)  # fmt: skip
        r.raise_for_status()
        prompt_id = r.json()["prompt_id"]
        while True:
            msg = ws.recv()
            if isinstance(msg, bytes | bytearray):
                continue
            evt = json.loads(msg)
            if evt.get("type") == "executing":
                d = evt.get("data", {})
                if d.get("prompt_id") == prompt_id and d.get("node") is None:
                    break
    finally:
        ws.close()
    r = requests.get(f"{http}/history/{prompt_id}", timeout=30)
    r.raise_for_status()
    history = r.json()[prompt_id]
    if timings is not None:
        timings.append(execution_times(history))
    results = []
    for out in history.get("outputs", {}).values():
        for img in out.get("images", []):
            q = urllib.parse.urlencode(
                {"filename": img["filename"], "subfolder": img["subfolder"], "type": img["type"]}
            )
            imr = requests.get(f"{http}/view?{q}", timeout=60)
            imr.raise_for_status()
            results.append(imr.content)
    return results


def execution_times(history: dict) -> dict:
    """The history entry's execution_start and end timestamps (ms), as --timing-log has them."""
    times = {event: data.get("timestamp") for event, data in history["status"]["messages"]}
    end = next((times[e] for e in TERMINAL if e in times), None)
    return {"execution_start": times.get("execution_start"), "end": end}


TERMINAL = ("execution_success", "execution_error", "execution_interrupted")


def run_backlog(
    http: str, base_graph: dict, n: int, size: int, colors, timings: list | None = None
) -> int:
    images = 0
    for i in range(n):
        graph = copy.deepcopy(base_graph)
        graph["1"]["inputs"].update({"width": size, "height": size, "color": colors(i)})
        images += len(run_one(http, graph, timings))
    return images
