"""Fixtures of the campaign tests."""

import pytest

from reviewapp.campaigns import scheduler


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """One scheduler round, its on-commit enqueue run as after a real commit."""

    def tick():
        with django_capture_on_commit_callbacks(execute=True):
            return scheduler.tick()

    return tick
