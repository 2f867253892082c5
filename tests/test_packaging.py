"""The wheel is a server without Node.js: built, installed into a fresh virtual environment
from PyPI alone, it serves ``/healthz`` against an external node with no node on PATH.

Slow (about 1.5 minutes, mostly pip installing the runtime pins; pip's cache helps).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.served import vault_env, wait_healthy
from vault.chain.compiler import load_artifact
from vault.chain.node import AnvilProcess

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PIP = ["-m", "pip", "--disable-pip-version-check", "-q"]


def _run(args: list[str], **kwargs: object) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]} {result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vault wheel, built as pip builds it (isolated, the build hook compiling)."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, *PIP, "wheel", "--no-deps", "-w", str(out), str(PROJECT_ROOT)])
    (built,) = out.glob("vault-*.whl")
    return built


def test_the_wheel_ships_the_contract_compiled_from_these_sources(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "vault/chain/artifacts/ConsentRegistry.json" in names
        assert "vault/store/migrations/env.py" in names
        assert "vault/biometrics/data/population.npz" in names
        assert not any(name.startswith(("tests/", "contracts/")) for name in names)
        shipped = archive.read("vault/chain/artifacts/ConsentRegistry.json")
    assert b'"source_hash"' in shipped
    compiled = load_artifact(PROJECT_ROOT)
    assert compiled.bytecode.encode() in shipped


@pytest.mark.slow
def test_an_installed_wheel_serves_against_an_external_node_without_node_on_path(
    wheel: Path, tmp_path: Path, anvil: AnvilProcess
) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    # The wheel's own dependencies, held to the lock's versions, then face_recognition
    # without its dependencies (it declares dlib; dlib-bin is the same, prebuilt).
    _run([python, *PIP, "install", str(wheel), "-c", str(PROJECT_ROOT / "requirements.lock")])
    _run(
        [python, *PIP, "install", "--no-deps", "-r", str(PROJECT_ROOT / "requirements-nodeps.lock")]
    )
    path = str(venv / "bin")
    assert shutil.which("node", path=path) is None
    assert shutil.which("npm", path=path) is None and shutil.which("solc", path=path) is None
    env = vault_env(tmp_path / "data", VAULT_CHAIN_RPC_URL=anvil.url, PATH=path)
    env.pop("PYTHONPATH", None)
    server = tmp_path / "server"
    server.mkdir()  # away from the checkout: nothing of it is importable or compilable
    proc = subprocess.Popen(
        [str(venv / "bin" / "vault"), "serve"],
        env=env,
        cwd=server,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        reply = wait_healthy(f"http://127.0.0.1:{env['VAULT_PORT']}/healthz", proc)
        assert reply.json()["chain"]["contract_address"].startswith("0x")
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert "deployed ConsentRegistry" in output
    assert str(PROJECT_ROOT) not in output
