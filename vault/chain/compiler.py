"""Compile the Solidity sources in ``contracts/src`` with the pinned solc-js.

The vault never loads a committed binary: ABI and bytecode come from compiling the
sources in the checkout, cached under ``build/contracts`` and keyed by a hash of every
source file and the compiler settings, so a cached build cannot drift from its source.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault.errors import ToolchainError

EVM_VERSION = "osaka"
OPTIMIZER_RUNS = 200


@dataclass(frozen=True)
class ContractArtifact:
    """ABI and creation bytecode of one compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


def _sources(project_root: Path) -> dict[str, Path]:
    src = project_root / "contracts" / "src"
    return {f"contracts/src/{p.relative_to(src).as_posix()}": p for p in sorted(src.rglob("*.sol"))}


def _standard_input(sources: dict[str, Path]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {name: {"content": path.read_text()} for name, path in sources.items()},
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }


def _build_key(project_root: Path, standard_input: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(standard_input, sort_keys=True).encode())
    oz_package = project_root / "node_modules" / "@openzeppelin" / "contracts" / "package.json"
    solc_package = project_root / "node_modules" / "solc" / "package.json"
    for pinned in (oz_package, solc_package):
        digest.update(pinned.read_bytes() if pinned.exists() else b"-")
    return digest.hexdigest()


def compile_contracts(
    project_root: Path, *, build_dir: Path | None = None
) -> dict[str, ContractArtifact]:
    """Compile every contract under ``contracts/src``; reuse the cache when unchanged.

    Raises :class:`ToolchainError` when node or solc-js is missing or compilation fails.
    """
    build_dir = build_dir or project_root / "build" / "contracts"
    standard_input = _standard_input(_sources(project_root))
    key = _build_key(project_root, standard_input)
    cache = build_dir / f"{key}.json"
    if cache.exists():
        output = json.loads(cache.read_text())
    else:
        output = _run_solc(project_root, standard_input)
        build_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(output))
        tmp.replace(cache)
    artifacts: dict[str, ContractArtifact] = {}
    for source_name, contracts in output["contracts"].items():
        if not source_name.startswith("contracts/src/"):
            continue
        for name, data in contracts.items():
            artifacts[name] = ContractArtifact(
                name=name,
                abi=data["abi"],
                bytecode="0x" + data["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + data["evm"]["deployedBytecode"]["object"],
            )
    return artifacts


def load_artifact(project_root: Path, name: str = "ConsentRegistry") -> ContractArtifact:
    """The named contract from a (cached) compile of the checkout's sources."""
    artifacts = compile_contracts(project_root)
    if name not in artifacts:
        raise ToolchainError(f"contract {name} not found in contracts/src")
    return artifacts[name]


def _run_solc(project_root: Path, standard_input: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    front = project_root / "contracts" / "solc-js.cjs"
    if node is None:
        raise ToolchainError("node is not installed; run the README's set-up command")
    if not (project_root / "node_modules" / "solc").exists():
        raise ToolchainError("solc-js is not installed; run `npm ci` (the set-up command does)")
    proc = subprocess.run(
        [node, str(front), "--standard-json", "--base-path", str(project_root)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        cwd=project_root,
        check=False,
    )
    if proc.returncode != 0:
        raise ToolchainError(f"solc-js failed: {proc.stderr.strip()[:500]}")
    output: dict[str, Any] = json.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ToolchainError(
            "contract compilation failed: " + "; ".join(e["formattedMessage"] for e in errors)
        )
    return output
