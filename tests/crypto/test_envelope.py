"""Envelope encryption: vectors, binding of associated data, opaque failures, properties."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.crypto.aead import (
    TAG_BYTES,
    associated_data,
    open_sealed,
    seal,
)
from vault.crypto.envelope import (
    PatientKeyCache,
    RecordContext,
    WrappedPatientKey,
    new_patient_key,
    rewrap_patient_key,
    unwrap_patient_key,
)
from vault.crypto.keyring import MasterKeyring, new_keyring
from vault.errors import DecryptionFailed

CT = "application/fhir+json; fhirVersion=4.3"


def _keyring(vector: dict[str, Any]) -> MasterKeyring:
    version = vector["master_key_version"]
    return MasterKeyring(keys={version: bytes.fromhex(vector["master_key"])}, created={version: ""})


def _context(vector: dict[str, Any]) -> RecordContext:
    return RecordContext(
        vector["record_id"], vector["patient_id"], vector["version"], vector["content_type"]
    )


def test_vectors_reproduce(envelope_vectors: list[dict[str, Any]], pattern_random: Any) -> None:
    """Patient keys of every vector, and format-1 records, come out byte for byte."""
    for vector in envelope_vectors:
        random = pattern_random(vector["random_seed"])
        patient_key, wrapped = new_patient_key(
            _keyring(vector), vector["patient_id"], random=random
        )
        assert wrapped.wrapped.hex() == vector["wrapped_patient_key"]
        if vector["format"] != 1:
            continue  # format 2 is read, no longer written
        sealed = patient_key.encrypt(
            _context(vector), bytes.fromhex(vector["plaintext"]), random=random
        )
        assert sealed.wrapped_data_key.hex() == vector["wrapped_data_key"]
        assert bytes(sealed.ciphertext).hex() == vector["ciphertext"]


def test_vectors_cover_both_formats(envelope_vectors: list[dict[str, Any]]) -> None:
    assert {vector["format"] for vector in envelope_vectors} == {1, 2}


def test_vectors_open_and_match_bare_aes_gcm(envelope_vectors: list[dict[str, Any]]) -> None:
    """The documented layouts, checked with nothing but AESGCM, and opened by the vault."""
    for vector in envelope_vectors:
        record_format = vector["format"]

        def bare_open(key: bytes, blob_hex: str, aad_hex: str, header: int) -> bytes:
            blob = bytes.fromhex(blob_hex)
            assert blob[0] == header
            return AESGCM(key).decrypt(blob[1:13], blob[13:], bytes.fromhex(aad_hex))

        patient_key = bare_open(
            bytes.fromhex(vector["master_key"]),
            vector["wrapped_patient_key"],
            vector["patient_key_aad"],
            1,
        )
        assert patient_key.hex() == vector["patient_key"]
        data_key = bare_open(
            patient_key, vector["wrapped_data_key"], vector["data_key_aad"], record_format
        )
        if record_format == 1:
            plaintext = bare_open(data_key, vector["ciphertext"], vector["record_aad"], 1)
        else:  # no header; the nonce is 12 zero bytes under a single-use data key
            plaintext = AESGCM(data_key).decrypt(
                bytes(12), bytes.fromhex(vector["ciphertext"]), bytes.fromhex(vector["record_aad"])
            )
        assert plaintext.hex() == vector["plaintext"]
        context = _context(vector)
        assert context.record_aad(record_format).hex() == vector["record_aad"]
        assert context.data_key_aad(record_format).hex() == vector["data_key_aad"]
        # and the vault opens them too, uncached and through the cache
        wrapped = WrappedPatientKey(
            vector["master_key_version"], bytes.fromhex(vector["wrapped_patient_key"])
        )
        for key in (
            unwrap_patient_key(_keyring(vector), vector["patient_id"], wrapped),
            PatientKeyCache().unwrap(_keyring(vector), vector["patient_id"], wrapped),
        ):
            opened = key.decrypt(
                context,
                bytes.fromhex(vector["ciphertext"]),
                bytes.fromhex(vector["wrapped_data_key"]),
            )
            assert opened.hex() == vector["plaintext"]


def _format_2_record(
    key_bytes: bytes, context: RecordContext, plaintext: bytes
) -> tuple[bytes, bytes]:
    """A record sealed as earlier versions wrote format 2 (body, wrapped data key)."""
    data_key, nonce = os.urandom(32), os.urandom(12)
    body = AESGCM(data_key).encrypt(bytes(12), plaintext, context.record_aad(2))
    wrapped = AESGCM(key_bytes).encrypt(nonce, data_key, context.data_key_aad(2))
    return body, b"\x02" + nonce + wrapped


def test_format_2_records_stay_readable_and_cannot_be_relabelled() -> None:
    keyring = new_keyring()
    key, _wrapped = new_patient_key(keyring, "patient-a")
    context = RecordContext("record-1", "patient-a", 3, CT)
    body, wrapped_data_key = _format_2_record(key._key, context, b"old record")
    assert key.decrypt(context, body, wrapped_data_key) == b"old record"
    for relabelled in (b"\x01" + wrapped_data_key[1:], b"\x03" + wrapped_data_key[1:]):
        with pytest.raises(DecryptionFailed):
            key.decrypt(context, body, relabelled)
    fresh = key.encrypt(context, b"new record")
    assert fresh.wrapped_data_key[0] == 1
    with pytest.raises(DecryptionFailed):  # a format-1 key relabelled as format 2
        key.decrypt(context, fresh.ciphertext, b"\x02" + fresh.wrapped_data_key[1:])
    with pytest.raises(DecryptionFailed):  # bodies of one format under the other's key
        key.decrypt(context, body, fresh.wrapped_data_key)
    with pytest.raises(DecryptionFailed):
        key.decrypt(context, fresh.ciphertext, wrapped_data_key)


def test_format_1_record_is_two_seals_with_random_nonces() -> None:
    keyring = new_keyring()
    key, _wrapped = new_patient_key(keyring, "patient-a")
    context = RecordContext("record-1", "patient-a", 2, CT)
    drawn: list[bytes] = []

    def random(n: int) -> bytes:
        drawn.append(os.urandom(n))
        return drawn[-1]

    sealed = key.encrypt(context, b"body", random=random)
    assert [len(d) for d in drawn] == [32, 12, 12]  # data key, body nonce, wrap nonce
    data_key, body_nonce, wrap_nonce = drawn
    assert bytes(sealed.ciphertext[:13]) == b"\x01" + body_nonce
    assert len(sealed.ciphertext) == 13 + len(b"body") + 16
    assert (
        AESGCM(data_key).decrypt(body_nonce, bytes(sealed.ciphertext[13:]), context.record_aad())
        == b"body"
    )
    assert sealed.wrapped_data_key[:13] == b"\x01" + wrap_nonce
    assert (
        AESGCM(key._key).decrypt(wrap_nonce, sealed.wrapped_data_key[13:], context.data_key_aad())
        == data_key
    )


def test_associated_data_is_unambiguous() -> None:
    assert associated_data("record/1", "ab", "c") != associated_data("record/1", "a", "bc")
    assert associated_data("record/1", "a") != associated_data("data-key/1", "a")
    assert associated_data("x", "é") == b"vault:x\x00\x00\x00\x00\x02\xc3\xa9"


def _sealed_record() -> tuple[MasterKeyring, WrappedPatientKey, RecordContext, bytes, bytes]:
    keyring = new_keyring()
    _key, wrapped = new_patient_key(keyring, "patient-a")
    key = unwrap_patient_key(keyring, "patient-a", wrapped)
    context = RecordContext("record-1", "patient-a", 2, CT)
    sealed = key.encrypt(context, b'{"resourceType":"Patient"}')
    return keyring, wrapped, context, bytes(sealed.ciphertext), sealed.wrapped_data_key


@pytest.mark.parametrize(
    "moved",
    [
        RecordContext("record-2", "patient-a", 2, CT),
        RecordContext("record-1", "patient-a", 1, CT),
        RecordContext("record-1", "patient-a", 2, "application/pdf"),
    ],
)
def test_ciphertext_moved_to_another_record_fails(moved: RecordContext) -> None:
    keyring, wrapped, _context, ciphertext, wrapped_data_key = _sealed_record()
    key = unwrap_patient_key(keyring, "patient-a", wrapped)
    with pytest.raises(DecryptionFailed):
        key.decrypt(moved, ciphertext, wrapped_data_key)


def test_ciphertext_moved_to_another_patient_fails() -> None:
    keyring, wrapped, context, ciphertext, wrapped_data_key = _sealed_record()
    with pytest.raises(DecryptionFailed):  # patient key relabelled as another patient's
        unwrap_patient_key(keyring, "patient-b", wrapped)
    _other, other_wrapped = new_patient_key(keyring, "patient-b")
    other = unwrap_patient_key(keyring, "patient-b", other_wrapped)
    moved = RecordContext(context.record_id, "patient-b", context.version, context.content_type)
    with pytest.raises(DecryptionFailed):
        other.decrypt(moved, ciphertext, wrapped_data_key)


def test_every_failure_is_the_same_opaque_error() -> None:
    keyring, wrapped, context, ciphertext, wrapped_data_key = _sealed_record()
    key = unwrap_patient_key(keyring, "patient-a", wrapped)
    flipped = bytearray(ciphertext)
    flipped[20] ^= 1
    failures: list[Callable[[], object]] = [
        lambda: key.decrypt(context, bytes(flipped), wrapped_data_key),
        lambda: key.decrypt(context, ciphertext[:-1], wrapped_data_key),
        lambda: key.decrypt(context, b"", wrapped_data_key),
        lambda: key.decrypt(context, bytes([ciphertext[0] ^ 1]) + ciphertext[1:], wrapped_data_key),
        lambda: key.decrypt(context, ciphertext, b"\x02" + wrapped_data_key[1:]),  # relabelled
        lambda: key.decrypt(context, ciphertext, b"\x07" + wrapped_data_key[1:]),  # unknown format
        lambda: key.decrypt(context, ciphertext, None),  # shredded data key
        lambda: key.decrypt(context, ciphertext, wrapped_data_key[:-3]),
        lambda: unwrap_patient_key(keyring, "patient-a", None),  # shredded patient key
        lambda: unwrap_patient_key(new_keyring(), "patient-a", wrapped),  # wrong master key
        lambda: unwrap_patient_key(keyring, "patient-a", WrappedPatientKey(99, wrapped.wrapped)),
        lambda: open_sealed(b"short", ciphertext, b""),
        lambda: PatientKeyCache().unwrap(keyring, "patient-a", None),
        lambda: PatientKeyCache().unwrap(new_keyring(), "patient-a", wrapped),
        lambda: PatientKeyCache().unwrap(
            keyring, "patient-a", WrappedPatientKey(99, wrapped.wrapped)
        ),
    ]
    messages = set()
    for failure in failures:
        with pytest.raises(DecryptionFailed) as caught:
            failure()
        messages.add((str(caught.value), caught.value.code, tuple(caught.value.details)))
        assert caught.value.__cause__ is None
    assert len(messages) == 1


def test_rewrap_keeps_records_readable() -> None:
    keyring, wrapped, context, ciphertext, wrapped_data_key = _sealed_record()
    rotated = keyring.with_new_key()
    rewrapped = rewrap_patient_key(rotated, "patient-a", wrapped)
    assert rewrapped.master_version == 2 and rewrapped.wrapped != wrapped.wrapped
    key = unwrap_patient_key(rotated.without(1), "patient-a", rewrapped)
    assert key.decrypt(context, ciphertext, wrapped_data_key) == b'{"resourceType":"Patient"}'


def test_patient_key_cache_returns_only_what_unwrapping_would() -> None:
    keyring, wrapped, context, ciphertext, wrapped_data_key = _sealed_record()
    cache = PatientKeyCache(maxsize=2)
    first = cache.unwrap(keyring, "patient-a", wrapped)
    assert cache.unwrap(keyring, "patient-a", wrapped) is first  # a hit
    assert first.decrypt(context, ciphertext, wrapped_data_key) == b'{"resourceType":"Patient"}'
    # nothing but the exact inputs hits: another master key with the same version, another
    # patient id, a retired version, a shredded (None) key all fail as unwrapping does
    impostor = MasterKeyring(keys={1: os.urandom(32)}, created={1: ""})
    refused: list[Callable[[], object]] = [
        lambda: cache.unwrap(impostor, "patient-a", wrapped),
        lambda: cache.unwrap(keyring, "patient-b", wrapped),
        lambda: cache.unwrap(keyring.with_new_key().without(1), "patient-a", wrapped),
        lambda: cache.unwrap(keyring, "patient-a", None),
    ]
    for failure in refused:
        with pytest.raises(DecryptionFailed):
            failure()
    # a re-wrapped key (new bytes) is a miss that opens to the same key
    rotated = keyring.with_new_key()
    rewrapped = rewrap_patient_key(rotated, "patient-a", wrapped)
    second = cache.unwrap(rotated, "patient-a", rewrapped)
    assert second is not first
    assert second.decrypt(context, ciphertext, wrapped_data_key) == b'{"resourceType":"Patient"}'
    cache.clear()
    assert cache.unwrap(keyring, "patient-a", wrapped) is not first


def test_fresh_keys_and_nonces_each_time() -> None:
    keyring = new_keyring()
    key, _ = new_patient_key(keyring, "p")
    context = RecordContext("r", "p", 1, CT)
    first, second = key.encrypt(context, b"same"), key.encrypt(context, b"same")
    assert first.ciphertext != second.ciphertext
    assert first.wrapped_data_key != second.wrapped_data_key


@settings(max_examples=150, deadline=None)
@given(
    plaintext=st.binary(max_size=4096),
    record_id=st.text(min_size=1, max_size=40),
    patient_id=st.text(min_size=1, max_size=40),
    version=st.integers(min_value=1, max_value=2**31),
    content_type=st.text(max_size=40),
)
def test_property_roundtrip(
    plaintext: bytes, record_id: str, patient_id: str, version: int, content_type: str
) -> None:
    keyring = new_keyring()
    _key, wrapped = new_patient_key(keyring, patient_id)
    key = unwrap_patient_key(keyring, patient_id, wrapped)
    context = RecordContext(record_id, patient_id, version, content_type)
    sealed = key.encrypt(context, plaintext)
    assert len(sealed.ciphertext) == 1 + 12 + len(plaintext) + TAG_BYTES
    assert key.decrypt(context, sealed.ciphertext, sealed.wrapped_data_key) == plaintext
    # the inlined AAD encoding equals the reference one (associated_data) for any text
    wrapped_data_key = sealed.wrapped_data_key
    data_key = AESGCM(key._key).decrypt(
        wrapped_data_key[1:13], wrapped_data_key[13:], context.data_key_aad()
    )
    body = bytes(sealed.ciphertext)
    assert AESGCM(data_key).decrypt(body[1:13], body[13:], context.record_aad()) == plaintext


@settings(max_examples=150, deadline=None)
@given(plaintext=st.binary(min_size=0, max_size=512), data=st.data())
def test_property_any_bit_flip_in_a_record_fails(plaintext: bytes, data: st.DataObject) -> None:
    keyring = new_keyring()
    key, _wrapped = new_patient_key(keyring, "p")
    context = RecordContext("r", "p", 1, CT)
    sealed = key.encrypt(context, plaintext)
    parts = [bytearray(sealed.ciphertext), bytearray(sealed.wrapped_data_key)]
    which = data.draw(st.integers(min_value=0, max_value=1))
    position = data.draw(st.integers(min_value=0, max_value=len(parts[which]) * 8 - 1))
    parts[which][position // 8] ^= 1 << (position % 8)
    with pytest.raises(DecryptionFailed):
        key.decrypt(context, bytes(parts[0]), bytes(parts[1]))


@settings(max_examples=150, deadline=None)
@given(plaintext=st.binary(min_size=0, max_size=512), data=st.data())
def test_property_any_single_bit_flip_fails(plaintext: bytes, data: st.DataObject) -> None:
    key = os.urandom(32)
    sealed = seal(key, plaintext, b"aad")
    position = data.draw(st.integers(min_value=0, max_value=len(sealed) * 8 - 1))
    sealed[position // 8] ^= 1 << (position % 8)
    with pytest.raises(DecryptionFailed):
        open_sealed(key, sealed, b"aad")


@settings(max_examples=100, deadline=None)
@given(
    fields=st.lists(st.text(max_size=10), min_size=1, max_size=4),
    other=st.lists(st.text(max_size=10), min_size=1, max_size=4),
)
def test_property_different_context_never_opens(fields: list[str], other: list[str]) -> None:
    key = os.urandom(32)
    sealed = seal(key, b"secret", associated_data("record/1", *fields))
    if fields != other:
        with pytest.raises(DecryptionFailed):
            open_sealed(key, sealed, associated_data("record/1", *other))


@pytest.mark.parametrize("record_format", [1, 2])
def test_a_large_body_opens_and_still_authenticates(record_format: int) -> None:
    """A body of megabytes opens to the same plaintext, and any change anywhere, its tail
    or the tag included, fails."""
    keyring = new_keyring()
    key, _wrapped = new_patient_key(keyring, "patient-a")
    context = RecordContext("record-1", "patient-a", 1, "application/pdf")
    megabyte = 1 << 20
    plaintext = os.urandom(3 * megabyte + 12345)
    if record_format == 1:
        sealed = key.encrypt(context, plaintext)
        body, wrapped_data_key = bytes(sealed.ciphertext), sealed.wrapped_data_key
    else:
        body, wrapped_data_key = _format_2_record(key._key, context, plaintext)
    assert key.decrypt(context, body, wrapped_data_key) == plaintext
    for position in (0, 20, megabyte, len(body) - TAG_BYTES - 1, len(body) - 1):
        flipped = bytearray(body)
        flipped[position] ^= 1
        with pytest.raises(DecryptionFailed):
            key.decrypt(context, bytes(flipped), wrapped_data_key)
    with pytest.raises(DecryptionFailed):
        key.decrypt(context, body[:-1], wrapped_data_key)
    moved = RecordContext("record-2", "patient-a", 1, "application/pdf")
    with pytest.raises(DecryptionFailed):
        key.decrypt(moved, body, wrapped_data_key)
