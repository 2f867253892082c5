"""`vault` as an operator runs it: subprocesses of the real command, on a temp data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from vault.chain.node import free_port

VAULT = [sys.executable, "-m", "vault"]


def run_vault(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(VAULT + args, env=env, capture_output=True, text=True, timeout=timeout)


def vault_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without VAULT_*, plus a data dir, a free port and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env["VAULT_DATA_DIR"] = str(data_dir)
    env["VAULT_PORT"] = str(free_port())
    env.update(extra)
    return env


def wait_healthy(
    url: str, proc: subprocess.Popen[str], timeout: float = 90, log: Path | None = None
) -> httpx.Response:
    """Poll ``url`` until it answers 200; fail with the server's output if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            if log is not None and log.is_file():
                output += log.read_text(errors="replace")
            raise AssertionError(f"vault serve exited: {output}")
        try:
            reply = httpx.get(url, timeout=2)
            if reply.status_code == 200:
                return reply
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("vault serve did not answer in time")


@contextmanager
def served_vault(env: dict[str, str]) -> Iterator[str]:
    """`vault serve` with ``env``; yields its base URL; SIGTERM (it stops its chain) after.

    The server's output goes to ``serve-PORT.log`` beside the data dir (a pipe nobody reads
    would fill up and stall a chatty server), and is shown if it exits before answering.
    """
    log = Path(env["VAULT_DATA_DIR"]).parent / f"serve-{env['VAULT_PORT']}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*VAULT, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    base = f"http://127.0.0.1:{env['VAULT_PORT']}"
    try:
        wait_healthy(f"{base}/healthz", proc, log=log)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
