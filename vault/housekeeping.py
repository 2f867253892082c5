"""Periodic jobs of a serving vault: anchor the access log, sweep crashed writes' blobs.

One daemon thread runs each job at its interval. Jobs are safe to run in several API
processes at once (the contract serializes anchoring; sweeping only removes blobs that
no committed version references and that are older than the grace period).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vault.errors import VaultError

log = logging.getLogger("vault.housekeeping")


@dataclass(frozen=True)
class Job:
    name: str
    interval: float
    run: Callable[[], object]


class Housekeeping:
    def __init__(self, jobs: list[Job]) -> None:
        self._jobs = [job for job in jobs if job.interval > 0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)

    def start(self) -> None:
        if self._jobs:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        due = {job.name: time.monotonic() + job.interval for job in self._jobs}
        while not self._stop.is_set():
            now = time.monotonic()
            for job in self._jobs:
                if now >= due[job.name]:
                    due[job.name] = now + job.interval
                    try:
                        result = job.run()
                    except VaultError as exc:
                        # A dependency is down; the work waits for the next run.
                        log.warning("%s failed: %s", job.name, exc.code)
                    except Exception as exc:
                        # Anything else is a bug, but it must not end the thread and
                        # with it every later anchor, sweep and prune. The type only:
                        # messages of arbitrary exceptions may carry personal data.
                        log.error("%s failed unexpectedly: %s", job.name, type(exc).__name__)
                    else:
                        if result is not None:
                            log.info("%s: %s", job.name, result)
            self._stop.wait(min(due.values()) - time.monotonic() if due else 1.0)
