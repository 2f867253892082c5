"""The patient's side of consent: approve, deny and revoke with the face-derived key.

Each write is an EIP-712 message signed in memory by the key a fresh face match just
recovered, relayed by the operator, and acknowledged only after its receipt. A request
is marked granted only once the grant is mined; a relayed transaction that fails leaves
the request pending (and says why), so the patient can simply try again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_account.signers.local import LocalAccount

from vault.access.accounts import PatientAccount
from vault.access.requests import AccessRequest, AccessRequestBook
from vault.access.scopes import ALL_DATA, PURPOSES, purpose_id, scope_id
from vault.audit.log import AuditEvent, AuditLog
from vault.chain import codes
from vault.chain.registry import ConsentRegistryClient
from vault.chain.relayer import TxOutcome
from vault.errors import AccessDenied, ConsentNotGranted, NotFound, VaultError


@dataclass(frozen=True)
class StandingConsent:
    provider: str
    scope: str
    purpose: str
    granted_at: int
    expires_at: int


class ConsentDesk:
    def __init__(
        self,
        *,
        registry: ConsentRegistryClient,
        requests: AccessRequestBook,
        audit: AuditLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._requests = requests
        self._audit = audit
        self._clock = clock

    def _audit_event(
        self,
        account: PatientAccount,
        action: str,
        outcome: str,
        *,
        provider: str,
        scope: str,
        purpose: str,
        reason: str = "",
    ) -> None:
        self._audit.append(
            AuditEvent(
                patient_id=account.handle,
                actor="patient",
                action=action,
                outcome=outcome,
                scope=scope,
                purpose=purpose,
                record_id=provider,
                reason=reason,
            )
        )

    def _own_request(self, account: PatientAccount, request_id: str) -> AccessRequest:
        request = self._requests.get(request_id)
        if request.patient_handle != account.handle:
            # The same answer as for an unknown id: other patients' requests stay invisible.
            raise NotFound("no such access request")
        return request

    def approve(
        self, *, account: PatientAccount, key: LocalAccount, request_id: str
    ) -> AccessRequest:
        """Sign and relay the grant; mark the request granted after the receipt."""
        request = self._own_request(account, request_id)
        if key.address != account.controller:
            raise AccessDenied("the face-derived key is not this patient's current key")
        # Claim first: a denied or granted request must never reach the chain.
        request = self._requests.claim_for_approval(request_id)
        try:
            # Inside the try: a chain that cannot even tell the time must put the request
            # back to pending too, not leave it claimed.
            expires_at = (
                max(int(self._clock()), self._registry.chain_time()) + request.duration_seconds
            )
            signed = self._registry.sign_grant(
                key,
                patient_id=account.chain_patient_id,
                provider=request.provider,
                scope=scope_id(request.scope),
                purpose=purpose_id(request.purpose),
                expires_at=expires_at,
            )
            outcome = self._registry.grant_consent(signed)
        except BaseException as exc:
            code = exc.code if isinstance(exc, VaultError) else "internal_error"
            self._requests.note_failure(request_id, error_code=code)
            raise
        granted = self._requests.mark_granted(
            request_id, tx_hash=outcome.tx_hash, expires_at=datetime.fromtimestamp(expires_at, UTC)
        )
        self._audit_event(
            account,
            "grant",
            "allowed",
            provider=request.provider,
            scope=request.scope,
            purpose=request.purpose,
        )
        return granted

    def deny(self, *, account: PatientAccount, request_id: str) -> AccessRequest:
        request = self._own_request(account, request_id)
        denied = self._requests.mark_denied(request_id)
        self._audit_event(
            account,
            "deny",
            "denied",
            provider=request.provider,
            scope=request.scope,
            purpose=request.purpose,
        )
        return denied

    def revoke(
        self, *, account: PatientAccount, key: LocalAccount, provider: str, scope: str, purpose: str
    ) -> TxOutcome:
        """Sign and relay the revoke; effective in the block that includes it."""
        if key.address != account.controller:
            raise AccessDenied("the face-derived key is not this patient's current key")
        signed = self._registry.sign_revocation(
            key,
            patient_id=account.chain_patient_id,
            provider=provider,
            scope=scope_id(scope),
            purpose=purpose_id(purpose),
        )
        outcome = self._registry.revoke_consent(signed)
        self._audit_event(
            account, "revoke", "allowed", provider=provider, scope=scope, purpose=purpose
        )
        return outcome

    def standing(self, account: PatientAccount) -> list[StandingConsent]:
        """Consents that stand now, as the chain has them (from its events, checked by view)."""
        # The chain stores hashes; name them from the scopes providers asked this patient for.
        asked = {r.scope for r in self._requests.for_patient(account.handle)}
        scopes = {scope_id(name): name for name in {ALL_DATA, *asked}}
        purposes = {codes.purpose_id(code): code for code in PURPOSES}
        now = max(int(self._clock()), self._registry.chain_time())
        seen: set[tuple[str, bytes, bytes]] = set()
        standing: list[StandingConsent] = []
        for event in self._registry.history(patient_id=account.chain_patient_id):
            if event.kind != "consent_granted" or event.provider is None:
                continue
            assert event.scope is not None and event.purpose is not None
            key = (event.provider, event.scope, event.purpose)
            if key in seen:
                continue
            seen.add(key)
            state = self._registry.consent(
                account.chain_patient_id, event.provider, event.scope, event.purpose
            )
            if state.stands_at(now):
                standing.append(
                    StandingConsent(
                        provider=event.provider,
                        scope=scopes.get(event.scope, "0x" + event.scope.hex()),
                        purpose=purposes.get(event.purpose, "0x" + event.purpose.hex()),
                        granted_at=state.granted_at,
                        expires_at=state.expires_at,
                    )
                )
        return standing

    def revoke_all(self, *, account: PatientAccount, key: LocalAccount) -> int:
        """Revoke every standing consent (before an account is deleted). Returns how many."""
        count = 0
        for consent in self.standing(account):
            try:
                self.revoke(
                    account=account,
                    key=key,
                    provider=consent.provider,
                    scope=consent.scope,
                    purpose=consent.purpose,
                )
                count += 1
            except ConsentNotGranted:
                continue
        return count
