"""The consent decision on every provider read, and its audit entry.

The chain is the source of truth: each decision is one ``eth_call`` at the latest
block (no cache), so a revoke is enforced from the first read after its receipt. A chain
that cannot answer means *no* (the read is refused with ``ChainUnavailable``, 503), and
the refusal is audited too. Every decision is appended to the access log before any
data is returned; if the log cannot be written, the read is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from vault.access.accounts import PatientAccount
from vault.access.scopes import purpose_id, scope_id
from vault.audit.log import AuditEvent, AuditLog
from vault.chain.registry import AccessBasis, ConsentRegistryClient
from vault.errors import AccessDenied, ChainUnavailable


@dataclass(frozen=True)
class ReadDecision:
    basis: AccessBasis
    scope: str


class ConsentGate:
    def __init__(self, *, registry: ConsentRegistryClient, audit: AuditLog) -> None:
        self._registry = registry
        self._audit = audit

    def basis(
        self, account: PatientAccount, provider: str, category: str, purpose: str
    ) -> AccessBasis:
        """The chain's answer for reading ``category`` now (the contract also honours a
        consent or emergency window for all data)."""
        return self._registry.access_basis(
            account.chain_patient_id, provider, scope_id(category), purpose_id(purpose)
        )

    def authorize_read(
        self,
        *,
        account: PatientAccount,
        provider: str,
        category: str,
        purpose: str,
        record_id: str = "",
    ) -> ReadDecision:
        """Allow (and audit) one read, or raise. Never allows without the chain's yes.

        Raises :class:`AccessDenied` (no consent or emergency access on chain) and
        :class:`ChainUnavailable` (the chain cannot answer). Both are audited as denials.
        """

        def audit(outcome: str, action: str, reason: str = "", scope: str = category) -> None:
            self._audit.append(
                AuditEvent(
                    patient_id=account.handle,
                    actor=provider,
                    action=action,
                    outcome=outcome,
                    scope=scope,
                    purpose=purpose,
                    record_id=record_id,
                    reason=reason,
                )
            )

        try:
            basis = self.basis(account, provider, category, purpose)
        except ChainUnavailable as exc:
            audit("denied", "read", reason=exc.code)
            raise
        if basis is AccessBasis.NONE:
            audit("denied", "read", reason="no_consent")
            raise AccessDenied(
                "no consent on chain for this scope and purpose",
                details={"scope": category, "purpose": purpose},
            )
        action = "emergency_read" if basis is AccessBasis.EMERGENCY else "read"
        audit("allowed", action)
        return ReadDecision(basis, category)
