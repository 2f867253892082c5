"""Helper process for test_processes.py: one API process appending to a shared audit log.

Usage: python append_worker.py DATABASE_URL NAME COUNT START_AT

Waits until the wall clock reaches START_AT (so two workers start together), then appends
COUNT entries with record ids ``NAME-0`` .. ``NAME-{COUNT-1}``: half from four threads
through ``AuditLog.append``, half from coroutines on one event loop through
``append_async``, all at once. Prints ``done`` when every append has returned.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

from vault.audit.log import AuditEvent, AuditLog
from vault.store.database import make_engine, make_session_factory

THREADS = 4


def event(name: str, n: int) -> AuditEvent:
    return AuditEvent(
        f"pat_{n % 3}", name, "read", "allowed", "Observation", "TREAT", f"{name}-{n}"
    )


def main() -> None:
    url, name, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    engine = make_engine(url)
    log = AuditLog(session_factory=make_session_factory(engine))
    numbers = list(range(count))
    in_threads, on_loop = numbers[: count // 2], numbers[count // 2 :]

    def thread_worker(mine: list[int]) -> None:
        for n in mine:
            log.append(event(name, n))

    async def loop_worker() -> None:
        await asyncio.gather(*(log.append_async(event(name, n)) for n in on_loop))

    threads = [
        threading.Thread(target=thread_worker, args=(in_threads[i::THREADS],))
        for i in range(THREADS)
    ]
    time.sleep(max(0.0, start_at - time.time()))
    for thread in threads:
        thread.start()
    asyncio.run(loop_worker())
    for thread in threads:
        thread.join()
    engine.dispose()
    print("done", flush=True)


if __name__ == "__main__":
    main()
