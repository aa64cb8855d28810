"""Client logic that needs no server: messages, outputs, progress, URLs, refused connections."""

import socket

import pytest

from comfybridge.client import (
    ComfyClient,
    ImageRef,
    OutputImage,
    outputs_from_history,
    rejection_messages,
)
from comfybridge.contract import Contract
from comfybridge.errors import ComfyUnavailable
from comfybridge.progress import ProgressTracker

# A 400 body as ComfyUI 0.3.64 sends it (PROTOCOL.md §1, c_validation).
BELOW_MIN = {
    "error": {
        "type": "prompt_outputs_failed_validation",
        "message": "Prompt outputs failed validation",
        "details": "",
        "extra_info": {},
    },
    "node_errors": {
        "1": {
            "errors": [
                {
                    "type": "value_smaller_than_min",
                    "message": "Value 0 smaller than min of 1",
                    "details": "width",
                    "extra_info": {"input_name": "width", "received_value": 0},
                }
            ],
            "dependent_outputs": ["5"],
            "class_type": "EmptyImage",
        }
    },
}

CONTRACT = Contract.from_schema(
    {
        "type": "object",
        "properties": {"size": {"type": "integer", "x-bind": ["1.inputs.width"]}},
    }
)


def test_rejection_messages_name_node_input_and_property():
    assert rejection_messages(BELOW_MIN, contract=CONTRACT) == [
        "node 1 (EmptyImage) input 'width' (property 'size'): Value 0 smaller than min of 1"
    ]


def test_rejection_messages_without_a_contract():
    assert rejection_messages(BELOW_MIN) == [
        "node 1 (EmptyImage) input 'width': Value 0 smaller than min of 1"
    ]


def test_rejection_messages_for_a_whole_prompt_error():
    body = {
        "error": {
            "type": "invalid_prompt",
            "message": "Cannot execute because node NoSuchNode does not exist.",
            "details": "Node ID '#4'",
            "extra_info": {},
        },
        "node_errors": {},
    }
    assert rejection_messages(body) == [
        "Cannot execute because node NoSuchNode does not exist. (Node ID '#4')"
    ]


def test_outputs_come_in_node_and_index_order():
    entry = {
        "outputs": {
            "10": {"images": [{"filename": "c.png", "subfolder": "", "type": "output"}]},
            "9": {
                "images": [
                    {"filename": "a.png", "subfolder": "s", "type": "output"},
                    {"filename": "b.png", "subfolder": "s", "type": "output"},
                ]
            },
            "2": {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}]},
        }
    }
    outputs = outputs_from_history(entry)
    assert [(o.node_id, o.index, o.filename) for o in outputs] == [
        ("2", 0, "p.png"),
        ("9", 0, "a.png"),
        ("9", 1, "b.png"),
        ("10", 0, "c.png"),
    ]
    assert outputs[1].ref == ImageRef("a.png", "s", "output")


def test_load_name_joins_subfolder_and_name():
    assert ImageRef("a.png", "up", "input").load_name == "up/a.png"
    assert ImageRef("a.png", "", "input").load_name == "a.png"
    assert OutputImage("9", 0, "a.png", "", "output").ref.load_name == "a.png"


def test_progress_counts_steps_across_nodes():
    seen = []
    tracker = ProgressTracker(4, seen.append)
    tracker.feed("execution_cached", {"nodes": ["1"]})
    tracker.feed("executing", {"node": "2"})
    tracker.feed("progress", {"node": "2", "value": 5, "max": 10})
    tracker.feed(
        "progress_state",
        {"nodes": {"2": {"value": 10, "max": 10, "state": "finished"}}},
    )
    tracker.finish()
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions)
    assert seen[2].node == "2" and (seen[2].value, seen[2].max) == (5, 10)
    # cached 1 + 5 of 10 steps, with two nodes to go: 6 of 13
    assert seen[2].fraction == pytest.approx(6 / 13, abs=1e-3)
    assert seen[-1].fraction == 1.0


def test_ws_url_follows_the_base_url():
    client = ComfyClient("https://example.test/comfy/", client_id="abc")
    assert client.base_url == "https://example.test/comfy"
    assert client.ws_url == "wss://example.test/comfy/ws?clientId=abc"
    client.close()


def test_base_url_must_be_http():
    with pytest.raises(ValueError):
        ComfyClient("localhost:8188")


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_is_unavailable_and_retryable():
    client = ComfyClient(f"http://127.0.0.1:{_closed_port()}", timeout=2)
    with client, pytest.raises(ComfyUnavailable) as exc:
        client.submit({"1": {"class_type": "EmptyImage", "inputs": {}}}, prompt_id="p1")
    assert exc.value.retryable


def test_the_names_callers_import_from_the_client_module_are_still_there():
    import comfybridge.client

    names = {
        "ComfyClient",
        "AuthRejected",
        "Device",
        "Health",
        "ImageRef",
        "OutputImage",
        "Progress",
        "RunResult",
        "basic_auth",
        "bearer_auth",
        "outputs_from_history",
        "rejection_messages",
        "split_credentials",
    }
    assert names <= set(comfybridge.client.__all__)
    assert all(hasattr(comfybridge.client, name) for name in comfybridge.client.__all__)
