"""A patient's account life cycle across the face gate, the chain and the record store.

Order matters, because nothing may be half-done:

* **enroll**: build the template and key in memory; register the key on chain; only then
  store the template, create the record store's patient, and (last, the commit point) the
  account. A failure before the account exists leaves no usable handle behind; an orphan
  chain registration holds only a keyed hash and an address.
* **re-enroll**: the new template is *staged* beside the current one (a second template
  slot); the current key (from a fresh match) and the new one both sign the controller
  rotation; after its receipt the staged template replaces the current one, so consents
  survive re-enrollment. If the process dies between the receipt and that commit, the
  chain names a key the current template no longer yields: the next verification of the
  handle asks the chain which key it names and finishes the re-enrollment (or, once the
  rotation can no longer be in flight, drops a staged template the chain never adopted).
* **delete**: revoke every standing consent with the key, crypto-shred every record,
  forget the template, tombstone the account.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eth_account.signers.local import LocalAccount

from vault.access.accounts import PatientAccount, PatientAccounts, chain_patient_id, new_handle
from vault.access.consents import ConsentDesk
from vault.audit.log import AuditEvent, AuditLog
from vault.biometrics.service import FaceGate, StagedTemplate
from vault.chain.registry import ConsentRegistryClient
from vault.errors import (
    AccessDenied,
    ConsentRejected,
    DependencyUnavailable,
    NotFound,
    TransactionFailed,
    VerificationFailed,
)
from vault.records.service import RecordService

#: How long a staged template the chain has not adopted is kept: longer than any relayed
#: rotation takes to be mined or abandoned, so one still in flight is never dropped.
STAGED_GRACE = timedelta(minutes=10)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class KeyChange:
    handle: str
    address: str
    tx_hash: str


class PatientEnrollment:
    def __init__(
        self,
        *,
        faces: FaceGate,
        registry: ConsentRegistryClient,
        records: RecordService,
        accounts: PatientAccounts,
        consents: ConsentDesk,
        audit: AuditLog,
        pepper: bytes,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._faces = faces
        self._registry = registry
        self._records = records
        self._accounts = accounts
        self._consents = consents
        self._audit = audit
        self._pepper = pepper
        self._clock = clock

    def enroll(self, photos: Sequence[bytes], *, pin: str | None = None) -> KeyChange:
        """``pin``: the optional second factor (face and PIN then open the template)."""
        handle = new_handle()
        prepared = self._faces.prepare(handle, photos, pin=pin)
        patient_id = chain_patient_id(self._pepper, handle)
        signed = self._registry.sign_registration(prepared.account, patient_id=patient_id)
        outcome = self._registry.register_patient(signed)
        self._faces.commit(prepared, replace=False)
        record_patient_id = self._records.create_patient()
        self._accounts.create(
            handle=handle,
            record_patient_id=record_patient_id,
            chain_id=patient_id,
            controller=prepared.address,
        )
        self._note(handle, "enroll")
        return KeyChange(handle, prepared.address, outcome.tx_hash)

    def verify(self, handle: str, photo: bytes, *, pin: str | None = None) -> LocalAccount:
        """The patient's consent key after a fresh 1:1 match (memory only).

        An unknown or deleted handle fails exactly like a wrong face (and counts towards
        the lockout), so the API does not reveal which handles exist.
        """
        self._settle_reenrollment(handle)
        verified = self._faces.verify(handle, photo, pin=pin)
        try:
            self._accounts.get(handle)
        except NotFound as exc:
            raise VerificationFailed("the face does not match this patient") from exc
        return verified.account

    def reenroll(
        self,
        account: PatientAccount,
        current: LocalAccount,
        photos: Sequence[bytes],
        *,
        pin: str | None = None,
    ) -> KeyChange:
        """``pin``: the new template's second factor (None: the face alone opens it)."""
        # The chain, not the account row, says which key is current: a crash between a
        # re-enrollment's two commits may have left the row's copy behind (repaired here).
        controller = self._registry.controller_of(account.chain_patient_id)
        if current.address != controller:
            raise AccessDenied("the face-derived key is not this patient's current key")
        if account.controller != controller:
            self._accounts.set_controller(account.handle, current.address)
        prepared = self._faces.prepare(account.handle, photos, pin=pin)
        signed = self._registry.sign_rotation(
            patient_id=account.chain_patient_id, current=current, new=prepared.account
        )
        staged = self._faces.stage(prepared)  # on disk before the chain can adopt its key
        try:
            outcome = self._registry.rotate_controller(signed)
        except (ConsentRejected, TransactionFailed) as exc:
            if not isinstance(exc, DependencyUnavailable):
                self._faces.drop_staged(staged)  # refused: the chain will never adopt it
            # No answer (unreachable, not confirmed): the rotation may still be mined, so
            # the staged template stays for the next verification to settle.
            raise
        self._complete(account.handle, staged)
        return KeyChange(account.handle, prepared.address, outcome.tx_hash)

    def _complete(self, handle: str, staged: StagedTemplate) -> None:
        if self._faces.promote(staged):
            self._accounts.set_controller(handle, staged.address)
            self._note(handle, "reenroll")

    def _settle_reenrollment(self, handle: str) -> None:
        """Finish or drop a re-enrollment a crash interrupted (nothing staged: one query)."""
        staged = self._faces.staged(handle)
        if staged is None:
            return
        try:
            account = self._accounts.get(handle)
        except NotFound:
            return  # verification fails as for any unknown handle
        controller = self._registry.controller_of(account.chain_patient_id)
        if controller == staged.address:
            self._complete(handle, staged)  # the chain adopted the new key
        elif self._clock() - staged.staged_at > STAGED_GRACE:
            # The chain still names the old key and the rotation cannot still be on its
            # way (a relayed transaction is mined or given up within seconds): drop it.
            self._faces.drop_staged(staged)

    def prune_attempts(self) -> int:
        """Housekeeping: drop failed-attempt counters that hold nothing back."""
        return self._faces.prune_attempts()

    def delete(self, account: PatientAccount, key: LocalAccount) -> int:
        """Revoke, shred, forget. Returns how many consents were revoked."""
        revoked = self._consents.revoke_all(account=account, key=key)
        self._records.delete_patient(patient_id=account.record_patient_id)
        self._faces.forget(account.handle)
        self._accounts.mark_deleted(account.handle)
        self._note(account.handle, "delete_account")
        return revoked

    def _note(self, handle: str, action: str) -> None:
        self._audit.append(
            AuditEvent(patient_id=handle, actor="patient", action=action, outcome="allowed")
        )
