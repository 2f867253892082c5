"""Property tests for the protected template's encoding (codes.py, template.py).

tests/biometrics already covers RS(32, 8) up to t errors and refusal beyond t, RS against
galois, RM soft decoding under Gaussian noise, and the handle/pepper binding on real
photos. These add what a hostile input could reach: any RS code shape, RM(1,7) with
adversarially placed bit flips, the parameter string parser, and every byte of the stored
template (salt, nonce, helper ciphertext, commitment, scheme) tampered with. Embeddings
are synthetic (no face model needed): the template code does not care where they came from.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vault.biometrics.codes import BLOCK_BITS, ReedSolomon, rm_decode_soft, rm_encode
from vault.biometrics.template import (
    ProtectedTemplate,
    TemplateParams,
    enroll,
    open_template,
    recover_secret,
)
from vault.errors import TemplateCorrupt

PEPPER = secrets.token_bytes(32)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def rs_codes(draw: st.DrawFn) -> tuple[ReedSolomon, list[int]]:
    k = draw(st.integers(1, 32))
    parity = 2 * draw(st.integers(1, 16))
    n = min(k + parity, 255)
    assume((n - k) % 2 == 0)
    message = draw(st.lists(st.integers(0, 255), min_size=k, max_size=k))
    return ReedSolomon(n, k), message


@FAST
@given(code_and_message=rs_codes(), data=st.data())
def test_rs_round_trips_any_shape_with_up_to_t_errors(
    code_and_message: tuple[ReedSolomon, list[int]], data: st.DataObject
) -> None:
    code, message = code_and_message
    word = code.encode(np.array([message]))
    errors = data.draw(st.integers(0, code.t))
    positions = data.draw(
        st.lists(st.integers(0, code.n - 1), min_size=errors, max_size=errors, unique=True)
    )
    values = data.draw(st.lists(st.integers(1, 255), min_size=errors, max_size=errors))
    word[0, positions] ^= np.array(values, dtype=np.int64)
    decoded, ok, corrected = code.decode(word)
    assert ok[0] and corrected[0] == errors
    assert decoded[0].tolist() == message


@FAST
@given(
    symbols=st.lists(st.integers(0, 255), min_size=1, max_size=8),
    data=st.data(),
)
def test_rm_hard_bits_decode_with_up_to_31_flips_per_block(
    symbols: list[int], data: st.DataObject
) -> None:
    # RM(1,7) has minimum distance 64: any 31 flips per 128-bit block, wherever an
    # adversary puts them, still decode to the sent byte (ML on ±1 is nearest codeword).
    bits = rm_encode(np.array(symbols))
    for block in range(len(symbols)):
        flips = data.draw(
            st.lists(st.integers(0, BLOCK_BITS - 1), max_size=31, unique=True), label="flips"
        )
        bits[block * BLOCK_BITS + np.array(flips, dtype=np.int64)] ^= 1
    decoded, margin = rm_decode_soft(1.0 - 2.0 * bits.astype(np.float64))
    assert decoded.tolist() == symbols
    assert ((margin > 0) & (margin <= 1)).all()


@given(
    params=st.builds(
        TemplateParams,
        blocks=st.integers(2, 64),
        message_symbols=st.integers(1, 16),
        frequency=st.floats(0.1, 10, allow_nan=False),
        oversample=st.integers(1, 4),
        quantizer=st.sampled_from(["sin", "sign"]),
        soft=st.booleans(),
        second_factor=st.booleans(),
    )
)
def test_params_string_round_trips(params: TemplateParams) -> None:
    assert TemplateParams.decode(params.encode()) == params


@given(text=st.text(max_size=60))
def test_params_parser_refuses_garbage_with_value_error(text: str) -> None:
    try:
        parsed = TemplateParams.decode(text)
    except ValueError:
        return
    assert TemplateParams.decode(parsed.encode()) == parsed


def _face(seed: int) -> np.ndarray:
    # The scale of a dlib embedding's coordinates (norm about 1 over 128 dimensions).
    return np.random.default_rng(seed).normal(0.0, 0.09, 128)


@pytest.fixture(scope="module")
def enrolled() -> tuple[ProtectedTemplate, bytes, np.ndarray]:
    face = _face(7)
    template, kappa = enroll(face[None, :], pepper=PEPPER, bind=b"pat_alice")
    return template, kappa, face


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_small_noise_opens_and_another_face_does_not(
    enrolled: tuple[ProtectedTemplate, bytes, np.ndarray], seed: int
) -> None:
    template, kappa, face = enrolled
    noise = np.random.default_rng(seed).normal(0.0, 0.005, 128)
    assert recover_secret(template, face + noise, pepper=PEPPER, bind=b"pat_alice") == kappa
    assume(seed != 7)
    assert recover_secret(template, _face(seed), pepper=PEPPER, bind=b"pat_alice") is None


FIELDS = ("salt", "helper_nonce", "helper_ciphertext")


@FAST
@given(field=st.sampled_from(FIELDS), data=st.data())
def test_any_tampered_byte_of_the_helper_data_is_template_corrupt(
    enrolled: tuple[ProtectedTemplate, bytes, np.ndarray], field: str, data: st.DataObject
) -> None:
    template, _, _ = enrolled
    value = bytearray(getattr(template, field))
    index = data.draw(st.integers(0, len(value) - 1))
    value[index] ^= data.draw(st.integers(1, 255))
    changes: dict[str, Any] = {field: bytes(value)}
    tampered = dataclasses.replace(template, **changes)
    with pytest.raises(TemplateCorrupt):
        open_template(tampered, pepper=PEPPER, bind=b"pat_alice")


@FAST
@given(field=st.sampled_from(FIELDS), data=st.data())
def test_truncated_or_extended_helper_data_is_template_corrupt(
    enrolled: tuple[ProtectedTemplate, bytes, np.ndarray], field: str, data: st.DataObject
) -> None:
    template, _, _ = enrolled
    value = getattr(template, field)
    cut = data.draw(st.integers(0, len(value) - 1))
    for changed in (value[:cut], value + data.draw(st.binary(min_size=1, max_size=16))):
        tampered = dataclasses.replace(template, **{field: changed})
        with pytest.raises(TemplateCorrupt):
            open_template(tampered, pepper=PEPPER, bind=b"pat_alice")


@FAST
@given(bind=st.binary(max_size=40))
def test_template_is_bound_to_its_handle(
    enrolled: tuple[ProtectedTemplate, bytes, np.ndarray], bind: bytes
) -> None:
    template, _, _ = enrolled
    assume(bind != b"pat_alice")
    with pytest.raises(TemplateCorrupt):
        open_template(template, pepper=PEPPER, bind=bind)


@FAST
@given(data=st.data())
def test_tampered_commitment_never_releases_kappa(
    enrolled: tuple[ProtectedTemplate, bytes, np.ndarray], data: st.DataObject
) -> None:
    # The commitment is not under the AEAD: altering it must make the genuine face fail
    # (denial), never yield a κ.
    template, _, face = enrolled
    value = bytearray(template.commitment)
    value[data.draw(st.integers(0, len(value) - 1))] ^= data.draw(st.integers(1, 255))
    tampered = dataclasses.replace(template, commitment=bytes(value))
    assert recover_secret(tampered, face, pepper=PEPPER, bind=b"pat_alice") is None


@given(scheme=st.text(max_size=30))
def test_unknown_scheme_is_template_corrupt(
    enrolled: tuple[ProtectedTemplate, bytes, np.ndarray], scheme: str
) -> None:
    template, _, _ = enrolled
    assume(scheme != template.scheme)
    with pytest.raises(TemplateCorrupt):
        open_template(dataclasses.replace(template, scheme=scheme), pepper=PEPPER, bind=b"x")
