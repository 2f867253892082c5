"""A patient's account life cycle across the face gate, the chain and the record store.

Order matters, because nothing may be half-done:

* **enroll**: build the template and key in memory; register the key on chain; only then
  store the template, create the record store's patient, and (last, the commit point) the
  account. A failure before the account exists leaves no usable handle behind; an orphan
  chain registration holds only a keyed hash and an address.
* **re-enroll**: the current key (from a fresh match) and the new one (in memory) both
  sign the controller rotation; after its receipt the new template replaces the old one,
  so consents survive re-enrollment. A crash between the receipt and that single commit
  is the one window the design cannot close without a second template slot (see docs).
* **delete**: revoke every standing consent with the key, crypto-shred every record,
  forget the template, tombstone the account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from vault.access.accounts import PatientAccount, PatientAccounts, chain_patient_id, new_handle
from vault.access.consents import ConsentDesk
from vault.audit.log import AuditEvent, AuditLog
from vault.biometrics.service import FaceGate
from vault.chain.registry import ConsentRegistryClient
from vault.errors import AccessDenied, NotFound, VerificationFailed
from vault.records.service import RecordService


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
    ) -> None:
        self._faces = faces
        self._registry = registry
        self._records = records
        self._accounts = accounts
        self._consents = consents
        self._audit = audit
        self._pepper = pepper

    def enroll(self, photos: Sequence[bytes]) -> KeyChange:
        handle = new_handle()
        prepared = self._faces.prepare(handle, photos)
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

    def verify(self, handle: str, photo: bytes) -> LocalAccount:
        """The patient's consent key after a fresh 1:1 match (memory only).

        An unknown or deleted handle fails exactly like a wrong face (and counts towards
        the lockout), so the API does not reveal which handles exist.
        """
        verified = self._faces.verify(handle, photo)
        try:
            self._accounts.get(handle)
        except NotFound as exc:
            raise VerificationFailed("the face does not match this patient") from exc
        return verified.account

    def reenroll(
        self, account: PatientAccount, current: LocalAccount, photos: Sequence[bytes]
    ) -> KeyChange:
        if current.address != account.controller:
            raise AccessDenied("the face-derived key is not this patient's current key")
        prepared = self._faces.prepare(account.handle, photos)
        signed = self._registry.sign_rotation(
            patient_id=account.chain_patient_id, current=current, new=prepared.account
        )
        outcome = self._registry.rotate_controller(signed)
        self._faces.commit(prepared, replace=True)
        self._accounts.set_controller(account.handle, prepared.address)
        self._note(account.handle, "reenroll")
        return KeyChange(account.handle, prepared.address, outcome.tx_hash)

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
