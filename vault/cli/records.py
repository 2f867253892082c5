"""Record store commands: ``vault keys ...``, ``vault verify``, ``vault import-bundle``,
``vault sweep``. Thin: each builds the service from settings and prints its result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vault.config import get_settings
from vault.crypto.keyring import retire_keyring_version, rotate_keyring_file
from vault.errors import Conflict, KeyringError
from vault.records.wiring import record_service

keys_app = typer.Typer(help="Master keyring: status, rotation, retirement.", no_args_is_help=True)


@keys_app.command("status")
def keys_status() -> None:
    """Show the keyring's versions and how many patient keys each one wraps."""
    service = record_service(get_settings())
    keyring = service._keyring.get()
    for version in keyring.versions:
        marker = " (encrypts)" if version == keyring.current_version else ""
        count = service.patients_under_master_version(version=version)
        typer.echo(f"master key v{version}{marker}: {count} patient keys")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new master key version and re-wrap every patient key under it.

    Record ciphertext is not touched. Re-run safe: if interrupted, run again (or
    ``vault keys rewrap``). Old versions stay until ``vault keys retire``.
    """
    settings = get_settings()
    if settings.master_keyring is not None:
        raise KeyringError(
            "the keyring is given inline (VAULT_MASTER_KEYRING): add a new version to it, "
            "restart, then run `vault keys rewrap`"
        )
    keyring = rotate_keyring_file(settings.resolved_master_key_file)
    typer.echo(f"added master key v{keyring.current_version}")
    count = record_service(settings).rewrap_patient_keys()
    typer.echo(f"re-wrapped {count} patient keys under v{keyring.current_version}")


@keys_app.command("rewrap")
def keys_rewrap() -> None:
    """Re-wrap every patient key not yet under the newest master key."""
    count = record_service(get_settings()).rewrap_patient_keys()
    typer.echo(f"re-wrapped {count} patient keys")


@keys_app.command("retire")
def keys_retire(version: int = typer.Argument(..., help="Master key version to remove.")) -> None:
    """Remove an old master key version once no patient key is wrapped under it."""
    settings = get_settings()
    if settings.master_keyring is not None:
        raise KeyringError("the keyring is given inline: remove the version there")
    in_use = record_service(settings).patients_under_master_version(version=version)
    if in_use:
        raise Conflict(
            f"{in_use} patient keys are still wrapped under v{version}; run `vault keys rewrap`"
        )
    keyring = retire_keyring_version(settings.resolved_master_key_file, version)
    typer.echo(f"retired master key v{version}; versions now {keyring.versions}")


def verify(
    deep: bool = typer.Option(False, help="Also decrypt every version (catches DB tampering)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Scan the whole record store for tampering; exit 1 if anything is wrong."""
    report = record_service(get_settings()).verify(deep=deep)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "deep": report.deep,
                    "versions_checked": report.versions_checked,
                    "blobs_seen": report.blobs_seen,
                    "problems": [p.__dict__ for p in report.problems],
                },
                indent=2,
            )
        )
    else:
        typer.echo(
            f"checked {report.versions_checked} record versions, {report.blobs_seen} blobs"
            f" ({'deep' if report.deep else 'hashes only'})"
        )
        for problem in report.problems:
            where = f" record {problem.record_id} v{problem.version}" if problem.record_id else ""
            typer.echo(f"  {problem.kind}:{where} blob {problem.blob_key}")
        typer.echo("OK: no tampering found" if report.ok else f"{len(report.problems)} problems")
    if not report.ok:
        raise typer.Exit(code=1)


def import_bundle(
    patient_id: Annotated[str, typer.Argument(help="Vault patient id the records belong to.")],
    files: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="Bundle JSON files.")
    ],
    create_patient: Annotated[
        bool, typer.Option(help="Create the patient if it does not exist.")
    ] = False,
) -> None:
    """Import FHIR transaction Bundles (each all or nothing) for one patient."""
    service = record_service(get_settings())
    if create_patient and not service.patient_exists(patient_id=patient_id):
        service.create_patient(patient_id=patient_id)
    for path in files:
        result = service.import_bundle(patient_id=patient_id, bundle=path.read_bytes())
        typer.echo(f"{path.name}: {result.count} resources imported")


def sweep(
    older_than: int = typer.Option(
        None, help="Grace period in seconds (default: settings.blob_sweep_grace_seconds)."
    ),
) -> None:
    """Remove ciphertext left behind by writes interrupted by a crash."""
    settings = get_settings()
    grace = settings.blob_sweep_grace_seconds if older_than is None else older_than
    report = record_service(settings).sweep(older_than_seconds=grace)
    typer.echo(
        f"reclaimed {report.pending_reclaimed} orphan blobs, "
        f"removed {report.unreferenced_removed} unreferenced blobs, "
        f"removed {report.temp_files_removed} partial files"
    )
