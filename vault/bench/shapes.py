"""The deployment shapes ``vault bench api`` measures, each served fresh for the run.

A shape is a database (SQLite or PostgreSQL), a number of API processes, and the code
that serves it: this checkout's benchmark app (:mod:`vault.bench.app`, through
:mod:`vault.bench.server`), or another checkout of the project at an older commit, served
by that code's own ``vault serve``, so a run can print the code before a change beside
the code after it. Every shape gets its own data directory, its own embedded chain and
(PostgreSQL) its own database, created under the server URL given and dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

from vault.chain.node import free_port
from vault.errors import VaultError

#: How long a shape may take to answer /healthz (chain start, migrations, deployment).
START_TIMEOUT_SECONDS = 120.0


class ShapeFailed(VaultError):
    """A shape's server did not start, or its database could not be made."""

    code = "bench_shape_failed"


@dataclass(frozen=True)
class Shape:
    database: str  # "sqlite" or "postgresql"
    workers: int
    checkout: Path | None = None  # another checkout of the project; None: this one
    ref: str = ""  # the commit ``checkout`` holds, for the label

    @property
    def label(self) -> str:
        code = f"{self.ref} " if self.checkout is not None else ""
        return f"{code}{self.database} x{self.workers}"


@dataclass(frozen=True)
class Served:
    base_url: str
    admin_token: str


def _environment(data_dir: Path, port: int, token: str, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(VAULT_DATA_DIR=str(data_dir), VAULT_PORT=str(port), VAULT_ADMIN_TOKEN=token)
    if database_url is not None:
        env["VAULT_DATABASE_URL"] = database_url
    return env


@contextmanager
def _database(shape: Shape, server_url: str | None) -> Iterator[str | None]:
    """A fresh PostgreSQL database for the shape (dropped after); None for SQLite."""
    if shape.database == "sqlite":
        yield None
        return
    if server_url is None:
        raise ShapeFailed("a PostgreSQL shape needs --database-url")
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"vault_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any driver error: the server URL is the operator's to fix
        admin.dispose()
        raise ShapeFailed(f"could not create a database at --database-url: {exc}") from exc
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _command(shape: Shape, project_root: Path, env: dict[str, str]) -> list[str]:
    if shape.checkout is None:
        return [sys.executable, "-m", "vault.bench.server", "--workers", str(shape.workers)]
    # The older code, with this checkout's toolchain and contract sources (node_modules
    # is not part of a checkout) and its own benchmark routes, mounted by a setting then.
    env["PYTHONPATH"] = str(shape.checkout)
    env["VAULT_PROJECT_ROOT"] = str(project_root)
    env["VAULT_BENCH_ENDPOINTS"] = "true"
    return [sys.executable, "-m", "vault", "serve"]


def _wait_healthy(base_url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise ShapeFailed(f"the server exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ShapeFailed(f"the server did not answer /healthz within {START_TIMEOUT_SECONDS:g} s")


@contextmanager
def serve(shape: Shape, *, project_root: Path, database_url: str | None) -> Iterator[Served]:
    """The shape served on a free loopback port until the block ends (SIGTERM, then wait)."""
    with (
        tempfile.TemporaryDirectory(prefix="vault-bench-") as scratch,
        _database(shape, database_url) as url,
    ):
        data_dir = Path(scratch) / "data"
        token = "bench-" + secrets.token_hex(16)
        port = free_port()
        env = _environment(data_dir, port, token, url)
        command = _command(shape, project_root, env)
        log = Path(scratch) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command,
                env=env,
                cwd=str(shape.checkout or project_root),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base_url, proc, log)
            yield Served(base_url, token)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def checkout_of(project_root: Path, ref: str) -> Iterator[Path]:
    """A detached git worktree of ``ref`` (removed afterwards)."""
    where = Path(tempfile.mkdtemp(prefix=f"vault-{ref[:12]}-"))
    added = subprocess.run(
        ["git", "-C", str(project_root), "worktree", "add", "--detach", str(where), ref],
        capture_output=True,
        text=True,
    )
    if added.returncode != 0:
        raise ShapeFailed(f"git worktree add {ref} failed: {added.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(
            ["git", "-C", str(project_root), "worktree", "remove", "--force", str(where)],
            capture_output=True,
        )
