"""Assemble a running vault from :class:`Settings`: database, chain, contract.

``open_vault`` is what ``vault serve`` and ``vault doctor`` share: it applies
migrations, attaches to (or starts) the chain, checks the chain id, and finds the
consent registry, deploying it only on a chain that has never had one from this vault.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from vault.chain.compiler import load_artifact
from vault.chain.deployment import (
    Deployment,
    deploy_registry,
    record_deployment,
    recorded_deployment,
    verify_deployment,
)
from vault.chain.gateway import ChainGateway
from vault.chain.node import EmbeddedChain
from vault.chain.nonce_guard import guard_for
from vault.chain.operator import fund_on_anvil, load_operator
from vault.chain.rpc import check_chain_id, connect
from vault.config import ANVIL_CHAIN_ID, Settings
from vault.errors import ContractMissing
from vault.store.database import engine_of, make_engine, make_session_factory
from vault.store.migrate import upgrade


@dataclass
class Vault:
    """Everything a vault process holds open. Close it with :meth:`close`."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    chain: ChainGateway
    operator: LocalAccount
    embedded: EmbeddedChain | None = None
    started_chain: bool = False
    notes: list[str] = field(default_factory=list)

    def close(self, *, stop_chain: bool | None = None) -> None:
        """Dispose of the engine; stop the embedded chain if this process started it."""
        self.engine.dispose()
        if self.embedded is not None and (
            stop_chain if stop_chain is not None else self.started_chain
        ):
            self.embedded.down()


def embedded_chain(settings: Settings) -> EmbeddedChain:
    return EmbeddedChain(
        chain_dir=settings.chain_dir,
        node_modules=settings.node_modules,
        chain_id=settings.chain_id,
        port=settings.anvil_port,
    )


def rpc_url(settings: Settings, *, start: bool) -> tuple[str, EmbeddedChain | None, bool]:
    """The chain's RPC URL; with an embedded chain, attach to it or (``start``) start it."""
    if not settings.embedded_chain:
        return settings.chain_rpc_url, None, False
    chain = embedded_chain(settings)
    if start:
        node, started = chain.up()
        return node.url, chain, started
    node_or_none = chain.running()
    url = node_or_none.url if node_or_none else "http://127.0.0.1:1"
    return url, chain, False


def ensure_deployment(
    *,
    settings: Settings,
    w3: Web3,
    factory: sessionmaker[Session],
    operator: LocalAccount,
    redeploy: bool = False,
) -> tuple[Deployment, bool]:
    """The registry this vault uses on ``settings.chain_id``; ``(deployment, deployed_now)``.

    Deploys only when no deployment was ever recorded for this chain, or when the operator
    asks (``redeploy``). A recorded deployment whose code vanished raises
    :class:`ContractMissing` instead of silently deploying a new, empty registry.
    """
    if settings.consent_contract_address:
        existing = recorded_deployment(factory, settings.chain_id)
        if (
            existing is None
            or existing.address.lower() != settings.consent_contract_address.lower()
        ):
            code = w3.eth.get_code(Web3.to_checksum_address(settings.consent_contract_address))
            existing = Deployment(
                settings.chain_id,
                Web3.to_checksum_address(settings.consent_contract_address),
                0,
                Web3.to_hex(Web3.keccak(code)),
            )
            if not code:
                raise ContractMissing(f"no contract at {settings.consent_contract_address}")
        verify_deployment(w3, existing)
        return existing, False
    # Two processes starting at once on a fresh database would each deploy a registry and
    # each use its own (the last record wins on disk): consents granted through one would
    # be unknown to the other. The relayers' guard (the operator key's nonce lock, shared
    # through the database) serializes starts; the second finds the first's record.
    with guard_for(engine_of(factory))():
        existing = recorded_deployment(factory, settings.chain_id)
        if existing is not None and not redeploy:
            verify_deployment(w3, existing)
            return existing, False
        if settings.chain_id == ANVIL_CHAIN_ID:
            fund_on_anvil(w3, operator.address)
        deployment = deploy_registry(w3, operator, load_artifact(settings.project_root))
        record_deployment(factory, deployment)
    return deployment, True


def open_vault(settings: Settings, *, start_chain: bool = True, redeploy: bool = False) -> Vault:
    """Open database and chain, apply migrations, and find (or first deploy) the registry."""
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    url, embedded, started = rpc_url(settings, start=start_chain)
    w3 = connect(url)
    try:
        check_chain_id(w3, settings.chain_id)
        operator = load_operator(settings.resolved_operator_key_file)
        deployment, deployed_now = ensure_deployment(
            settings=settings, w3=w3, factory=factory, operator=operator, redeploy=redeploy
        )
    except BaseException:
        engine.dispose()
        if embedded is not None and started:
            embedded.down()
        raise
    vault = Vault(
        settings=settings,
        engine=engine,
        session_factory=factory,
        chain=ChainGateway(w3=w3, chain_id=settings.chain_id, deployment=deployment),
        operator=operator,
        embedded=embedded,
        started_chain=started,
    )
    if deployed_now:
        vault.notes.append(f"deployed ConsentRegistry at {deployment.address}")
    return vault


def configure_logging() -> None:
    """The vault's log format for a serving process (the parent and each worker)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic", "web3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def settings_environment(settings: Settings) -> dict[str, str]:
    """``VAULT_*`` variables from which :func:`get_settings` rebuilds ``settings``.

    Worker processes of ``vault serve`` are fresh interpreters that read their settings
    from the environment; values the command line set (``--port``...) reach them so.
    Only fields that were set (by the environment or explicitly) are written.
    """
    env: dict[str, str] = {}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"VAULT_{name.upper()}"] = str(value)
    return env
