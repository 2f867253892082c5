"""Enrollment and 1:1 verification of patients by face, over the template tables.

The public API the web layer calls:

* :meth:`FaceGate.enroll` — 1..5 photos -> a protected template for a new handle;
* :meth:`FaceGate.reenroll` — replace a handle's template: new κ, new transform, new key;
* :meth:`FaceGate.verify` — one photo against a claimed handle -> :class:`VerifiedPatient`
  holding the patient's secp256k1 signing account, in memory only.

Photos and embeddings never leave this call stack: they are not stored, not logged,
and not put in exceptions.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker

from vault.biometrics import calibration, lockout
from vault.biometrics.capture import CaptureLimits
from vault.biometrics.embedding import DetectorConfig, FaceEmbedding, FaceEncoder
from vault.biometrics.keys import second_factor, signing_key
from vault.biometrics.lockout import LockoutPolicy
from vault.biometrics.template import (
    SALT_BYTES,
    ProtectedTemplate,
    TemplateParams,
    enroll,
    open_template,
)
from vault.config import Settings
from vault.errors import Conflict, EnrollmentRejected, InvalidInput, VerificationFailed
from vault.store.biometric_models import (
    BiometricStagedTemplateRow,
    BiometricTemplateRow,
    ProtectedTemplateColumns,
)
from vault.store.database import transaction
from vault.store.models import stored_utc

log = logging.getLogger(__name__)

MAX_ENROLL_PHOTOS = calibration.MAX_PHOTOS
MAX_HANDLE_LENGTH = 128
MIN_PIN_LENGTH = 4
MAX_PIN_LENGTH = 128
#: Enrollment photos farther apart than this (face_recognition's own same-person
#: threshold) are refused: one enrollment must not mix two people.
SAME_PERSON_DISTANCE = 0.6


@dataclass(frozen=True, slots=True)
class EnrollmentResult:
    handle: str
    template_id: str
    generation: int
    address: str  # the patient's consent-signing address (public)
    secret_bits: int
    photos: int


@dataclass(frozen=True, slots=True, repr=False)
class VerifiedPatient:
    """A patient who just matched their face. Holds the signing key: memory only."""

    handle: str
    template_id: str
    generation: int
    account: LocalAccount = field(compare=False)

    @property
    def address(self) -> str:
        return str(self.account.address)

    def __repr__(self) -> str:
        return f"VerifiedPatient(handle={self.handle!r}, address={self.address})"


@dataclass(frozen=True, slots=True, repr=False)
class PreparedEnrollment:
    """A template and its signing key, built but not stored. Memory only."""

    handle: str
    template: ProtectedTemplate
    account: LocalAccount = field(compare=False)
    photos: int = 1

    @property
    def address(self) -> str:
        return str(self.account.address)

    def __repr__(self) -> str:
        return f"PreparedEnrollment(handle={self.handle!r}, address={self.address})"


@dataclass(frozen=True, slots=True)
class StagedTemplate:
    """A re-enrollment's template waiting for the chain's rotation (public parts only)."""

    handle: str
    template_id: str
    address: str
    staged_at: datetime


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FaceGate:
    """Enroll and verify faces for patient handles. Thread- and process-safe through the DB."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        pepper: bytes,
        encoder: FaceEncoder,
        params: TemplateParams | None = None,
        policy: LockoutPolicy | None = None,
        operating_point: calibration.OperatingPoint | None = None,
        min_score: float | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """``min_score`` overrides the operating point's per-enrollment-size thresholds."""
        self._sessions = session_factory
        self.operating_point = operating_point or calibration.shipped()
        self.min_score = min_score
        self._pepper = pepper
        self._encoder = encoder
        self.params = params or TemplateParams()
        self.policy = policy or LockoutPolicy()
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        session_factory: sessionmaker[Session],
        pepper: bytes,
        clock: Callable[[], datetime] = _utcnow,
    ) -> FaceGate:
        encoder = FaceEncoder(
            DetectorConfig(
                detect_max_side=settings.face_detect_max_side,
                min_face_size=settings.face_min_size,
                model=settings.face_detector_model,
                upsample=settings.face_detector_upsample,
            ),
            CaptureLimits(
                max_bytes=settings.face_max_photo_bytes, max_pixels=settings.face_max_pixels
            ),
        )
        policy = LockoutPolicy(
            threshold=settings.face_lockout_threshold,
            base_seconds=settings.face_lockout_base_seconds,
            max_seconds=settings.face_lockout_max_seconds,
            forget_after_seconds=settings.face_lockout_forget_after_seconds,
        )
        return cls(
            session_factory=session_factory,
            pepper=pepper,
            encoder=encoder,
            policy=policy,
            min_score=settings.face_min_match_score,
            clock=clock,
        )

    # --- enrollment -------------------------------------------------------------------

    def enroll(
        self, handle: str, photos: Sequence[bytes], *, pin: str | None = None
    ) -> EnrollmentResult:
        """Create the first template of ``handle``; :class:`Conflict` if it has one."""
        return self.commit(self.prepare(handle, photos, pin=pin), replace=False)

    def reenroll(
        self, handle: str, photos: Sequence[bytes], *, pin: str | None = None
    ) -> EnrollmentResult:
        """Replace ``handle``'s template: fresh κ, transform and signing key.

        The caller must have authorised this (e.g. a fresh verification or an operator
        procedure); the old template stops opening as soon as this commits.
        """
        return self.commit(self.prepare(handle, photos, pin=pin), replace=True)

    def prepare(
        self, handle: str, photos: Sequence[bytes], *, pin: str | None = None
    ) -> PreparedEnrollment:
        """Build a template and its signing key in memory, storing nothing yet.

        The web layer registers (or rotates) the key on chain between :meth:`prepare`
        and :meth:`commit`, so the stored template never names a key the chain refused.
        ``pin`` (optional second factor): the template then opens only with face *and*
        PIN, and an offline attacker holding the database and the pepper pays one
        Argon2id per PIN guessed (docs/biometrics.md). Without it the face alone opens.
        """
        _check_handle(handle)
        _check_pin(pin)
        if not 1 <= len(photos) <= MAX_ENROLL_PHOTOS:
            raise EnrollmentRejected(
                f"enroll with 1 to {MAX_ENROLL_PHOTOS} photos", details={"photos": len(photos)}
            )
        faces = [self._encode(photo, index) for index, photo in enumerate(photos)]
        vectors = np.stack([face.vector for face in faces])
        _check_same_person(vectors)
        salt = secrets.token_bytes(SALT_BYTES)
        template, kappa = enroll(
            vectors,
            pepper=self._pepper,
            bind=handle.encode(),
            params=self.params,
            salt=salt,
            factor=None if pin is None else second_factor(pin, salt),
        )
        del vectors, faces
        account: LocalAccount = Account.from_key(signing_key(kappa, self._pepper))
        return PreparedEnrollment(
            handle=handle, template=template, account=account, photos=len(photos)
        )

    def commit(self, prepared: PreparedEnrollment, *, replace: bool) -> EnrollmentResult:
        """Store a prepared template (replacing the handle's current one if ``replace``)."""
        handle = prepared.handle
        address = prepared.address
        template_id = secrets.token_hex(16)
        with transaction(self._sessions) as session:
            row = session.get(BiometricTemplateRow, handle, with_for_update=True)
            if row is not None and not replace:
                raise Conflict("this handle is already enrolled; re-enroll instead")
            generation = 1 if row is None else row.generation + 1
            if row is None:
                row = BiometricTemplateRow(handle=handle)
                session.add(row)
            _store(
                row,
                prepared.template,
                template_id=template_id,
                generation=generation,
                address=address,
                enrolled_at=self._clock(),
            )
            lockout.forgive(session, handle=handle)
        log.info(
            "face enrolled handle=%s generation=%d photos=%d", handle, generation, prepared.photos
        )
        return EnrollmentResult(
            handle=handle,
            template_id=template_id,
            generation=generation,
            address=address,
            secret_bits=self.params.secret_bits,
            photos=prepared.photos,
        )

    # --- re-enrollment in two steps (a second template slot) ---------------------------

    def stage(self, prepared: PreparedEnrollment) -> StagedTemplate:
        """Store ``prepared`` beside the handle's current template, not replacing it yet.

        Staged *before* the chain rotates the key, so a process that dies after the
        rotation's receipt leaves the new template on disk: :meth:`promote` (by whoever
        next sees the chain name the new key) completes the re-enrollment. Replaces any
        earlier staged template of the handle.
        """
        staged = StagedTemplate(
            prepared.handle, secrets.token_hex(16), prepared.address, self._clock()
        )
        with transaction(self._sessions) as session:
            row = session.get(BiometricStagedTemplateRow, prepared.handle, with_for_update=True)
            if row is None:
                row = BiometricStagedTemplateRow(handle=prepared.handle)
                session.add(row)
            _store_template(
                row, prepared.template, template_id=staged.template_id, address=staged.address
            )
            row.staged_at = staged.staged_at
        return staged

    def staged(self, handle: str) -> StagedTemplate | None:
        with self._sessions() as session:
            row = session.get(BiometricStagedTemplateRow, handle)
            if row is None:
                return None
            return StagedTemplate(
                handle, row.template_id, row.signing_address, stored_utc(row.staged_at)
            )

    def promote(self, staged: StagedTemplate) -> bool:
        """Make the staged template current (the old one stops opening), in one
        transaction. False, changing nothing, if it is no longer staged (another caller
        promoted or dropped it)."""
        with transaction(self._sessions) as session:
            row = session.get(BiometricStagedTemplateRow, staged.handle, with_for_update=True)
            if row is None or row.template_id != staged.template_id:
                return False
            current = session.get(BiometricTemplateRow, staged.handle, with_for_update=True)
            if current is None:  # the account was deleted meanwhile
                session.delete(row)
                return False
            _store(
                current,
                _load(row),
                template_id=row.template_id,
                generation=current.generation + 1,
                address=row.signing_address,
                enrolled_at=self._clock(),
            )
            session.delete(row)
            lockout.forgive(session, handle=staged.handle)
        log.info("face re-enrolled handle=%s generation=%d", staged.handle, current.generation)
        return True

    def drop_staged(self, staged: StagedTemplate) -> None:
        """Forget a staged template the chain never adopted (no-op if already gone)."""
        with transaction(self._sessions) as session:
            row = session.get(BiometricStagedTemplateRow, staged.handle, with_for_update=True)
            if row is not None and row.template_id == staged.template_id:
                session.delete(row)

    def forget(self, handle: str) -> None:
        """Delete ``handle``'s templates and attempt counters (account deletion)."""
        with transaction(self._sessions) as session:
            for table in (BiometricTemplateRow, BiometricStagedTemplateRow):
                row = session.get(table, handle)
                if row is not None:
                    session.delete(row)
            lockout.forgive(session, handle=handle)

    # --- verification -----------------------------------------------------------------

    def verify(self, handle: str, photo: bytes, *, pin: str | None = None) -> VerifiedPatient:
        """1:1: does ``photo`` (and ``pin``, if the patient enrolled with one) open
        ``handle``'s template? A missing or wrong PIN fails like a wrong face.

        Raises :class:`BiometricLockedOut` (too many failures; nothing else is looked at),
        capture errors (``no_face``...; these count as failed attempts too), and
        :class:`VerificationFailed` — the same for an unknown handle and a wrong face.
        """
        _check_handle(handle)
        _check_pin(pin)
        with transaction(self._sessions) as session:
            lockout.begin_attempt(session, handle=handle, policy=self.policy, now=self._clock())
            row = session.get(BiometricTemplateRow, handle)
            template = None if row is None else _load(row)
            meta = None if row is None else (row.template_id, row.generation)
        face = self._encode(photo, 0)
        kappa = None
        if template is not None:
            factor = None
            if template.params.second_factor and pin is not None:
                factor = second_factor(pin, template.salt)
            opened = open_template(
                template, pepper=self._pepper, bind=handle.encode(), factor=factor
            )
            kappas, scores = opened.recover(face.vector[None, :])
            # The code opens up to its own FMR; the score (known only once κ opened)
            # then holds the decision to the operating point of this enrollment size.
            if scores[0] > self.threshold(opened.photos):
                kappa = kappas[0]
        del face
        if kappa is None or meta is None:
            log.info("face verification failed handle=%s", handle)
            raise VerificationFailed("the face does not match this patient")
        with transaction(self._sessions) as session:
            current = session.get(BiometricTemplateRow, handle)
            if current is None or current.template_id != meta[0]:
                # Re-enrolled while we were comparing: the old template must not open.
                raise VerificationFailed("the face does not match this patient")
            lockout.forgive(session, handle=handle)
        account: LocalAccount = Account.from_key(signing_key(kappa, self._pepper))
        log.info("face verified handle=%s generation=%d", handle, meta[1])
        return VerifiedPatient(
            handle=handle, template_id=meta[0], generation=meta[1], account=account
        )

    def threshold(self, photos: int | None) -> float:
        """The match score a probe must exceed for a template of ``photos`` photos."""
        if self.min_score is not None:
            return self.min_score
        return self.operating_point.threshold(photos)

    def prune_attempts(self) -> int:
        """Drop failed-attempt counters that hold nothing back (see :func:`lockout.prune`)."""
        with transaction(self._sessions) as session:
            return lockout.prune(
                session,
                now=self._clock(),
                idle=timedelta(seconds=self.policy.forget_after_seconds),
            )

    def failed_attempts(self, handle: str) -> int:
        with self._sessions() as session:
            return lockout.failures(session, handle=handle)

    def _encode(self, photo: bytes, index: int) -> FaceEmbedding:
        try:
            return self._encoder.encode(photo)
        except InvalidInput as exc:
            exc.details.setdefault("photo_index", index)
            raise


