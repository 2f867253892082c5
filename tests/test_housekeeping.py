"""The periodic jobs of ``vault serve``: a failing job neither stops the others nor itself."""

from __future__ import annotations

import threading

import pytest

from vault.errors import ChainUnavailable
from vault.housekeeping import Housekeeping, Job


def test_a_job_that_raises_keeps_running_and_so_do_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = {"buggy": 0, "down": 0, "fine": 0}
    enough = threading.Event()

    def buggy() -> None:
        runs["buggy"] += 1
        raise RuntimeError("a bug, with maybe personal data in its message")

    def down() -> None:
        runs["down"] += 1
        raise ChainUnavailable("node down")

    def fine() -> None:
        runs["fine"] += 1
        if min(runs.values()) >= 3:
            enough.set()

    jobs = Housekeeping(
        [Job("buggy", 0.01, buggy), Job("down", 0.01, down), Job("fine", 0.01, fine)]
    )
    jobs.start()
    try:
        assert enough.wait(10), runs
    finally:
        jobs.stop()
    assert "buggy failed unexpectedly: RuntimeError" in caplog.text
    assert "personal data" not in caplog.text
    assert "down failed: chain_unavailable" in caplog.text
