"""The compiled contract a server uses: packaged, recompiled only when its sources change.

A checkout copied to a temporary project root (sources, package.json, the solc-js front,
node_modules linked) and a temporary package-data directory, so the tests change
neither the checkout's sources nor its packaged artifact.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vault.chain import compiler
from vault.chain.compiler import ContractArtifact, load_artifact, source_hash, write_packaged
from vault.errors import ToolchainError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(PROJECT_ROOT / "contracts" / "src", root / "contracts" / "src")
    shutil.copy(PROJECT_ROOT / "contracts" / "solc-js.cjs", root / "contracts" / "solc-js.cjs")
    shutil.copy(PROJECT_ROOT / "package.json", root / "package.json")
    (root / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    return root


@pytest.fixture
def package_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_artifact: ContractArtifact
) -> Path:
    """A package-data directory holding the artifact compiled from the real sources."""
    artifacts = tmp_path / "artifacts"
    monkeypatch.setattr(compiler, "ARTIFACTS_DIR", artifacts)
    hash_ = source_hash(PROJECT_ROOT)
    assert hash_ is not None
    write_packaged(registry_artifact, hash_)
    return artifacts


def _edit_sources(root: Path) -> None:
    source = root / "contracts" / "src" / "ConsentRegistry.sol"
    source.write_text(source.read_text() + "\n// edited\n")


def test_without_sources_the_packaged_artifact_is_used_and_no_compiler_needed(
    tmp_path: Path,
    package_data: Path,
    registry_artifact: ContractArtifact,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    assert load_artifact(tmp_path / "installed") == registry_artifact


def test_with_unchanged_sources_the_packaged_artifact_is_used(
    checkout: Path,
    package_data: Path,
    registry_artifact: ContractArtifact,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")  # would fail if it tried to compile
    assert load_artifact(checkout) == registry_artifact


def test_changed_sources_without_a_compiler_are_refused_not_served_stale(
    checkout: Path, package_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit_sources(checkout)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolchainError, match="sources changed"):
        load_artifact(checkout)


def test_no_sources_and_no_packaged_artifact_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiler, "ARTIFACTS_DIR", tmp_path / "empty")
    with pytest.raises(ToolchainError, match="no compiled ConsentRegistry"):
        load_artifact(tmp_path / "installed")


def test_changed_sources_are_recompiled_once_and_the_package_data_rewritten(
    checkout: Path, package_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit_sources(checkout)
    fresh = load_artifact(checkout)
    packaged = (package_data / "ConsentRegistry.json").read_text()
    assert str(source_hash(checkout)) in packaged and fresh.bytecode in packaged
    monkeypatch.setenv("PATH", "")  # the second load must not compile again
    assert load_artifact(checkout) == fresh
