"""`vault serve --workers 2` as an operator runs it, on SQLite and on PostgreSQL.

One parent prepares the vault (chain, migrations, deployment) once; two uvicorn worker
processes serve it; exactly one of them runs the housekeeping, and when that one is
SIGKILLed another process takes the lead while the vault keeps answering.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.databases import empty_database_url
from tests.served import VAULT, vault_env, wait_healthy
from vault.chain.node import EmbeddedChain

__all__ = ["empty_database_url"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LEADS = re.compile(r"process (\d+) leads housekeeping")


class Output:
    """A server's output lines, collected by a thread as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def leaders(self) -> list[int]:
        return [int(m.group(1)) for line in self.lines if (m := LEADS.search(line))]

    def wait_leaders(self, count: int, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        while len(self.leaders()) < count:
            assert time.monotonic() < deadline, "\n".join(self.lines[-40:])
            time.sleep(0.1)
        return self.leaders()


def workers_of(parent: int) -> set[int]:
    """Pids of the uvicorn worker processes (spawned interpreters) of ``parent``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def two_workers(
    empty_database_url: str, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[str], Output, Path]]:
    env = vault_env(tmp_path / "data", VAULT_DATABASE_URL=empty_database_url)
    proc = subprocess.Popen(
        [*VAULT, "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(proc)
    base = f"http://127.0.0.1:{env['VAULT_PORT']}"
    try:
        wait_healthy(f"{base}/healthz", proc)
        yield base, proc, output, tmp_path / "data"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def test_two_workers_one_housekeeper_and_a_killed_one_is_replaced(
    two_workers: tuple[str, subprocess.Popen[str], Output, Path],
) -> None:
    base, proc, output, data = two_workers
    (leader,) = output.wait_leaders(1, 60)
    deadline = time.monotonic() + 30
    while len(workers := workers_of(proc.pid)) < 2:
        assert time.monotonic() < deadline, workers
        time.sleep(0.2)
    assert leader in workers and len(workers) == 2
    time.sleep(1.0)  # the other worker has tried to lead, and must not have
    assert output.leaders() == [leader]
    assert sum("deployed ConsentRegistry" in line for line in output.lines) == 1

    subprocess.run(["kill", "-KILL", str(leader)], check=True)
    leaders = output.wait_leaders(2, 60)
    assert leaders[1] != leader and leaders[1] in workers_of(proc.pid)
    reply = httpx.get(f"{base}/healthz", timeout=10)
    assert reply.status_code == 200

    # SIGTERM: the workers shut down, then the parent stops the chain it started.
    chain = EmbeddedChain(
        chain_dir=data / "chain", node_modules=PROJECT_ROOT / "node_modules", chain_id=31337
    )
    assert chain.running() is not None
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert chain.running() is None
    assert not workers_of(proc.pid)
