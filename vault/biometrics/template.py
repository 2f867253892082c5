"""The protected template: a fuzzy commitment of a random secret κ to a face.

Enrollment (1-5 photos):
  1. draw a random 16-byte salt and κ (``params.secret_bits`` bits, OS CSPRNG);
  2. build the enrollment's keyed transform: Gaussian rows from AES under
     HKDF(pepper, salt) (unlinkable without the pepper, fresh at every enrollment);
  3. compute soft bits of every enrollment photo (``quantizer``), average them, keep the
     ``params.bits`` most reliable of ``params.oversample`` times as many candidate rows
     (reliable-bit selection), in random order; their signs are the face's bits ``b``;
  4. codeword ``c`` = RM(1,7)-per-byte of RS(blocks, k)(κ); helper offset ``b XOR c``;
  5. store: salt, HMAC(pepper-derived key, salt || κ), and the helper data (selected rows,
     offset, and the number of enrollment photos, which picks the operating threshold)
     sealed with AES-256-GCM under a pepper-derived key, bound to the patient handle and
     salt. No embedding, no bit string of the face, is stored in the clear.

Verification: the probe's soft bits on the selected rows, flipped by the offset, are soft
evidence for ``c``; each 128-bit block is ML-decoded (Hadamard transform), RS corrects
wrongly decoded blocks, and the candidate κ must match the commitment.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from numpy.typing import NDArray

from vault.biometrics import keys
from vault.biometrics.codes import BLOCK_BITS, ReedSolomon, rm_decode_soft, rm_encode
from vault.biometrics.population import Population
from vault.biometrics.quantizer import KeyedProjection
from vault.errors import EnrollmentRejected, TemplateCorrupt

FloatArray = NDArray[np.float64]
SCHEME = "fc-sinlsh-rm7-rs/v1"
SALT_BYTES = 16
_AAD = b"vault/biometrics/helper/v1|"


@dataclass(frozen=True, slots=True)
class TemplateParams:
    """Code and quantizer parameters (the shipped defaults are justified in the docs)."""

    blocks: int = 64  # RS code length n: one RM(1,7) block (128 bits) per RS symbol
    message_symbols: int = 8  # RS dimension k: κ has 8k bits
    frequency: float = 1.75  # ω of sin(ω w·z / sigma_w)
    oversample: int = 2  # candidate projections per kept bit (reliable-bit selection)
    quantizer: str = "sin"  # "sin" (shipped) or "sign" (SimHash, for comparison)
    soft: bool = True  # soft-decision decoding (False: the probe's bits are rounded first)
    second_factor: bool = False  # the transform is keyed by a PIN as well (keys.second_factor)

    @property
    def bits(self) -> int:
        return self.blocks * BLOCK_BITS

    @property
    def secret_bits(self) -> int:
        return 8 * self.message_symbols

    @property
    def candidates(self) -> int:
        return self.bits * self.oversample

    def encode(self) -> str:
        fields = [
            str(self.blocks),
            str(self.message_symbols),
            repr(self.frequency),
            str(self.oversample),
            self.quantizer,
            "soft" if self.soft else "hard",
        ]
        return ":".join(fields + (["pin"] if self.second_factor else []))

    @classmethod
    def decode(cls, text: str) -> TemplateParams:
        fields = text.split(":")
        pin = len(fields) == 7 and fields[6] == "pin"
        if pin:
            fields = fields[:6]
        blocks, symbols, frequency, oversample, quantizer, soft = fields
        if quantizer not in ("sin", "sign") or soft not in ("soft", "hard"):
            raise ValueError("unknown template parameters")
        return cls(
            int(blocks),
            int(symbols),
            float(frequency),
            int(oversample),
            quantizer,
            soft == "soft",
            second_factor=pin,
        )


@dataclass(frozen=True, slots=True, repr=False)
class ProtectedTemplate:
    """What is stored for one enrollment. Contains no embedding and no face bits."""

    scheme: str
    params: TemplateParams
    salt: bytes
    commitment: bytes
    helper_nonce: bytes
    helper_ciphertext: bytes

    def __repr__(self) -> str:
        return f"ProtectedTemplate({self.scheme}, {self.params.encode()})"


@dataclass(slots=True)
class OpenedTemplate:
    """A template with its helper data decrypted: memory only, for one verification run."""

    template: ProtectedTemplate
    projection: KeyedProjection
    offset: NDArray[np.uint8]
    commitment_key: bytes
    code: ReedSolomon = field(repr=False)
    rows: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    #: Enrollment photos (1-5); None for a template sealed before the count was kept.
    photos: int | None = None

    def recover(self, embeddings: FloatArray) -> tuple[list[bytes | None], FloatArray]:
        """Try each probe embedding (P, 128); return κ per probe (or None) and a score.

        The score (agreement of the probe's soft bits with the enrolled bits, known only
        once κ opened) is ``-inf`` for probes that did not open the template; it lets the
        benchmark draw the protected DET curve below the code's own operating point.
        """
        soft = self.projection.soft(np.atleast_2d(embeddings))
        if not self.template.params.soft:
            soft = np.where(soft < 0, -1.0, 1.0)
        signed = soft * (1.0 - 2.0 * self.offset.astype(np.float64))[None, :]
        symbols, _margin = rm_decode_soft(signed)
        messages, ok, _errors = self.code.decode(symbols)
        result: list[bytes | None] = [None] * len(soft)
        scores = np.full(len(soft), -np.inf)
        salt = self.template.salt
        for i in np.flatnonzero(ok):
            kappa = bytes(int(v) for v in messages[i])
            if not keys.commitment_matches(
                self.commitment_key, salt, kappa, self.template.commitment
            ):
                continue
            codeword = rm_encode(self.code.encode(messages[i]))
            enrolled = (self.offset ^ codeword).astype(np.float64)
            scores[i] = float(np.mean(soft[i] * (1.0 - 2.0 * enrolled)))
            result[i] = kappa
        return result, scores


def _aad(bind: bytes, salt: bytes) -> bytes:
    return _AAD + SCHEME.encode() + b"|" + salt + b"|" + bind


def enroll(
    embeddings: FloatArray,
    *,
    pepper: bytes,
    bind: bytes,
    params: TemplateParams | None = None,
    salt: bytes | None = None,
    population: Population | None = None,
    factor: bytes | None = None,
) -> tuple[ProtectedTemplate, bytes]:
    """Protect 1..5 embeddings (rows) of one face; return the template and κ.

    ``bind`` (the patient handle) is authenticated with the helper data, so a template
    copied to another handle does not open. Raises :class:`EnrollmentRejected` for a
    wrong number of photos. ``salt`` is for tests only (a reused salt reuses the keyed
    transform, which is exactly what makes enrollments linkable) and for a second factor,
    which is derived from the salt. ``population`` is for benchmarks that fit their own
    statistics (the shipped ones otherwise). ``factor``: :func:`keys.second_factor` of
    the patient's PIN under ``salt``; the template then opens only with it.
    """
    params = dataclasses.replace(params or TemplateParams(), second_factor=factor is not None)
    emb = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
    if not 1 <= len(emb) <= 5:
        raise EnrollmentRejected("enroll with 1 to 5 photos", details={"photos": len(emb)})
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    kappa = secrets.token_bytes(params.message_symbols)
    transform_key = keys.transform_key(pepper, salt, factor)

    candidates = np.arange(params.candidates, dtype=np.int64)
    projection = KeyedProjection.build(
        transform_key, candidates, params.frequency, params.quantizer, population
    )
    soft = projection.soft(emb).mean(axis=0)
    # Reliable-bit selection: keep the rows whose averaged soft bit is most decisive,
    # then shuffle them so block membership says nothing about reliability rank.
    keep = np.argsort(-np.abs(soft), kind="stable")[: params.bits]
    order_seed = keys.hkdf(transform_key, info=b"vault/biometrics/row-order/v1")
    order = np.random.default_rng(int.from_bytes(order_seed, "big")).permutation(len(keep))
    rows = np.sort(keep)[order]
    bits = (soft[rows] < 0).astype(np.uint8)

    code = ReedSolomon(params.blocks, params.message_symbols)
    codeword = rm_encode(code.encode(np.frombuffer(kappa, dtype=np.uint8).astype(np.int64)))
    offset = bits ^ codeword
    helper = rows.astype("<u2").tobytes() + np.packbits(offset).tobytes() + bytes([len(emb)])
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(keys.helper_key(pepper)).encrypt(nonce, helper, _aad(bind, salt))
    template = ProtectedTemplate(
        scheme=SCHEME,
        params=params,
        salt=salt,
        commitment=keys.commit_secret(keys.commitment_key(pepper), salt, kappa),
        helper_nonce=nonce,
        helper_ciphertext=sealed,
    )
    return template, kappa


def open_template(
    template: ProtectedTemplate,
    *,
    pepper: bytes,
    bind: bytes,
    population: Population | None = None,
    factor: bytes | None = None,
) -> OpenedTemplate:
    """Decrypt and authenticate the helper data; raises :class:`TemplateCorrupt`.

    ``factor`` (the PIN's :func:`keys.second_factor`) is needed by a template enrolled
    with one; a wrong or missing one builds another transform, so no face opens it.
    """
    params = template.params
    if template.scheme != SCHEME:
        raise TemplateCorrupt("unknown template scheme")
    try:
        helper = AESGCM(keys.helper_key(pepper)).decrypt(
            template.helper_nonce, template.helper_ciphertext, _aad(bind, template.salt)
        )
    except (InvalidTag, ValueError) as exc:  # ValueError: a nonce of a length GCM refuses
        raise TemplateCorrupt("template helper data failed authentication") from exc
    row_bytes = 2 * params.bits
    offset_end = row_bytes + params.bits // 8
    rows = np.frombuffer(helper[:row_bytes], dtype="<u2").astype(np.int64)
    offset = np.unpackbits(np.frombuffer(helper[row_bytes:offset_end], dtype=np.uint8))
    # Templates sealed before the photo count was kept end at the offset.
    photos = helper[offset_end] if len(helper) > offset_end else None
    projection = KeyedProjection.build(
        keys.transform_key(pepper, template.salt, factor if params.second_factor else None),
        rows,
        params.frequency,
        params.quantizer,
        population,
    )
    return OpenedTemplate(
        template=template,
        projection=projection,
        offset=offset,
        commitment_key=keys.commitment_key(pepper),
        code=ReedSolomon(params.blocks, params.message_symbols),
        rows=rows,
        photos=photos,
    )


def recover_secret(
    template: ProtectedTemplate, embedding: FloatArray, *, pepper: bytes, bind: bytes
) -> bytes | None:
    """κ if ``embedding`` opens ``template``, else None (1:1 decision)."""
    kappas, _ = open_template(template, pepper=pepper, bind=bind).recover(embedding)
    return kappas[0]
