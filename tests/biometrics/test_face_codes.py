"""The code of the fuzzy commitment: RS over GF(2^8) against galois, RM(1,7) soft decoding."""

from __future__ import annotations

import galois
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.biometrics.codes import ReedSolomon, rm_decode_soft, rm_encode


def test_rs_encoder_matches_galois_shortened_code() -> None:
    rng = np.random.default_rng(0)
    messages = rng.integers(0, 256, (20, 8))
    reference = galois.ReedSolomon(255, 255 - 24)  # shortened to 32 symbols by 8-symbol messages
    expected = np.array(reference.encode(reference.field(messages)))
    assert (ReedSolomon(32, 8).encode(messages) == expected).all()


@settings(max_examples=40, deadline=None)
@given(
    message=st.lists(st.integers(0, 255), min_size=8, max_size=8),
    errors=st.integers(0, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_rs_corrects_up_to_t_errors(message: list[int], errors: int, seed: int) -> None:
    code = ReedSolomon(32, 8)  # t = 12
    rng = np.random.default_rng(seed)
    word = code.encode(np.array([message]))
    positions = rng.choice(32, errors, replace=False)
    word[0, positions] ^= rng.integers(1, 256, errors)
    decoded, ok, corrected = code.decode(word)
    assert ok[0] and corrected[0] == errors
    assert decoded[0].tolist() == message


def test_rs_refuses_beyond_t() -> None:
    code = ReedSolomon(16, 8)
    rng = np.random.default_rng(1)
    messages = rng.integers(0, 256, (500, 8))
    words = code.encode(messages)
    for row in words:
        positions = rng.choice(16, 5, replace=False)
        row[positions] ^= rng.integers(1, 256, 5)
    decoded, ok, _ = code.decode(words)
    assert not (ok & (decoded == messages).all(axis=1)).any()


def test_rm_soft_decoding_is_maximum_likelihood_under_noise() -> None:
    rng = np.random.default_rng(2)
    symbols = rng.integers(0, 256, (200, 4))
    bits = rm_encode(symbols)
    assert bits.shape == (200, 4 * 128)
    noisy = (1.0 - 2.0 * bits) + rng.normal(0.0, 1.5, bits.shape)  # per-bit error rate ~25 %
    decoded, margin = rm_decode_soft(noisy)
    assert (decoded == symbols).mean() > 0.99
    assert ((margin >= 0) & (margin <= 1)).all()
