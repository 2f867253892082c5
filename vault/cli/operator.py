"""Operator commands: ``vault providers ...`` and ``vault audit ...`` (the admin API's twins)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from web3 import Web3

from vault.config import get_settings
from vault.errors import InvalidInput

if TYPE_CHECKING:
    from vault.services import Services

providers_app = typer.Typer(help="Providers registered on chain.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The access log: anchor it on chain, check its hash chain.", no_args_is_help=True
)


@contextmanager
def _services() -> Iterator[Services]:
    # Imported here: the service stack is heavy and only these commands need it.
    from vault.runtime import open_vault
    from vault.services import build_services

    vault = open_vault(get_settings(), start_chain=False)
    try:
        yield build_services(vault)
    finally:
        vault.close(stop_chain=False)


def _address(value: str) -> str:
    try:
        return Web3.to_checksum_address(value)
    except ValueError as exc:
        raise InvalidInput(f"not an Ethereum address: {value}") from exc


@providers_app.command("add")
def add_provider(
    address: str = typer.Argument(..., help="The provider's Ethereum address."),
    emergency: bool = typer.Option(False, "--emergency", help="Also grant break-glass access."),
) -> None:
    """Register a provider on chain (idempotent)."""
    from vault.chain.registry import ProviderStatus

    checksum = _address(address)
    with _services() as services:
        registry = services.registry
        if registry.provider_status(checksum) is not ProviderStatus.ACTIVE:
            registry.register_provider(checksum)
        if emergency and not registry.has_role("EMERGENCY_ROLE", checksum):
            registry.grant_role("EMERGENCY_ROLE", checksum)
        typer.echo(
            f"{checksum}: {registry.provider_status(checksum).name.lower()}"
            + (", emergency role" if registry.has_role("EMERGENCY_ROLE", checksum) else "")
        )


@providers_app.command("remove")
def remove_provider(
    address: str = typer.Argument(..., help="The provider's Ethereum address."),
) -> None:
    """Deactivate a provider on chain: every read of theirs is refused from the next block."""
    checksum = _address(address)
    with _services() as services:
        registry = services.registry
        registry.deactivate_provider(checksum)
        typer.echo(f"{checksum}: {registry.provider_status(checksum).name.lower()}")


@providers_app.command("status")
def provider_status(
    address: str = typer.Argument(..., help="The provider's Ethereum address."),
) -> None:
    """A provider's status on chain."""
    checksum = _address(address)
    with _services() as services:
        registry = services.registry
        typer.echo(f"{checksum}: {registry.provider_status(checksum).name.lower()}")


@audit_app.command("anchor")
def anchor() -> None:
    """Anchor the access log's new entries on chain now."""
    from vault.audit.anchoring import anchor_audit_log

    with _services() as services:
        result = anchor_audit_log(services.audit, services.registry)
        if result is None:
            typer.echo("nothing new to anchor")
        else:
            typer.echo(
                f"anchored entries {result.first_seq}-{result.last_seq}: "
                f"root 0x{result.root.hex()} in {result.tx_hash}"
            )


@audit_app.command("verify")
def verify_log() -> None:
    """Recompute the access log's hash chain; exit 2 if any entry was altered."""
    from vault.audit.log import AuditLog
    from vault.store.database import make_engine, make_session_factory

    engine = make_engine(get_settings().resolved_database_url)
    try:
        count = AuditLog(session_factory=make_session_factory(engine)).verify_chain()
    finally:
        engine.dispose()
    typer.echo(f"audit log intact: {count} entries")
