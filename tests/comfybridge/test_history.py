"""Deciding an outcome from a history entry, on entries recorded from ComfyUI 0.3.64."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfybridge.errors import ExecutionFailed, Interrupted
from comfybridge.history import decide
from comfybridge.values import RunResult, execution_times

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"


def recorded_entries(scenario: str) -> list[tuple[str, dict]]:
    """(prompt_id, entry) of every non-empty ``GET /history/{id}`` reply in a transcript."""
    events = json.loads((TRANSCRIPTS / f"{scenario}.json").read_text())["events"]
    return [
        (prompt_id, entry)
        for e in events
        if e.get("kind") == "http" and e.get("path", "").startswith("/history/") and e.get("json")
        for prompt_id, entry in e["json"].items()
    ]


def test_a_recorded_success_gives_its_outputs_and_execution_times():
    prompt_id, entry = recorded_entries("a_success")[0]
    result = decide(prompt_id, entry)
    assert [(o.node_id, o.filename) for o in result.saved] == [("5", "peer_chain_00002_.png")]
    # ["execution_start", {"timestamp": 1795535568131}] ... ["execution_success", {... 568147}]
    assert result.execution_start == pytest.approx(1795535568.131)
    assert result.execution_end == pytest.approx(1795535568.147)
    assert result.history is entry


def test_every_recorded_success_has_a_start_before_its_end():
    entries = recorded_entries("a_success") + recorded_entries("b_cached")
    assert len(entries) > 3
    for prompt_id, entry in entries:
        result = decide(prompt_id, entry)
        assert 0 <= result.execution_end - result.execution_start < 5


def test_a_recorded_interrupt_and_error_raise_and_still_have_their_times():
    prompt_id, entry = recorded_entries("e_interrupt")[0]
    with pytest.raises(Interrupted, match="before node 6 \\(ImageBlur\\)"):
        decide(prompt_id, entry)
    # The end of an interrupted prompt is its execution_interrupted message.
    assert execution_times(entry) == pytest.approx((1795535584.562, 1795535588.693))
    prompt_id, entry = recorded_entries("d_execution_error")[0]
    with pytest.raises(ExecutionFailed):
        decide(prompt_id, entry)
    assert execution_times(entry) == pytest.approx((1795535584.328, 1795535584.332))


def _entry(messages) -> dict:
    return {
        "outputs": {},
        "status": {"status_str": "success", "completed": True, "messages": messages},
    }


@pytest.mark.parametrize(
    "stamp", ["1795535568131", None, True, float("nan"), float("inf"), [1], {"ms": 1}]
)
def test_a_timestamp_that_is_not_a_number_is_none(stamp):
    entry = _entry(
        [
            ["execution_start", {"prompt_id": "p", "timestamp": stamp}],
            ["execution_success", {"prompt_id": "p", "timestamp": 1795535568147}],
        ]
    )
    result = decide("p", entry)
    assert result.execution_start is None
    assert result.execution_end == pytest.approx(1795535568.147)


@pytest.mark.parametrize(
    "status",
    [
        {"status_str": "success", "completed": True},
        {"status_str": "success", "completed": True, "messages": []},
        {"status_str": "success", "completed": True, "messages": "odd"},
        {"status_str": "success", "completed": True, "messages": [["execution_start"], 7, None]},
        {"status_str": "success", "completed": True, "messages": [["execution_start", "x"]]},
    ],
)
def test_missing_or_odd_messages_give_no_times(status):
    assert execution_times({"status": status}) == (None, None)
    assert execution_times({"status": "odd"}) == (None, None)
    assert execution_times({}) == (None, None)


def test_cached_is_not_an_end_and_the_run_result_can_be_built_without_times():
    entry = _entry(
        [
            ["execution_start", {"prompt_id": "p", "timestamp": 1000}],
            ["execution_cached", {"nodes": [], "prompt_id": "p", "timestamp": 2000}],
        ]
    )
    assert execution_times(entry) == (1.0, None)
    result = RunResult("p", [], {})
    assert (result.execution_start, result.execution_end) == (None, None)
