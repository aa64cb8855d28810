"""Transcript replayer used by test_sim_contract.py, and tests of its shape helper.

Replays a recorded ComfyUI transcript against a simulator and compares shapes.

A transcript (tests/comfybridge/transcripts/*.json) is a list of events recorded by a
client talking to a real ComfyUI 0.3.64. The replayer makes the same calls in the same
order. Before each action it waits until every socket has received as many messages as
the recording shows *before that action was sent*, so timing-dependent steps (interrupt
while node 5 runs, reconnect mid-run) happen at the same point of the run.

Comparison is by shape (keys and value types, recursively): ids, timestamps, counters
and file names differ between runs. `status` broadcasts race with execution messages
in the real server too, so their positions are not compared, only their number.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import websocket
from PIL import Image

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
RECORDED_HOST = "127.0.0.1:8188"
_ID = re.compile(
    r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}|\d+)$"
)
_LEARN_KEYS = {"sid", "prompt_id", "filename", "name"}


def load(name: str) -> dict:
    return json.loads((TRANSCRIPTS / f"{name}.json").read_text())


# --------------------------------------------------------------------------- shapes


def _is_map(d: dict) -> bool:
    if not d:
        return False
    if all(isinstance(k, str) and _ID.match(k) for k in d):
        return True
    return all(isinstance(v, dict) and "prompt" in v and "status" in v for v in d.values())


def shape(v: Any) -> Any:
    """Keys and value types, recursively. Id-keyed dicts become the set of value shapes."""
    if isinstance(v, dict):
        if _is_map(v):
            return {"<map>": sorted({json.dumps(shape(x), sort_keys=True) for x in v.values()})}
        return {k: shape(x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        if not v:
            return "[]"
        if all(isinstance(x, str) for x in v):
            return "[str]"
        return [shape(x) for x in v]
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if v is None:
        return "null"
    return "str"


def shape_problems(recorded: Any, ours: Any, where: str = "$") -> list[str]:
    """Differences between the shapes; an id-keyed map of ours may hold fewer kinds."""
    rs, os_ = shape(recorded), shape(ours)
    if rs == os_:
        return []
    if isinstance(rs, dict) and isinstance(os_, dict):
        if "<map>" in rs and "<map>" in os_:
            extra = set(os_["<map>"]) - set(rs["<map>"])
            if not extra:
                return []
            # Find the closest recorded entry to make the message useful.
            rec_vals = list(recorded.values())
            for key, val in ours.items():
                if json.dumps(shape(val), sort_keys=True) in extra:
                    probs = [shape_problems(r, val, f"{where}[{key}]") for r in rec_vals]
                    return min(probs, key=len)
        if "<map>" in rs or "<map>" in os_:
            return [f"{where}: {json.dumps(rs)[:200]} != {json.dumps(os_)[:200]}"]
        out = []
        if set(rs) != set(os_):
            out.append(f"{where}: keys {sorted(rs)} != {sorted(os_)}")
        for k in set(rs) & set(os_):
            out += shape_problems(recorded[k], ours[k], f"{where}.{k}")
        return out
    if isinstance(rs, list) and isinstance(os_, list) and len(rs) == len(os_):
        out = []
        for i, (r, o) in enumerate(zip(recorded, ours, strict=True)):
            out += shape_problems(r, o, f"{where}[{i}]")
        return out
    return [f"{where}: {json.dumps(rs)[:200]} != {json.dumps(os_)[:200]}"]


# --------------------------------------------------------------------------- sockets


class Socket:
    def __init__(self, url: str):
        self.ws = websocket.create_connection(url, timeout=30)
        self.received: list[tuple[str, Any]] = []
        self.closed = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                opcode, data = self.ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    item = ("text", json.loads(data.decode()))
                elif opcode == websocket.ABNF.OPCODE_BINARY:
                    item = ("binary", bytes(data))
                else:
                    break
                with self.lock:
                    self.received.append(item)
        except Exception:  # connection lost ends the reader
            pass
        finally:
            self.closed = True

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def send(self, obj: Any) -> None:
        self.ws.send(json.dumps(obj))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.send_close()
        self.thread.join(5)
        self.ws.shutdown()


# --------------------------------------------------------------------------- replay


def png(color: tuple[int, int, int], size: int = 8, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (size, size), color if mode == "RGB" else (*color, 128)).save(buf, "PNG")
    return buf.getvalue()


class Replay:
    def __init__(
        self,
        sim: Any,
        name: str,
        *,
        files: Callable[[dict, str], bytes] | None = None,
        notes: dict[str, Callable[[], None]] | None = None,
        skip_body: set[int] = frozenset(),
        lenient: Callable[[dict], bool] = lambda e: False,
        timeout: float = 20.0,
    ):
        self.sim = sim
        self.data = load(name)
        self.files = files or (lambda e, field: png((10, 20, 30)))
        self.notes = notes or {}
        self.skip_body = skip_body
        self.lenient = lenient
        self.timeout = timeout
        host = f"{sim.host}:{sim.port}"
        self.subst: dict[str, str] = {RECORDED_HOST: host}
        self.sockets: dict[str, Socket] = {}
        self.expected: dict[str, list[dict]] = {}
        self.learned: dict[str, int] = {}
        self.problems: list[str] = []

    # ---- substitution

    def _sub_str(self, s: str) -> str:
        for rec, ours in self.subst.items():
            s = s.replace(rec, ours)
        return s

    def _sub_json(self, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: self._sub_json(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self._sub_json(x) for x in v]
        if isinstance(v, str) and v in self.subst:
            return self.subst[v]
        return v

    def _learn(self, rec: Any, ours: Any) -> None:
        if isinstance(rec, dict) and isinstance(ours, dict):
            if _is_map(rec) and _is_map(ours):
                if len(rec) == len(ours):
                    for r, o in zip(rec.values(), ours.values(), strict=True):
                        self._learn(r, o)
                return
            for k in rec.keys() & ours.keys():
                r, o = rec[k], ours[k]
                if k in _LEARN_KEYS and isinstance(r, str) and isinstance(o, str) and r != o:
                    if len(r) >= 6:
                        self.subst.setdefault(r, o)
                else:
                    self._learn(r, o)
        elif isinstance(rec, list) and isinstance(ours, list) and len(rec) == len(ours):
            for r, o in zip(rec, ours, strict=True):
                self._learn(r, o)

    # ---- sync

    def _sync(self, events: list[dict], index: int, t_action: float) -> None:
        want: dict[str, int] = {}
        for e in events[:index]:
            if e["kind"] in ("ws_text", "ws_binary") and e["t"] < t_action:
                want[e["ws"]] = want.get(e["ws"], 0) + 1
        deadline = time.monotonic() + self.timeout
        for name, n in want.items():
            sock = self.sockets.get(name)
            if sock is None:
                continue
            while sock.count() < n and not sock.closed and time.monotonic() < deadline:
                time.sleep(0.002)
            if sock.count() < n:
                raise AssertionError(
                    f"socket {name}: waited for {n} messages before event {events[index]['seq']}, "
                    f"got {sock.count()}: {self._types(sock.received)}"
                )
            self._learn_messages(name, n)

    def _learn_messages(self, name: str, n: int) -> None:
        start = self.learned.get(name, 0)
        rec = self.expected[name]
        ours = self.sockets[name].received
        for i in range(start, min(n, len(rec), len(ours))):
            same_type = (
                rec[i]["kind"] == "ws_text"
                and ours[i][0] == "text"
                and rec[i]["json"]["type"] == ours[i][1]["type"]
            )
            if same_type:
                self._learn(rec[i]["json"], ours[i][1])
        self.learned[name] = max(start, n)

    @staticmethod
    def _types(received: list) -> list[str]:
        return [m[1]["type"] if m[0] == "text" else f"bin{m[1][:4].hex()}" for m in received]

    # ---- actions

    def run(self) -> Replay:
        events = self.data["events"]
        for i, e in enumerate(events):
            kind = e["kind"]
            if kind in ("ws_text", "ws_binary"):
                self.expected.setdefault(e["ws"], []).append(e)
                continue
            self._sync(events, i, e.get("t_sent", e["t"]))
            if kind == "ws_open":
                self.expected.setdefault(e["ws"], [])
                self.sockets[e["ws"]] = Socket(self._sub_str(e["url"]))
            elif kind == "ws_send":
                self.sockets[e["ws"]].send(self._sub_json(e["json"]))
            elif kind == "ws_close_called" or (
                kind == "ws_closed" and e.get("reason") == "close frame"
            ):
                self._close(e["ws"])
            elif kind == "http":
                self._http(e)
            elif kind == "note":
                for prefix, hook in self.notes.items():
                    if e["text"].startswith(prefix):
                        hook()
        for name in list(self.sockets):
            self._close(name)
        return self

    def _close(self, name: str) -> None:
        sock = self.sockets.get(name)
        if sock is None or getattr(sock, "done", False):
            return
        want = len(self.expected.get(name, []))
        deadline = time.monotonic() + self.timeout
        while sock.count() < want and not sock.closed and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(0.02)  # anything extra would show up now
        sock.close()
        sock.done = True
        self._compare_socket(name)

    def _http(self, e: dict) -> None:
        url = f"http://{self.sim.host}:{self.sim.port}{self._sub_str(e['path'])}"
        kwargs: dict[str, Any] = {"timeout": 30}
        headers = {k: self._sub_str(v) for k, v in e.get("request_headers", {}).items()}
        if "request_files" in e:
            kwargs["files"] = {
                field: (spec["filename"], self.files(e, field), spec["content_type"])
                for field, spec in e["request_files"].items()
            }
            kwargs["data"] = {k: self._sub_str(v) for k, v in e.get("request_form", {}).items()}
        elif "request_raw" in e:
            kwargs["data"] = e["request_raw"].encode()
        elif e.get("request_json") is not None:
            kwargs["json"] = self._sub_json(e["request_json"])
        r = requests.request(e["method"], url, headers=headers, **kwargs)
        # A prompt followed without a socket (nothing to sync on) may still be running:
        # the recording found it finished, so poll its history the way that client did.
        deadline = time.monotonic() + self.timeout
        while (
            e["method"] == "GET"
            and e["path"].startswith("/history/")
            and e.get("json")
            and r.status_code == 200
            and r.json() == {}
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
            r = requests.request(e["method"], url, headers=headers, **kwargs)
        self._compare_http(e, r)

    # ---- comparisons

    def _compare_http(self, e: dict, r: requests.Response) -> None:
        what = f"seq {e['seq']} {e['method']} {e['path']} ({e.get('label', '')})"
        if r.status_code != e["status"]:
            self.problems.append(f"{what}: status {r.status_code} != {e['status']}: {r.text[:300]}")
            return
        rec_ct = e["headers"].get("Content-Type")
        if rec_ct != r.headers.get("Content-Type"):
            self.problems.append(
                f"{what}: Content-Type {r.headers.get('Content-Type')} != {rec_ct}"
            )
        if "Content-Disposition" in e["headers"] and "Content-Disposition" not in r.headers:
            self.problems.append(f"{what}: no Content-Disposition")
        if e["seq"] in self.skip_body:
            return
        if "json" in e:
            ours = r.json()
            if self.lenient(e) and (ours == {} or e["json"] == {}):
                return
            self._learn(e["json"], ours)
            self.problems += [f"{what}: {p}" for p in shape_problems(e["json"], ours)]
        elif e.get("body_bytes") == 0:
            if r.content:
                self.problems.append(f"{what}: expected an empty body, got {r.content[:80]!r}")
        elif "body_first16_hex" in e:
            if r.content[:4].hex() != e["body_first16_hex"][:8]:
                self.problems.append(f"{what}: body starts {r.content[:8].hex()}")
        elif "text" in e and r.text != e["text"]:
            self.problems.append(f"{what}: text {r.text!r} != {e['text']!r}")

    def _compare_socket(self, name: str) -> None:
        rec = self.expected.get(name, [])
        ours = self.sockets[name].received

        def split(items, recorded):
            status, other = [], []
            for item in items:
                is_status = (
                    (item["kind"] == "ws_text" and item["json"]["type"] == "status")
                    if recorded
                    else (item[0] == "text" and item[1]["type"] == "status")
                )
                (status if is_status else other).append(item)
            return status, other

        rec_status, rec_other = split(rec, True)
        our_status, our_other = split(ours, False)
        rec_types = [
            e["json"]["type"] if e["kind"] == "ws_text" else f"binary{e['event_type']}"
            for e in rec_other
        ]
        our_types = [
            m[1]["type"] if m[0] == "text" else f"binary{int.from_bytes(m[1][:4], 'big')}"
            for m in our_other
        ]
        if rec_types != our_types:
            self.problems.append(
                f"socket {name}: messages\n  recorded {rec_types}\n  ours     {our_types}"
            )
            return
        if len(rec_status) != len(our_status):
            self.problems.append(
                f"socket {name}: {len(our_status)} status messages, recorded {len(rec_status)}"
            )
        for r, o in zip(rec_status + rec_other, our_status + our_other, strict=False):
            if r["kind"] == "ws_text":
                for p in shape_problems(r["json"], o[1], f"socket {name} seq {r['seq']}"):
                    self.problems.append(p)
            else:
                self._compare_binary(name, r, o[1])

    def _compare_binary(self, name: str, r: dict, data: bytes) -> None:
        event = int.from_bytes(data[:4], "big")
        where = f"socket {name} seq {r['seq']} binary"
        if event == 1:
            if int.from_bytes(data[4:8], "big") != r["image_type"]:
                self.problems.append(f"{where}: image type {data[4:8].hex()}")
            if data[8:16].hex() != r["payload_magic_hex"]:
                self.problems.append(f"{where}: payload {data[8:16].hex()}")
        elif event == 4:
            n = int.from_bytes(data[4:8], "big")
            meta = json.loads(data[8 : 8 + n])
            self.problems += shape_problems(r["metadata"], meta, where)
            if data[8 + n : 16 + n].hex() != r["payload_magic_hex"]:
                self.problems.append(f"{where}: payload {data[8 + n : 16 + n].hex()}")

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)


# --------------------------------------------------------------------------- tests


def test_shape_ignores_values_but_not_types():
    a = {"type": "executing", "data": {"node": "1", "prompt_id": "x", "n": 1, "f": 0.0}}
    b = {"type": "other", "data": {"node": "22", "prompt_id": "y", "n": 5, "f": 2.5}}
    assert shape_problems(a, b) == []
    c = {"type": "executing", "data": {"node": "1", "prompt_id": "x", "n": 1.0, "f": 0.0}}
    assert shape_problems(a, c)


def test_shape_of_id_keyed_maps_compares_kinds_not_counts():
    entry = {"prompt": [1, "a", {}, {}, ["2"]], "status": {"status_str": "success"}}
    recorded = {"8e659ca0-0b31-4911-b38f-dcdffbcbc4ae": entry, "2786489": entry}
    assert shape_problems(recorded, {"my-job": entry}) == []
    assert shape_problems(recorded, {}) != []
    assert shape_problems({"1": {"x": 1}}, {"7": {"x": 1}, "8": {"x": 2}}) == []
    assert shape_problems({"1": {"x": 1}}, {"7": {"y": 1}}) != []
