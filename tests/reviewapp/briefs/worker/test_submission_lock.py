"""The per-generation submission lock: a dead holder lets go within its TTL, a live one
keeps it for as long as it works."""

from __future__ import annotations

import threading
import time

import pytest

from reviewapp.briefs.worker import backends, submit


@pytest.fixture
def short_lock(monkeypatch, rq_queue):
    monkeypatch.setattr(submit, "SUBMIT_LOCK_TTL_S", 1.0)
    monkeypatch.setattr(submit, "SUBMIT_LOCK_RENEW_S", 0.2)
    monkeypatch.setattr(submit, "SUBMIT_LOCK_WAIT_S", 5.0)


def test_a_holder_that_died_lets_go_within_the_ttl(short_lock):
    # What a SIGKILLed worker leaves: the key, and nobody renewing it.
    backends.redis().set(submit._lock_key(7), "dead-holder", px=1000)
    started = time.monotonic()
    with submit.submission_lock(7):
        waited = time.monotonic() - started
    assert 0.5 < waited < 2.5


def test_a_live_holder_keeps_its_lock_past_the_ttl(short_lock):
    held = threading.Event()
    release = threading.Event()

    def hold():
        with submit.submission_lock(8):
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(2)
    time.sleep(2.5)  # 2.5 x the TTL: renewed meanwhile
    other = backends.redis().lock(submit._lock_key(8), timeout=1, blocking_timeout=0.1)
    assert other.acquire() is False
    release.set()
    holder.join(2)
    assert backends.redis().get(submit._lock_key(8)) is None  # given back on exit
