"""Periodic jobs of a serving vault: anchor the access log, sweep blobs, prune counters.

One daemon thread per API process runs the loop, but only the process that leads runs
the jobs: the leader is elected through the database every process shares
(:class:`vault.store.locks.Leadership`, an advisory lock on PostgreSQL, a lock file
beside SQLite). The others try to take the lead every ``retry_seconds``, so when the
leader dies another process runs the jobs from then on. The jobs are also safe to run
twice (the contract serializes anchoring; sweeping only removes blobs that no committed
version references and that are older than the grace period): the election saves the
duplicated work, it is not what keeps the data right.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vault.errors import VaultError

log = logging.getLogger("vault.housekeeping")

#: How often a process that does not lead tries to, and the leader checks it still does:
#: the longest the jobs go unattended after their leader died.
ELECTION_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Job:
    name: str
    interval: float
    run: Callable[[], object]


class Election(Protocol):
    """Who runs the jobs (:class:`vault.store.locks.Leadership` is the real one)."""

    def try_lead(self) -> bool: ...

    def release(self) -> None: ...


class AlwaysLead:
    """The one process there is leads (tests of the jobs themselves, one-off runs)."""

    def try_lead(self) -> bool:
        return True

    def release(self) -> None:
        return None


class Housekeeping:
    def __init__(
        self,
        jobs: list[Job],
        *,
        election: Election | None = None,
        retry_seconds: float = ELECTION_RETRY_SECONDS,
    ) -> None:
        self._jobs = [job for job in jobs if job.interval > 0]
        self._election = election or AlwaysLead()
        self._retry = retry_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)

    def start(self) -> None:
        if self._jobs:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _leads(self) -> bool:
        try:
            return self._election.try_lead()
        except Exception as exc:
            # The database is down or the connection broke: nobody can be sure to lead;
            # ask again at the next retry. The type only (messages may carry a URL).
            log.warning("housekeeping election failed: %s", type(exc).__name__)
            return False

    def _loop(self) -> None:
        leading = False
        due: dict[str, float] = {}
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                leads = self._leads()
                if leads and not leading:
                    log.info("process %d leads housekeeping", os.getpid())
                    due = {job.name: now + job.interval for job in self._jobs}
                elif leading and not leads:
                    log.warning("process %d lost the housekeeping lead", os.getpid())
                leading = leads
                wait = self._retry
                if leading:
                    self._run_due(due, now)
                    wait = min(wait, min(due.values()) - time.monotonic())
                self._stop.wait(max(wait, 0.0))
        finally:
            self._election.release()

    def _run_due(self, due: dict[str, float], now: float) -> None:
        for job in self._jobs:
            if now < due[job.name]:
                continue
            due[job.name] = now + job.interval
            try:
                result = job.run()
            except VaultError as exc:
                # A dependency is down; the work waits for the next run.
                log.warning("%s failed: %s", job.name, exc.code)
            except Exception as exc:
                # Anything else is a bug, but it must not end the thread and with it
                # every later anchor, sweep and prune. The type only: messages of
                # arbitrary exceptions may carry personal data.
                log.error("%s failed unexpectedly: %s", job.name, type(exc).__name__)
            else:
                if result is not None:
                    log.info("%s: %s", job.name, result)
