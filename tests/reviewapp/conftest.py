"""Fixtures of the app's tests beyond the shared ones in tests/conftest.py."""

import pytest

from comfybridge.sim.process import SimProcess


@pytest.fixture
def sim(settings, tmp_path):
    """A simulator of this test's own, the one backend of pool default, logging every
    execution it starts (read them with ``tests.conftest.executions``)."""
    log = tmp_path / "exec.log"
    with SimProcess(step_ms=0, args=("--exec-log", str(log))) as server:
        server.exec_log = log
        settings.COMFYUI_POOLS = {"default": (server.url,)}
        yield server
