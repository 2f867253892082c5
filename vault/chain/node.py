"""The embedded chain: a local Anvil node whose state persists under ``data_dir``.

``vault chain up`` starts Anvil detached and records its pid and port in
``chain/anvil.json``; ``vault serve`` attaches to it or starts it; ``vault chain down``
stops it with SIGTERM, on which Anvil writes its state. ``--state-interval 1`` also dumps
the state every second, so even a SIGKILLed node comes back with (almost) all of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from vault.errors import ChainUnavailable, ToolchainError

STATE_INTERVAL_SECONDS = 1


def anvil_binary(node_modules: Path) -> Path:
    """Path of the pinned anvil binary installed by npm."""
    path = node_modules / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not path.exists():
        raise ToolchainError(f"anvil not found at {path}; run the README's set-up command")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rpc_ready(url: str, *, timeout: float = 0.5) -> bool:
    """True when a JSON-RPC endpoint answers ``eth_chainId``."""
    try:
        reply = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout=timeout,
        )
        return reply.status_code == 200 and "result" in reply.json()
    except (httpx.HTTPError, ValueError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    return True


@dataclass(frozen=True)
class AnvilProcess:
    """A running (or recorded) Anvil node."""

    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class EmbeddedChain:
    """Start, find and stop the Anvil node that belongs to one data directory."""

    def __init__(self, *, chain_dir: Path, node_modules: Path, chain_id: int, port: int = 0):
        self.chain_dir = chain_dir
        self.node_modules = node_modules
        self.chain_id = chain_id
        self.port = port
        self.record_file = chain_dir / "anvil.json"
        self.state_file = chain_dir / "state.json"
        self.log_file = chain_dir / "anvil.log"
        self.port_file = chain_dir / "port"

    def running(self) -> AnvilProcess | None:
        """The recorded node, if its process is alive and answers JSON-RPC."""
        try:
            record = json.loads(self.record_file.read_text())
            node = AnvilProcess(pid=int(record["pid"]), port=int(record["port"]))
        except (OSError, ValueError, KeyError):
            return None
        if _alive(node.pid) and rpc_ready(node.url):
            return node
        return None

    def up(self, *, timeout: float = 15.0) -> tuple[AnvilProcess, bool]:
        """Attach to the running node or start one. Returns ``(node, started)``."""
        existing = self.running()
        if existing is not None:
            return existing, False
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        port = self.port or self._previous_port() or free_port()
        args = [
            str(anvil_binary(self.node_modules)),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            str(self.chain_id),
            "--state",
            str(self.state_file),
            "--state-interval",
            str(STATE_INTERVAL_SECONDS),
            "--silent",
        ]
        with self.log_file.open("ab") as log:
            # A new session: the node outlives `vault chain up` and ignores the
            # terminal's Ctrl-C; `vault chain down` (or serve's shutdown) stops it.
            proc = subprocess.Popen(
                args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
        node = AnvilProcess(pid=proc.pid, port=port)
        deadline = time.monotonic() + timeout
        while not rpc_ready(node.url):
            if proc.poll() is not None:
                raise ChainUnavailable(
                    f"anvil exited with code {proc.returncode}; see {self.log_file}"
                )
            if time.monotonic() > deadline:
                proc.terminate()
                raise ChainUnavailable(f"anvil did not answer within {timeout:.0f}s")
            time.sleep(0.05)
        tmp = self.record_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": node.pid, "port": node.port}))
        tmp.replace(self.record_file)
        self.port_file.write_text(str(port))
        return node, True

    def _previous_port(self) -> int | None:
        """The port the node had last time, if still free.

        Coming back on the same URL lets running vault processes reconnect to a
        restarted node without restarting themselves.
        """
        try:
            port = int(self.port_file.read_text())
        except (OSError, ValueError):
            return None
        with socket.socket() as sock:
            # Like anvil's own listener, ignore TIME_WAIT from the previous run.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return None
        return port

    def down(self, *, timeout: float = 10.0) -> bool:
        """Stop the recorded node (SIGTERM, so it saves its state). True if one was stopped."""
        try:
            record = json.loads(self.record_file.read_text())
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError):
            return False
        stopped = False
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            stopped = True
        self.record_file.unlink(missing_ok=True)
        return stopped
