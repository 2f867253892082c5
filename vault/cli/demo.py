"""``vault demo``: play the whole story against a running vault, printing each step."""

from __future__ import annotations

import typer

from vault.config import get_settings
from vault.errors import VaultError


class DemoFailed(VaultError):
    """The demo met something it did not expect that is not one of the vault's own errors."""

    code = "demo_failed"


def demo(
    url: str = typer.Option(
        None, help="The running vault's API (default: http://VAULT_HOST:VAULT_PORT)."
    ),
    rpc_url: str = typer.Option(
        None,
        help="Chain RPC to check proofs against (default: the vault's chain from its settings).",
    ),
) -> None:
    """Play the story on sample_data against a running vault (`make run` / `vault serve`):
    enroll, upload, consent, read, revoke, refuse, anchor, verify the proofs on chain."""
    settings = get_settings()
    # Imported here: siwe's grammar and web3 cost a second to import; other commands skip it.
    from vault.demo.client import VaultApi, admin_token
    from vault.demo.story import SampleData, play
    from vault.runtime import rpc_url as vault_rpc_url

    base = url or f"http://{settings.host}:{settings.port}"
    try:
        with VaultApi(base) as api:
            api.health()  # first: is a vault there at all?
            token = admin_token(settings)
            chain_rpc = rpc_url or vault_rpc_url(settings, start=False)[0]
            play(
                api=api,
                admin_token=token,
                sample=SampleData.under(settings.project_root / "sample_data"),
                rpc_url=chain_rpc,
                project_root=settings.project_root,
                say=typer.echo,
            )
    except VaultError:
        raise
    except Exception as exc:  # one line for the operator, never a stack trace
        raise DemoFailed(f"{type(exc).__name__}: {exc}") from exc
