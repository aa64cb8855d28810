"""Fixtures of the pool tests: three slow simulators per module, idle again after each test."""

import pytest

from comfybridge.sim.process import SimProcess
from tests.comfybridge.pool_helpers import SLOW, make_idle


@pytest.fixture(scope="module")
def sims():
    started = [SimProcess(args=SLOW).start() for _ in range(3)]
    yield started
    for sim in started:
        sim.stop()


@pytest.fixture
def a_b_c(sims):
    """The three simulators, started again if a test stopped one, and emptied afterwards."""
    yield sims
    for sim in sims:
        if not sim.alive():
            sim.start()
        make_idle(sim)