def _check_handle(handle: str) -> None:
    if not handle or len(handle) > MAX_HANDLE_LENGTH or not handle.isprintable():
        raise InvalidInput("patient handle must be 1-128 printable characters")


def _check_pin(pin: str | None) -> None:
    if pin is not None and not (MIN_PIN_LENGTH <= len(pin) <= MAX_PIN_LENGTH and pin.isprintable()):
        raise InvalidInput(f"a PIN has {MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} printable characters")


def _check_same_person(vectors: np.ndarray) -> None:
    if len(vectors) < 2:
        return
    gaps = np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=-1)
    if float(gaps.max()) > SAME_PERSON_DISTANCE:
        raise EnrollmentRejected("the enrollment photos do not show the same person")


def _store(
    row: BiometricTemplateRow,
    template: ProtectedTemplate,
    *,
    template_id: str,
    generation: int,
    address: str,
    enrolled_at: datetime,
) -> None:
    _store_template(row, template, template_id=template_id, address=address)
    row.generation = generation
    row.enrolled_at = enrolled_at


def _store_template(
    row: ProtectedTemplateColumns,
    template: ProtectedTemplate,
    *,
    template_id: str,
    address: str,
) -> None:
    row.template_id = template_id
    row.scheme = template.scheme
    row.params = template.params.encode()
    row.salt = template.salt
    row.commitment = template.commitment
    row.helper_nonce = template.helper_nonce
    row.helper_ciphertext = template.helper_ciphertext
    row.signing_address = address


def _load(row: ProtectedTemplateColumns) -> ProtectedTemplate:
    return ProtectedTemplate(
        scheme=row.scheme,
        params=TemplateParams.decode(row.params),
        salt=row.salt,
        commitment=row.commitment,
        helper_nonce=row.helper_nonce,
        helper_ciphertext=row.helper_ciphertext,
    )
