"""Helper process for test_housekeeping.py: one API process's housekeeping, and no API.

Usage: python -m tests.housekeeper DATABASE_URL LOCK_NAME MARKS_FILE

Runs :class:`Housekeeping` with the real election on the database behind DATABASE_URL
and one job that appends this process's pid to MARKS_FILE every 50 ms (one ``write(2)``
per line, so two processes' lines never interleave). Runs until killed.
"""

from __future__ import annotations

import os
import sys
import threading

from vault.housekeeping import Housekeeping, Job
from vault.store.database import make_engine
from vault.store.locks import Leadership


def main() -> None:
    url, name, marks = sys.argv[1:4]
    engine = make_engine(url)

    def mark() -> None:
        fd = os.open(marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)

    jobs = Housekeeping(
        [Job("mark", 0.05, mark)], election=Leadership(engine, name), retry_seconds=0.2
    )
    jobs.start()
    print("started", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
