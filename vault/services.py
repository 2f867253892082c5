"""The domain services of one vault process, built once from an opened :class:`Vault`.

Routes receive this object through ``Depends``; nothing here is an import-time global,
and nothing holds state a second API process would not see (all state is in SQL or on
chain).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vault.access.accounts import PatientAccounts
from vault.access.consents import ConsentDesk
from vault.access.enrollment import PatientEnrollment
from vault.access.gate import ConsentGate
from vault.access.requests import AccessRequestBook
from vault.audit.log import AuditLog
from vault.auth.siwe_login import ProviderSignIn
from vault.auth.tokens import TokenIssuer
from vault.biometrics.service import FaceGate
from vault.chain.compiler import load_artifact
from vault.chain.nonce_guard import guard_for
from vault.chain.registry import ConsentRegistryClient
from vault.crypto.secret_files import load_or_create_secret
from vault.records.service import RecordService
from vault.records.types import RecordLimits
from vault.records.wiring import blob_store, keyring_source
from vault.runtime import Vault

SIGNATURE_TTL_SECONDS = 600


def signature_deadline(registry: ConsentRegistryClient, ttl: int = SIGNATURE_TTL_SECONDS) -> int:
    """A deadline for an EIP-712 message: the contract compares it with block time."""
    return max(int(time.time()), registry.chain_time()) + ttl


@dataclass
class Services:
    pepper: bytes
    admin_token: bytes
    accounts: PatientAccounts
    requests: AccessRequestBook
    audit: AuditLog
    tokens: TokenIssuer
    signin: ProviderSignIn
    records: RecordService
    registry: ConsentRegistryClient
    gate: ConsentGate
    consents: ConsentDesk
    enrollment: PatientEnrollment


def build_services(vault: Vault) -> Services:
    settings = vault.settings
    factory = vault.session_factory
    pepper = (
        bytes.fromhex(settings.pepper.get_secret_value())
        if settings.pepper is not None
        else load_or_create_secret(settings.resolved_pepper_file)
    )
    registry = ConsentRegistryClient.connect(
        w3=vault.chain.w3,
        address=vault.chain.deployment.address,
        artifact=load_artifact(settings.project_root),
        operator=vault.operator,
        chain_id=settings.chain_id,
        # API processes sharing this database also share the operator key.
        nonce_guard=guard_for(vault.engine),
    )
    audit = AuditLog(session_factory=factory)
    accounts = PatientAccounts(session_factory=factory)
    requests = AccessRequestBook(session_factory=factory)
    records = RecordService(
        session_factory=factory,
        blobs=blob_store(settings),
        keyring=keyring_source(settings),
        limits=RecordLimits.from_settings(settings),
    )
    consents = ConsentDesk(registry=registry, requests=requests, audit=audit)
    enrollment = PatientEnrollment(
        faces=FaceGate.from_settings(settings, session_factory=factory, pepper=pepper),
        registry=registry,
        records=records,
        accounts=accounts,
        consents=consents,
        audit=audit,
        pepper=pepper,
    )
    admin_token = (
        settings.admin_token.get_secret_value().encode()
        if settings.admin_token is not None
        else load_or_create_secret(settings.admin_token_file).hex().encode()
    )
    return Services(
        pepper=pepper,
        admin_token=admin_token,
        accounts=accounts,
        requests=requests,
        audit=audit,
        tokens=TokenIssuer(
            key=load_or_create_secret(settings.resolved_token_key_file),
            ttl_seconds=settings.session_ttl_seconds,
        ),
        signin=ProviderSignIn(
            session_factory=factory,
            domain=settings.resolved_siwe_domain,
            chain_id=settings.chain_id,
            nonce_ttl_seconds=settings.siwe_nonce_ttl_seconds,
        ),
        records=records,
        registry=registry,
        gate=ConsentGate(
            registry=registry, audit=audit, cache_seconds=settings.consent_cache_seconds
        ),
        consents=consents,
        enrollment=enrollment,
    )
