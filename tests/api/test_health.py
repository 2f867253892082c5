from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from vault.api.app import create_app
from vault.config import Settings
from vault.runtime import Vault, embedded_chain, open_vault


def test_healthz_reports_database_and_chain(client: TestClient, vault: Vault) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["chain"]["chain_id"] == 31337
    assert body["chain"]["block_number"] >= 1
    assert body["chain"]["contract_address"] == vault.chain.deployment.address


def test_healthz_is_503_when_chain_is_killed(tmp_path: Path, project_root: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", project_root=project_root)
    vault = open_vault(settings)  # starts its own embedded chain
    try:
        client = TestClient(create_app(vault))
        assert client.get("/healthz").status_code == 200
        chain = embedded_chain(settings)
        chain.down()
        reply = client.get("/healthz")
        assert reply.status_code == 503
        assert reply.json()["chain"]["code"] == "chain_unavailable"
        assert reply.json()["database"]["ok"] is True
        # Restarted from its saved state, the node is found again without a vault restart.
        chain.up()
        reply = client.get("/healthz")
        assert reply.status_code == 200, reply.json()
    finally:
        vault.close()


def test_healthz_is_503_when_contract_is_missing(tmp_path: Path, project_root: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", project_root=project_root)
    vault = open_vault(settings)
    try:
        client = TestClient(create_app(vault))
        # A chain reset: the node comes back without its state.
        chain = embedded_chain(settings)
        chain.down()
        chain.state_file.unlink()
        chain.up()
        reply = client.get("/healthz")
        assert reply.status_code == 503
        assert reply.json()["chain"]["code"] == "contract_missing"
        assert "reset" in reply.json()["chain"]["message"]
    finally:
        vault.close(stop_chain=True)


def test_unknown_route_has_error_shape(client: TestClient) -> None:
    reply = client.get("/nope")
    assert reply.status_code == 404
    assert set(reply.json()) == {"code", "message", "details"}
