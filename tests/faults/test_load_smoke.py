"""``vault bench load`` with tiny bounds against a served vault: the consistency check passes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from pathlib import Path

from tests.served import VAULT, run_vault, wait_healthy
from vault.chain.node import free_port


def test_load_smoke_two_processes_one_database_one_chain(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(
        VAULT_DATA_DIR=str(tmp_path / "data"), VAULT_ADMIN_TOKEN="admin-" + secrets.token_hex(8)
    )
    assert run_vault(["chain", "up"], env).returncode == 0
    procs: list[subprocess.Popen[str]] = []
    try:
        urls = []
        for _ in range(2):  # the second attaches to the same chain and database
            port_env = dict(env, VAULT_PORT=str(free_port()))
            proc = subprocess.Popen(
                [*VAULT, "serve"],
                env=port_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            procs.append(proc)
            url = f"http://127.0.0.1:{port_env['VAULT_PORT']}"
            wait_healthy(f"{url}/healthz", proc)
            urls.append(url)
        args = ["bench", "load", "--seconds", "6", "--patients", "2", "--providers", "2"]
        for url in urls:
            args += ["--url", url]
        result = run_vault(args, env, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 problems" in result.stdout, result.stdout
        verified = run_vault(["audit", "verify"], env)
        assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        run_vault(["chain", "down"], env)
