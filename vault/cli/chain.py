"""``vault chain up|down|status|deploy``: the embedded Anvil node and the registry."""

from __future__ import annotations

import typer

from vault.chain.rpc import check_chain_id, connect
from vault.config import get_settings
from vault.errors import ChainUnavailable
from vault.runtime import embedded_chain, open_vault, rpc_url

chain_app = typer.Typer(help="The chain the vault records consent on.", no_args_is_help=True)


@chain_app.command()
def up() -> None:
    """Start the embedded Anvil node (state persisted under the data directory)."""
    settings = get_settings()
    if not settings.embedded_chain:
        raise ChainUnavailable("VAULT_CHAIN_RPC_URL is set: the chain is external, not embedded")
    node, started = embedded_chain(settings).up()
    typer.echo(f"{'started' if started else 'already running'}: anvil pid {node.pid} at {node.url}")


@chain_app.command()
def down() -> None:
    """Stop the embedded Anvil node; it saves its state first."""
    settings = get_settings()
    stopped = embedded_chain(settings).down()
    typer.echo("stopped" if stopped else "not running")


@chain_app.command()
def status() -> None:
    """Show chain id, block number and the registry's address; exit 1 if unavailable."""
    settings = get_settings()
    url, _, _ = rpc_url(settings, start=False)
    w3 = connect(url)
    chain_id = check_chain_id(w3, settings.chain_id)
    typer.echo(f"chain {chain_id} at {url}, block {w3.eth.block_number}")
    vault = open_vault(settings, start_chain=False)
    try:
        typer.echo(f"ConsentRegistry {vault.chain.status().contract_address}")
    finally:
        vault.close(stop_chain=False)


@chain_app.command()
def deploy(
    force: bool = typer.Option(
        False, "--force", help="Deploy a new registry even if one is recorded."
    ),
) -> None:
    """Deploy the consent registry (after a chain reset, with --force)."""
    settings = get_settings()
    vault = open_vault(settings, redeploy=force)
    try:
        for note in vault.notes or ["registry already deployed; nothing to do"]:
            typer.echo(note)
        typer.echo(f"ConsentRegistry {vault.chain.deployment.address}")
    finally:
        vault.close(stop_chain=False)
