"""FaceGate over a real SQLite database: enroll, verify, re-enroll, lockout, and the scan
for raw biometrics in the database, the blob directory and the logs."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from vault.biometrics.embedding import FaceEmbedding, FaceEncoder
from vault.biometrics.service import FaceGate
from vault.config import Settings
from vault.crypto.secret_files import load_or_create_secret
from vault.errors import (
    BiometricLockedOut,
    Conflict,
    EnrollmentRejected,
    NoFace,
    VerificationFailed,
)
from vault.store.biometric_models import BiometricAttemptRow, BiometricTemplateRow
from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade

from .conftest import OBAMA_ENROLL, OBAMA_PROBE, OTHERS, FakeClock

Photo = Callable[[str], bytes]


def _obama(photo: Photo) -> list[bytes]:
    return [photo(name) for name in OBAMA_ENROLL]


def test_enroll_then_verify_with_another_photo(gate: FaceGate, photo: Photo) -> None:
    enrolled = gate.enroll("patient-1", _obama(photo))
    assert enrolled.secret_bits >= 64 and enrolled.generation == 1
    patient = gate.verify("patient-1", photo(OBAMA_PROBE))
    assert patient.address == enrolled.address
    signed = patient.account.sign_message(encode_defunct(text="grant"))
    assert Account.recover_message(encode_defunct(text="grant"), signature=signed.signature) == (
        enrolled.address
    )
    assert "0x" in repr(patient) and patient.account.key.hex() not in repr(patient)


def test_wrong_face_and_unknown_handle_fail_alike(gate: FaceGate, photo: Photo) -> None:
    gate.enroll("patient-1", _obama(photo))
    with pytest.raises(VerificationFailed) as wrong:
        gate.verify("patient-1", photo(OTHERS[0]))
    with pytest.raises(VerificationFailed) as unknown:
        gate.verify("nobody", photo(OBAMA_PROBE))
    assert wrong.value.code == unknown.value.code == "verification_failed"
    assert gate.failed_attempts("patient-1") == 1 and gate.failed_attempts("nobody") == 1


def test_reenrollment_gives_new_kappa_and_key_and_old_template_stops_opening(
    gate: FaceGate,
    photo: Photo,
    sessions: sessionmaker[Session],
    pepper: bytes,
    encoder: FaceEncoder,
) -> None:
    first = gate.enroll("patient-1", _obama(photo))
    with sessions() as session:
        old_row = session.get(BiometricTemplateRow, "patient-1")
        assert old_row is not None
        old = (old_row.salt, old_row.commitment, old_row.helper_ciphertext)
    with pytest.raises(Conflict):
        gate.enroll("patient-1", _obama(photo))
    second = gate.reenroll("patient-1", [photo(OBAMA_PROBE), photo("obama-1080p.jpg")])
    assert second.generation == 2
    assert second.address != first.address and second.template_id != first.template_id
    with sessions() as session:
        row = session.get(BiometricTemplateRow, "patient-1")
        assert row is not None
        assert (row.salt, row.commitment, row.helper_ciphertext) != old
    # The face now yields the new key, never the old one.
    assert gate.verify("patient-1", photo("people/obama/obama2.jpg")).address == second.address


def test_a_staged_template_opens_only_once_promoted_and_only_once(
    gate: FaceGate, photo: Photo
) -> None:
    first = gate.enroll("patient-1", _obama(photo))
    staged = gate.stage(gate.prepare("patient-1", [photo(OBAMA_PROBE)]))
    assert gate.staged("patient-1") == staged and staged.address != first.address
    # Staged is not current: the face still yields the enrolled key.
    assert gate.verify("patient-1", photo("people/obama/obama2.jpg")).address == first.address
    assert gate.promote(staged)
    assert not gate.promote(staged)  # a second promoter (a racing verification) is a no-op
    assert gate.staged("patient-1") is None
    assert gate.verify("patient-1", photo("people/obama/obama2.jpg")).address == staged.address
    # A newer staged template replaces an older one; dropping the older changes nothing.
    older = gate.stage(gate.prepare("patient-1", _obama(photo)))
    newer = gate.stage(gate.prepare("patient-1", _obama(photo)))
    gate.drop_staged(older)
    assert gate.staged("patient-1") == newer
    assert not gate.promote(older)
    gate.forget("patient-1")  # account deletion forgets the staged template too
    assert gate.staged("patient-1") is None


def test_verification_racing_a_reenrollment_fails(
    gate: FaceGate, photo: Photo, pepper: bytes
) -> None:
    gate.enroll("patient-1", _obama(photo))
    original = gate._encoder.encode  # re-enroll in the middle of a verification

    def encode_then_reenroll(data: bytes) -> FaceEmbedding:
        face = original(data)
        gate._encoder.encode = original  # type: ignore[method-assign]
        gate.reenroll("patient-1", _obama(photo))
        return face

    gate._encoder.encode = encode_then_reenroll  # type: ignore[method-assign,assignment]
    with pytest.raises(VerificationFailed):
        gate.verify("patient-1", photo(OBAMA_PROBE))


def test_enrollment_refusals(gate: FaceGate, photo: Photo) -> None:
    with pytest.raises(EnrollmentRejected):
        gate.enroll("patient-1", [])
    with pytest.raises(EnrollmentRejected):
        gate.enroll("patient-1", [photo(OBAMA_PROBE)] * 6)
    with pytest.raises(EnrollmentRejected):  # two people in one enrollment
        gate.enroll("patient-1", [photo(OBAMA_PROBE), photo(OTHERS[0])])
    with pytest.raises(NoFace) as info:
        gate.enroll("patient-1", [photo(OBAMA_PROBE), _blank()])
    assert info.value.details["photo_index"] == 1


def _blank() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 200, 200)).save(out, format="PNG")
    return out.getvalue()


def test_lockout_and_exponential_backoff(gate: FaceGate, photo: Photo, clock: FakeClock) -> None:
    gate.enroll("patient-1", _obama(photo))
    stranger = photo(OTHERS[1])
    for _ in range(gate.policy.threshold):
        with pytest.raises(VerificationFailed):
            gate.verify("patient-1", stranger)
    # Locked: even the right face is refused without being looked at.
    with pytest.raises(BiometricLockedOut) as locked:
        gate.verify("patient-1", photo(OBAMA_PROBE))
    assert locked.value.details["retry_after"] == 30
    clock.advance(31)
    with pytest.raises(VerificationFailed):
        gate.verify("patient-1", stranger)
    with pytest.raises(BiometricLockedOut) as longer:
        gate.verify("patient-1", stranger)
    assert longer.value.details["retry_after"] == 60  # doubled
    clock.advance(61)
    assert gate.verify("patient-1", photo(OBAMA_PROBE)).handle == "patient-1"
    assert gate.failed_attempts("patient-1") == 0


def test_counters_that_hold_nothing_back_are_pruned(
    gate: FaceGate, photo: Photo, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    gate.enroll("patient-1", _obama(photo))
    stranger = photo(OTHERS[1])
    for handle in ("ghost-1", "ghost-2"):  # attempts on handles nobody enrolled
        with pytest.raises(VerificationFailed):
            gate.verify(handle, stranger)
    for _ in range(gate.policy.threshold):  # ghost-3 ends up locked
        with pytest.raises(VerificationFailed):
            gate.verify("ghost-3", stranger)
    gate.verify("patient-1", photo(OBAMA_PROBE))  # a match: counter forgiven
    assert gate.prune_attempts() == 1  # only the forgiven counter goes now
    assert gate.failed_attempts("ghost-1") == 1

    # A week of silence: the idle, unlocked counters go; a lock still running stays.
    clock.advance(gate.policy.forget_after_seconds + 1)
    with sessions() as session:
        session.execute(
            update(BiometricAttemptRow)
            .where(BiometricAttemptRow.handle == "ghost-3")
            .values(locked_until=clock.now + timedelta(hours=1))
        )
        session.commit()
    assert gate.prune_attempts() == 2
    with sessions() as session:
        left = set(session.scalars(select(BiometricAttemptRow.handle)))
    assert left == {"ghost-3"}
    assert gate.failed_attempts("ghost-3") == gate.policy.threshold


def test_bad_photos_count_as_failed_attempts(gate: FaceGate, photo: Photo) -> None:
    gate.enroll("patient-1", _obama(photo))
    with pytest.raises(NoFace):
        gate.verify("patient-1", _blank())
    assert gate.failed_attempts("patient-1") == 1


def _needles(photos: list[bytes], vectors: list[np.ndarray]) -> list[bytes]:
    needles: list[bytes] = []
    for data in photos:  # any 48-byte stretch of any photo
        needles += [data[i : i + 48] for i in range(0, len(data) - 48, max(1, len(data) // 64))]
    for v in vectors:
        needles += [v.astype("<f8").tobytes()[:32], v.astype("<f4").tobytes()[:16]]
        needles += [v.astype(">f8").tobytes()[:32], struct.pack("<4f", *v[:4])]
        needles += [",".join(f"{x:.4f}" for x in v[:3]).encode(), f"{v[0]:.6f}".encode()]
        needles += [" ".join(f"{x:.4f}" for x in v[:3]).encode()]
    return needles


def test_no_embedding_or_image_bytes_in_database_blobs_or_logs(
    tmp_path: Path, photo: Photo, encoder: FaceEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", project_root=Path(__file__).parents[2])
    pepper = load_or_create_secret(settings.resolved_pepper_file)
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    gate = FaceGate.from_settings(
        settings, session_factory=make_session_factory(engine), pepper=pepper
    )
    photos = [*_obama(photo), photo(OBAMA_PROBE), photo(OTHERS[0])]
    caplog.set_level(logging.DEBUG)
    gate.enroll("patient-1", photos[:3])
    gate.verify("patient-1", photos[3])
    with pytest.raises(VerificationFailed):
        gate.verify("patient-1", photos[4])
    engine.dispose()
    vectors = [encoder.encode(p).vector for p in photos]
    stores = [
        f for f in settings.resolved_data_dir.rglob("*") if f.is_file() and "secrets" not in f.parts
    ]
    assert any(f.name.startswith("vault.db") for f in stores)
    haystacks = [f.read_bytes() for f in stores] + [caplog.text.encode()]
    for needle in _needles(photos, vectors):
        for hay in haystacks:
            assert needle not in hay
    assert "patient-1" in caplog.text  # the logs do say what happened


def test_template_row_opens_only_with_its_handle(
    gate: FaceGate, photo: Photo, sessions: sessionmaker[Session], pepper: bytes
) -> None:
    gate.enroll("patient-1", _obama(photo))
    gate.enroll("patient-2", [photo(OTHERS[0])])
    with sessions.begin() as session:
        one = session.get(BiometricTemplateRow, "patient-1")
        two = session.get(BiometricTemplateRow, "patient-2")
        assert one is not None and two is not None
        # An operator swapping helper data between rows gains nothing: it fails to open.
        two.helper_ciphertext, two.helper_nonce, two.salt = (
            one.helper_ciphertext,
            one.helper_nonce,
            one.salt,
        )
        two.commitment = one.commitment
    with pytest.raises(Exception) as info:
        gate.verify("patient-2", photo(OBAMA_PROBE))
    assert getattr(info.value, "code", "") == "template_corrupt"


def test_match_score_threshold_holds_the_operating_point(
    sessions: sessionmaker[Session], pepper: bytes, encoder: FaceEncoder, photo: Photo
) -> None:
    strict = FaceGate(session_factory=sessions, pepper=pepper, encoder=encoder, min_score=0.99)
    strict.enroll("patient-1", _obama(photo))
    with pytest.raises(VerificationFailed):  # κ opens, but the score is below the bar
        strict.verify("patient-1", photo(OBAMA_PROBE))
