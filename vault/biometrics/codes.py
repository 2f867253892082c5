"""The error-correcting code of the fuzzy commitment: Reed-Solomon over RM(1,7).

* Inner code: first-order Reed-Muller RM(1,7) — one byte in 128 bits, minimum distance 64.
  Its maximum-likelihood *soft* decoder is a fast Hadamard transform (the codewords are
  the rows of a Hadamard matrix and their negations), so the probe's real-valued
  projections are used as they are, not rounded to bits first.
* Outer code: Reed-Solomon RS(n, k) over GF(2^8) (primitive polynomial 0x11d, first
  consecutive root alpha^1, systematic, shortened from 255) — the same code as
  ``galois.ReedSolomon(255, 255 - (n - k))`` shortened to n symbols, which the tests use
  as the reference encoder. Each inner block carries one RS symbol; RS corrects up to
  ``(n - k) // 2`` wrongly decoded blocks.

The decoders are vectorised over many words at once: verification decodes one word in
well under a millisecond, and the benchmark decodes hundreds of thousands. galois's own
RS decoder was measured at several milliseconds per word (plus seconds of JIT on first
use), too slow for the benchmark's 10^5-10^6 impostor attempts, hence this one.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

PRIMITIVE_POLY = 0x11D
RM_ORDER = 7
BLOCK_BITS = 1 << RM_ORDER  # 128 bits of RM(1,7) per byte


def _gf_tables() -> tuple[IntArray, IntArray]:
    exp = np.zeros(512, dtype=np.int64)
    log = np.zeros(256, dtype=np.int64)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= PRIMITIVE_POLY
    exp[255:510] = exp[:255]
    return exp, log


EXP, LOG = _gf_tables()


def gf_mul(a: IntArray, b: IntArray) -> IntArray:
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    out = EXP[(LOG[a] + LOG[b]) % 255]
    return np.where((a == 0) | (b == 0), 0, out)


def gf_div(a: IntArray, b: IntArray) -> IntArray:
    """a / b; callers guarantee b != 0 where the result is used."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    out = EXP[(LOG[a] - LOG[np.where(b == 0, 1, b)]) % 255]
    return np.where(a == 0, 0, out)


@cache
def _generator(nsym: int) -> tuple[int, ...]:
    """g(x) = prod_{i=1..nsym} (x - alpha^i), highest degree first."""
    g = np.array([1], dtype=np.int64)
    for i in range(1, nsym + 1):
        root = int(EXP[i])
        shifted = np.concatenate([g, [0]])
        scaled = np.concatenate([[0], gf_mul(g, np.full_like(g, root))])
        g = shifted ^ scaled
    return tuple(int(v) for v in g)


