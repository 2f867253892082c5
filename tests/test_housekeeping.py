"""The periodic jobs of ``vault serve``: one process of several runs them, and survives.

A failing job neither stops the others nor itself; only the elected process runs jobs;
when it dies (SIGKILL), another process takes over, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import empty_database_url
from vault.errors import ChainUnavailable
from vault.housekeeping import Housekeeping, Job
from vault.store.database import make_engine
from vault.store.locks import Leadership

__all__ = ["empty_database_url"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


def test_only_the_leader_runs_jobs_and_a_released_lead_passes_on(
    empty_database_url: str,
) -> None:
    engine = make_engine(empty_database_url)
    runs = {"first": 0, "second": 0}
    second_ran = threading.Event()

    def job(who: str) -> Job:
        def run() -> None:
            runs[who] += 1
            if who == "second":
                second_ran.set()

        return Job(who, 0.01, run)

    first = Housekeeping(
        [job("first")], election=Leadership(engine, "test-lead"), retry_seconds=0.05
    )
    second = Housekeeping(
        [job("second")], election=Leadership(engine, "test-lead"), retry_seconds=0.05
    )
    first.start()
    try:
        deadline = time.monotonic() + 10
        while runs["first"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        second.start()
        time.sleep(0.5)
        assert runs["first"] >= 3
        assert runs["second"] == 0, "a second process ran the jobs while the first led"
    finally:
        first.stop()  # releases the lead on its way out
    try:
        assert second_ran.wait(10), "the lead was released but nobody took it"
    finally:
        second.stop()
        engine.dispose()


def _marks(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _wait_for(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def housekeepers(
    empty_database_url: str, tmp_path: Path
) -> Iterator[tuple[list[subprocess.Popen[str]], Path]]:
    marks = tmp_path / "marks"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.housekeeper", empty_database_url, "test", str(marks)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        yield procs, marks
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def test_two_processes_one_runs_the_jobs_and_the_other_takes_over_when_it_is_killed(
    housekeepers: tuple[list[subprocess.Popen[str]], Path],
) -> None:
    procs, marks = housekeepers
    _wait_for(lambda: len(_marks(marks)) >= 10, 20, "no process ran the job")
    time.sleep(1.0)  # both have been trying to lead for a while
    leaders = set(_marks(marks))
    assert len(leaders) == 1, f"several processes ran the job: {leaders}"
    (leader,) = leaders
    survivor = next(proc for proc in procs if proc.pid != leader)
    next(proc for proc in procs if proc.pid == leader).send_signal(signal.SIGKILL)
    killed_at = len(_marks(marks))
    _wait_for(
        lambda: survivor.pid in _marks(marks)[killed_at:],
        10,
        "the surviving process did not take over the jobs",
    )
    after = _marks(marks)[killed_at:]
    assert set(after) <= {leader, survivor.pid}
    # At most a mark the dying leader had in flight; from then on only the survivor.
    assert after.count(leader) <= 1
