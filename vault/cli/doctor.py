"""``vault doctor``: check every component and say what is wrong and how to fix it."""

from __future__ import annotations

import importlib
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import typer
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from vault.chain.compiler import load_artifact
from vault.chain.deployment import recorded_deployment, verify_deployment
from vault.chain.node import anvil_binary
from vault.chain.rpc import check_chain_id, connect
from vault.config import Settings, get_settings
from vault.errors import VaultError
from vault.records.wiring import s3_blob_store
from vault.runtime import rpc_url
from vault.store.database import make_engine, make_session_factory, ping
from vault.store.migrate import alembic_config

SETUP_HINT = "run the README's set-up command (make run or make test)"
PACKAGES = [
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "cryptography",
    "web3",
    "eth_account",
    "pydantic_settings",
    "numpy",
    "PIL",
    "face_recognition",
    "dlib",
    "fhir.resources",
    "siwe",
    "argon2",
]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _packages(_settings: Settings) -> Check:
    missing = []
    for name in PACKAGES:
        try:
            importlib.import_module(name)
        except Exception:  # an import can fail in many ways; all mean "not usable"
            missing.append(name)
    if missing:
        return Check("python packages", False, f"cannot import {', '.join(missing)}", SETUP_HINT)
    return Check(
        "python packages", True, f"{len(PACKAGES)} import (web3 {metadata.version('web3')})"
    )


def _face_models(_settings: Settings) -> Check:
    import face_recognition_models as models

    paths = [
        models.pose_predictor_model_location(),
        models.face_recognition_model_location(),
        models.cnn_face_detector_model_location(),
    ]
    absent = [p for p in paths if not Path(p).exists()]
    if absent:
        return Check("face models", False, f"missing {absent}", SETUP_HINT)
    return Check("face models", True, "dlib landmark + 128-d encoder models present")


def _anvil(settings: Settings) -> Check:
    if not settings.embedded_chain:
        return Check("anvil binary", True, "not needed: the chain is VAULT_CHAIN_RPC_URL")
    binary = anvil_binary(settings.node_modules)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    return Check("anvil binary", True, out.stdout.splitlines()[0])


def _compiler(settings: Settings) -> Check:
    # The packaged artifact serves without node; it needs node only when the sources
    # changed (load_artifact raises ToolchainError saying so).
    artifact = load_artifact(settings.project_root)
    return Check(
        "compiler", True, f"ConsentRegistry ready ({len(artifact.bytecode) // 2 - 1} bytes)"
    )


def _secrets(settings: Settings) -> Check:
    files = [settings.resolved_pepper_file, settings.resolved_operator_key_file]
    if settings.master_keyring is None:
        files.append(settings.resolved_master_key_file)
    problems = []
    for path in files:
        if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            problems.append(f"{path.name} readable by others")
    if problems:
        return Check(
            "secrets", False, "; ".join(problems), "chmod 600 the files under data/secrets"
        )
    absent = [p.name for p in files if not p.exists()]
    detail = "mode 0600" + (f"; {', '.join(absent)} created on first serve" if absent else "")
    return Check("secrets", True, detail)


def _database(settings: Settings) -> Check:
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return Check("database", False, f"no database at {url}", "`vault serve` creates it")
    engine = make_engine(url) if not url.startswith("sqlite") else create_engine(url)
    try:
        ping(engine)
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    finally:
        engine.dispose()
    if current != heads:
        return Check(
            "database",
            False,
            f"schema at {sorted(current) or 'nothing'}, code at {sorted(heads)}",
            "start `vault serve` once: it applies migrations",
        )
    return Check("database", True, f"{url.split('://')[0]} reachable, schema at head")


def _blob_store(settings: Settings) -> Check:
    if settings.blob_store == "local":
        root = settings.resolved_blob_dir
        state = "present" if root.is_dir() else "created on first serve"
        return Check("blob store", True, f"local directory {root} ({state})")
    s3_blob_store(settings).ping()
    where = settings.blob_s3_endpoint_url or f"AWS region {settings.blob_s3_region}"
    return Check("blob store", True, f"S3 bucket {settings.blob_s3_bucket} reachable at {where}")


def _chain(settings: Settings) -> Check:
    url, embedded, _ = rpc_url(settings, start=False)
    if embedded is not None and embedded.running() is None:
        return Check(
            "chain", False, "embedded anvil is not running", "`vault chain up` or `vault serve`"
        )
    w3 = connect(url)
    chain_id = check_chain_id(w3, settings.chain_id)
    return Check("chain", True, f"chain id {chain_id} at {url}, block {w3.eth.block_number}")


def _contract(settings: Settings) -> Check:
    url, _, _ = rpc_url(settings, start=False)
    engine = make_engine(settings.resolved_database_url)
    try:
        deployment = recorded_deployment(make_session_factory(engine), settings.chain_id)
    except SQLAlchemyError:
        return Check(
            "contract", False, "the database has no schema yet", "`vault serve` creates it"
        )
    finally:
        engine.dispose()
    if deployment is None:
        return Check(
            "contract", False, "no registry recorded for this chain", "`vault serve` deploys it"
        )
    verify_deployment(connect(url), deployment)
    return Check("contract", True, f"ConsentRegistry code at {deployment.address}")


CHECKS: list[Callable[[Settings], Check]] = [
    _packages,
    _face_models,
    _anvil,
    _compiler,
    _secrets,
    _database,
    _blob_store,
    _chain,
    _contract,
]
FIXES = {
    "chain_unavailable": "`vault chain up` (embedded) or check VAULT_CHAIN_RPC_URL",
    "wrong_chain": "point VAULT_CHAIN_RPC_URL at the chain with id VAULT_CHAIN_ID",
    "contract_missing": "the chain was reset: `vault chain deploy --force`",
    "database_unavailable": "check VAULT_DATABASE_URL and that the database is running",
    "toolchain_error": SETUP_HINT,
    "blob_store_error": "check VAULT_BLOB_S3_* (bucket, endpoint, credentials) and the store",
}


def doctor() -> None:
    """Check packages, face models, anvil, compiler, secrets, database, blob store, chain
    and contract."""
    settings = get_settings()
    failed = 0
    for check_fn in CHECKS:
        name = check_fn.__name__.strip("_")
        try:
            check = check_fn(settings)
        except VaultError as exc:
            check = Check(name, False, f"{exc.code}: {exc.message}", FIXES.get(exc.code, ""))
        except Exception as exc:  # doctor must report, not crash
            check = Check(name, False, f"{type(exc).__name__}: {exc}", SETUP_HINT)
        mark = "ok  " if check.ok else "FAIL"
        typer.echo(f"[{mark}] {check.name}: {check.detail}")
        if not check.ok:
            failed += 1
            if check.fix:
                typer.echo(f"       fix: {check.fix}")
    typer.echo("all checks passed" if not failed else f"{failed} check(s) failed")
    raise typer.Exit(0 if not failed else 1)
