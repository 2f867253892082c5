"""The record store's CLI commands, on a real data dir (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vault.cli.records import import_bundle, keys_app, sweep, verify

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "fhir"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("VAULT_DATA_DIR", str(tmp_path / "data"))
    for name in ("VAULT_DATABASE_URL", "VAULT_MASTER_KEYRING", "VAULT_BLOB_DIR"):
        monkeypatch.delenv(name, raising=False)
    app = typer.Typer()
    app.add_typer(keys_app, name="keys")
    app.command()(verify)
    app.command("import-bundle")(import_bundle)
    app.command()(sweep)
    return app


def test_import_rotate_retire_verify(cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    bundle = str(SAMPLE / "synthea-patient-bundle.json")
    result = runner.invoke(cli, ["import-bundle", "patient-1", bundle, "--create-patient"])
    assert result.exit_code == 0, result.output
    assert "117 resources imported" in result.output
    result = runner.invoke(cli, ["keys", "rotate"])
    assert result.exit_code == 0 and "re-wrapped 1 patient keys under v2" in result.output
    result = runner.invoke(cli, ["keys", "retire", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["verify", "--deep"])
    assert result.exit_code == 0 and "OK" in result.output
    blob = next(p for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file())
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(data)
    result = runner.invoke(cli, ["verify", "--json"])
    assert result.exit_code == 1 and "hash_mismatch" in result.output
    assert runner.invoke(cli, ["sweep"]).exit_code == 0
