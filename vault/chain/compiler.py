"""The consent contract's ABI and bytecode: compiled from ``contracts/src``, shipped compiled.

A checkout compiles the Solidity sources with the pinned solc-js (Node.js); the set-up
command (``scripts/bootstrap.sh``) and the wheel build (``setup.py``) write the result to
``vault/chain/artifacts/<Name>.json``, package data of the wheel, together with a hash
of what it was compiled from (sources, compiler settings, pinned compiler and library
versions). :func:`load_artifact` then:

* without sources (an installed wheel): uses the packaged artifact, no Node.js needed;
* with sources whose hash the packaged artifact carries: uses it;
* with other sources: recompiles and rewrites it, and refuses (``ToolchainError``) when
  node or solc-js is missing, rather than use bytecode compiled from other sources.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault.errors import ToolchainError

#: Package data: the compiled contracts a Node-less server deploys and talks to.
ARTIFACTS_DIR = Path(__file__).parent / "artifacts"
#: The contracts shipped compiled (the others are interfaces or test helpers).
PACKAGED = ("ConsentRegistry",)
#: The npm packages whose pinned versions (package.json) decide the compiled output.
PINNED_PACKAGES = ("solc", "@openzeppelin/contracts")
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


def source_hash(project_root: Path) -> str | None:
    """Hash of what the contracts compile from; None when the sources are absent."""
    sources = _sources(project_root)
    if not sources:
        return None
    digest = hashlib.sha256(json.dumps(_standard_input(sources), sort_keys=True).encode())
    manifest = project_root / "package.json"
    pins = json.loads(manifest.read_text()).get("dependencies", {}) if manifest.exists() else {}
    digest.update(json.dumps({name: pins.get(name) for name in PINNED_PACKAGES}).encode())
    return digest.hexdigest()


def compile_contracts(project_root: Path) -> dict[str, ContractArtifact]:
    """Compile every contract under ``contracts/src`` (about a second in solc-js).

    Raises :class:`ToolchainError` when node or solc-js is missing or compilation fails.
    """
    output = _run_solc(project_root, _standard_input(_sources(project_root)))
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


def packaged_path(name: str) -> Path:
    return ARTIFACTS_DIR / f"{name}.json"


def _read_packaged(name: str) -> tuple[ContractArtifact, str] | None:
    """The packaged artifact ``name`` and the source hash it was compiled from."""
    path = packaged_path(name)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    artifact = ContractArtifact(
        name=data["name"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployed_bytecode"],
    )
    return artifact, data["source_hash"]


def write_packaged(artifact: ContractArtifact, source_hash: str) -> Path:
    """Write ``artifact`` as package data (atomically: several processes may compile)."""
    path = packaged_path(artifact.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "name": artifact.name,
        "source_hash": source_hash,
        "abi": artifact.abi,
        "bytecode": artifact.bytecode,
        "deployed_bytecode": artifact.deployed_bytecode,
    }
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load_artifact(project_root: Path, name: str = "ConsentRegistry") -> ContractArtifact:
    """The named contract, compiled from ``project_root``'s sources or shipped compiled.

    Raises :class:`ToolchainError` when there is neither a packaged artifact nor sources,
    or when the sources changed since the packaged artifact and cannot be recompiled.
    """
    packaged = _read_packaged(name) if name in PACKAGED else None
    wanted = source_hash(project_root)
    if wanted is None:
        if packaged is None:
            raise ToolchainError(
                f"no compiled {name} in the package and no contract sources under "
                f"{project_root}; reinstall the vault package or run scripts/bootstrap.sh"
            )
        return packaged[0]
    if packaged is not None and packaged[1] == wanted:
        return packaged[0]
    artifacts = compile_contracts(project_root)
    if name not in artifacts:
        raise ToolchainError(f"contract {name} not found in contracts/src")
    for shipped in PACKAGED:
        if shipped in artifacts:
            # An installed, read-only package keeps its artifact: use the fresh compile.
            with contextlib.suppress(OSError):
                write_packaged(artifacts[shipped], wanted)
    return artifacts[name]


def _run_solc(project_root: Path, standard_input: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    front = project_root / "contracts" / "solc-js.cjs"
    if node is None:
        raise ToolchainError(
            "the contract sources changed since the packaged artifact was compiled (or "
            "it is missing) and node is not installed to recompile them; run the "
            "README's set-up command"
        )
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
