import io
import json
import socket
from pathlib import Path

import pytest
from PIL import Image

from comfybridge.cli import ProgressBar, default_schema, main, parse_sets, parse_value
from comfybridge.client import Progress
from comfybridge.contract import Contract
from comfybridge.errors import ParamsInvalid

ROOT = Path(__file__).resolve().parents[2]
SWATCH = ROOT / "workflows" / "color_swatch.api.json"


def swatch_contract():
    return Contract.from_schema(json.loads(default_schema(SWATCH).read_text()))


def test_values_are_parsed_by_the_property_type():
    assert parse_value({"type": "integer"}, "42") == 42
    assert parse_value({"type": "integer"}, "0xff8000") == 0xFF8000
    assert parse_value({"type": "integer", "format": "x-color"}, "#FF8000") == 0xFF8000
    assert parse_value({"type": "number"}, "6.5") == 6.5
    assert parse_value({"type": "boolean"}, "yes") is True
    assert parse_value({"type": "string"}, "a=b") == "a=b"


def test_parse_sets_reports_bad_pairs_and_unknown_names():
    with pytest.raises(ParamsInvalid) as exc:
        parse_sets(swatch_contract(), ["color=blue", "nope=1", "width"])
    assert set(exc.value.errors) == {"color", ""}


def test_the_schema_defaults_to_the_params_folder():
    assert default_schema(SWATCH) == ROOT / "params" / "color_swatch.schema.json"


def test_the_progress_bar_draws_whole_lines_off_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)
    bar(Progress("1", 0, 1, 0.0))
    bar(Progress("1", 1, 4, 0.05))  # under 10 points more: not drawn
    bar(Progress(None, 1, 1, 1.0))
    assert stream.getvalue().splitlines() == [
        "[..........]   0% node 1 0/1",
        "[##########] 100%",
    ]


def test_invalid_parameters_exit_with_2(capsys, tmp_path):
    code = main(
        ["run", str(SWATCH), "--set", "color=1", "--set", "width=9000", "--out", str(tmp_path)]
    )
    assert code == 2
    assert "width: 9000 is greater than the maximum of 1024" in capsys.readouterr().err


def test_an_unreachable_backend_exits_with_1(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["health", f"http://127.0.0.1:{port}"]) == 1
    assert "ComfyUnavailable" in capsys.readouterr().err


def _sim_class():
    try:
        from comfybridge.sim.process import SimProcess
    except ImportError:
        pytest.skip("comfybridge.sim is not available")
    return SimProcess


def test_sim_run_writes_the_images(capsys, tmp_path):
    with _sim_class()() as proc:
        assert main(["health", proc.url]) == 0
        code = main(
            [
                "run",
                str(SWATCH),
                "--set",
                "color=#3366cc",
                "--set",
                "width=128",
                "--out",
                str(tmp_path),
                "--url",
                proc.url,
            ]
        )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    paths = [Path(line) for line in captured.out.splitlines() if line.endswith(".png")]
    assert len(paths) == 1 and paths[0].parent == tmp_path
    assert Image.open(paths[0]).size == (128, 256)
    assert "100%" in captured.err
