"""Several processes opening one vault at once, on SQLite and on PostgreSQL.

Two processes starting together on a fresh database apply the migrations once (the
second finds the schema at head instead of racing to create the same tables) and
deploy the registry once (the second finds the first's record), against a real node.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

from tests.databases import empty_database_url
from tests.served import vault_env
from vault.chain.node import AnvilProcess
from vault.chain.operator import load_operator
from vault.store.database import make_engine
from vault.store.migrate import alembic_config

__all__ = ["empty_database_url"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_two_processes_starting_together_migrate_and_deploy_once(
    empty_database_url: str, tmp_path: Path, anvil: AnvilProcess
) -> None:
    data = tmp_path / "data"
    # One operator key for both (as one data dir gives them); its file's own creation is
    # not what this test is about.
    load_operator(data / "secrets" / "operator.key")
    env = vault_env(data, VAULT_DATABASE_URL=empty_database_url, VAULT_CHAIN_RPC_URL=anvil.url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.vault_opener"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:  # both imported, neither has touched the database yet
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["address"] == results[1]["address"]
    assert sorted(r["deployed"] for r in results) == [False, True]
    engine = make_engine(empty_database_url)
    try:
        heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            assert set(versions) == heads
            deployments = conn.execute(text("SELECT address FROM chain_deployments")).scalars()
            assert list(deployments) == [results[0]["address"]]
    finally:
        engine.dispose()