class ReedSolomon:
    """Systematic RS(n, k) over GF(2^8): ``encode`` bytes, ``decode`` many words at once."""

    def __init__(self, n: int, k: int) -> None:
        if not 0 < k < n <= 255 or (n - k) % 2:
            raise ValueError("need 0 < k < n <= 255 and an even number of parity symbols")
        self.n, self.k, self.nsym = n, k, n - k
        self.t = self.nsym // 2
        self._gen = np.array(_generator(self.nsym), dtype=np.int64)
        powers = np.arange(n - 1, -1, -1, dtype=np.int64)  # position j holds x^(n-1-j)
        self._powers = powers
        roots = np.arange(1, self.nsym + 1, dtype=np.int64)
        self._syndrome_exp = (roots[:, None] * powers[None, :]) % 255  # (nsym, n)

    def encode(self, message: IntArray) -> IntArray:
        """Message symbols (…, k) -> codeword (…, n): message first, then parity."""
        msg = np.atleast_2d(np.asarray(message, dtype=np.int64))
        remainder = np.zeros((msg.shape[0], self.nsym), dtype=np.int64)
        for j in range(self.k):
            feedback = msg[:, j] ^ remainder[:, 0]
            remainder = np.concatenate(
                [remainder[:, 1:], np.zeros((msg.shape[0], 1), dtype=np.int64)], axis=1
            )
            remainder ^= gf_mul(feedback[:, None], self._gen[None, 1:])
        out = np.concatenate([msg, remainder], axis=1)
        return out.reshape(*np.shape(message)[:-1], self.n)

    def syndromes(self, words: IntArray) -> IntArray:
        w = np.asarray(words, dtype=np.int64)
        logs = LOG[w][:, None, :] + self._syndrome_exp[None, :, :]
        terms = np.where(w[:, None, :] == 0, 0, EXP[logs % 255])
        out: IntArray = np.bitwise_xor.reduce(terms, axis=2)
        return out

    def decode(self, words: IntArray) -> tuple[IntArray, NDArray[np.bool_], IntArray]:
        """Correct up to ``t`` symbol errors in each row of ``words`` (W, n).

        Returns ``(messages (W, k), ok (W,), errors_corrected (W,))``; rows with
        ``ok == False`` were not decodable and their message is meaningless.
        """
        r = np.atleast_2d(np.asarray(words, dtype=np.int64))
        synd = self.syndromes(r)
        lam, degree = self._berlekamp_massey(synd)
        # Chien search: an error at power p iff Lambda(alpha^-p) == 0.
        inv = (-self._powers) % 255  # (n,)
        width = lam.shape[1]
        terms = np.where(
            lam[:, :, None] == 0,
            0,
            EXP[
                (LOG[lam][:, :, None] + np.arange(width)[None, :, None] * inv[None, None, :]) % 255
            ],
        )
        values = np.bitwise_xor.reduce(terms, axis=1)  # (W, n)
        is_root = values == 0
        ok = (is_root.sum(axis=1) == degree) & (degree <= self.t)
        # Forney: Y = Omega(X^-1) / Lambda'(X^-1), Omega = S(x) Lambda(x) mod x^nsym.
        i_idx = np.arange(self.nsym)[:, None]
        j_idx = np.arange(width)[None, :]
        valid = j_idx <= i_idx  # (nsym, width): S[i - j] * Lambda[j]
        terms_o = gf_mul(synd[:, np.clip(i_idx - j_idx, 0, None)], lam[:, None, :])
        omega = np.bitwise_xor.reduce(np.where(valid[None], terms_o, 0), axis=2)
        omega_at = self._poly_eval(omega, inv)
        deriv = np.zeros_like(lam)
        deriv[:, :-1] = np.where((np.arange(1, width) % 2 == 1)[None, :], lam[:, 1:], 0)
        deriv_at = self._poly_eval(deriv, inv)
        ok &= ~(is_root & (deriv_at == 0)).any(axis=1)
        magnitude = np.where(is_root, gf_div(omega_at, deriv_at), 0)
        corrected = r ^ magnitude
        ok &= ~self.syndromes(corrected).any(axis=1)
        return corrected[:, : self.k], ok, np.where(ok, degree, -1)

    @staticmethod
    def _poly_eval(poly: IntArray, inv_powers: IntArray) -> IntArray:
        """Evaluate sum_j poly[:, j] x^j at x = alpha^inv for every position."""
        width = poly.shape[1]
        exps = (np.arange(width)[None, :, None] * inv_powers[None, None, :]) % 255
        terms = np.where(poly[:, :, None] == 0, 0, EXP[(LOG[poly][:, :, None] + exps) % 255])
        out: IntArray = np.bitwise_xor.reduce(terms, axis=1)
        return out

    def _berlekamp_massey(self, synd: IntArray) -> tuple[IntArray, IntArray]:
        count, nsym = synd.shape
        width = nsym + 1
        lam = np.zeros((count, width), dtype=np.int64)
        lam[:, 0] = 1
        prev = lam.copy()
        length = np.zeros(count, dtype=np.int64)
        shift = np.ones(count, dtype=np.int64)
        last = np.ones(count, dtype=np.int64)
        cols = np.arange(width)[None, :]
        for n in range(nsym):
            d = synd[:, n].copy()
            if n:
                d ^= np.bitwise_xor.reduce(
                    gf_mul(lam[:, 1 : n + 1], synd[:, n - 1 :: -1][:, :n]), axis=1
                )
            nonzero = d != 0
            coef = gf_div(d, last)
            src = cols - shift[:, None]
            shifted = np.where(src >= 0, np.take_along_axis(prev, np.clip(src, 0, None), 1), 0)
            candidate = lam ^ gf_mul(coef[:, None], shifted)
            grow = nonzero & (2 * length <= n)
            old = lam
            lam = np.where(nonzero[:, None], candidate, lam)
            prev = np.where(grow[:, None], old, prev)
            length = np.where(grow, n + 1 - length, length)
            last = np.where(grow, d, last)
            shift = np.where(grow, 1, shift + 1)
        return lam, length


@cache
def hadamard(order: int = RM_ORDER) -> FloatArray:
    """Sylvester Hadamard matrix H[a, i] = (-1)^popcount(a & i)."""
    h = np.array([[1.0]])
    for _ in range(order):
        h = np.block([[h, h], [h, -h]])
    h.setflags(write=False)
    return h


def rm_encode(symbols: IntArray) -> NDArray[np.uint8]:
    """Bytes (…, B) -> RM(1,7) bits (…, B*128). Byte = sign bit (0x80) | 7-bit row index."""
    sym = np.asarray(symbols, dtype=np.int64)
    h = hadamard()
    rows = h[sym & 0x7F]  # ±1
    signs = np.where(sym & 0x80, -1.0, 1.0)[..., None]
    bits = (rows * signs < 0).astype(np.uint8)
    out: NDArray[np.uint8] = bits.reshape(*sym.shape[:-1], sym.shape[-1] * BLOCK_BITS)
    return out


def rm_decode_soft(soft: FloatArray) -> tuple[IntArray, FloatArray]:
    """Maximum-likelihood soft decoding of RM(1,7) blocks.

    ``soft`` (…, B*128): positive means "bit 0" with confidence |value|. Returns the
    decoded bytes (…, B) and each block's margin (best minus runner-up correlation,
    relative to the block's energy), a reliability in [0, 1].
    """
    s = np.asarray(soft, dtype=np.float64)
    blocks = s.reshape(*s.shape[:-1], -1, BLOCK_BITS)
    corr = blocks @ hadamard().T  # (…, B, 128) correlation with each row
    mag = np.abs(corr)
    best = np.argmax(mag, axis=-1)
    top = np.take_along_axis(corr, best[..., None], -1)[..., 0]
    symbols = best | np.where(top < 0, 0x80, 0)
    part = np.partition(mag, -2, axis=-1)
    energy = np.sqrt(BLOCK_BITS * np.sum(blocks**2, axis=-1)) + 1e-12
    margin = (part[..., -1] - part[..., -2]) / energy
    return symbols.astype(np.int64), margin
