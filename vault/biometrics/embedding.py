"""Face detection and the 128-d face_recognition (dlib) embedding, in memory only.

The embedding is as sensitive as the face itself: :class:`FaceEmbedding` never shows
its values in ``repr``/``str`` (so a stray log line cannot leak it), and nothing in
this module writes it anywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile

from vault.biometrics.capture import CaptureLimits, DecodedPhoto, decode_photo
from vault.errors import FaceTooSmall, MultipleFaces, NoFace

FacePolicy = Literal["single", "central"]


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """How faces are found. ``single`` refuses photos with two usable faces; ``central``
    (benchmarks on LFW, whose photos are centred crops with bystanders) takes the face
    nearest the centre."""

    detect_max_side: int = 640
    min_face_size: int = 40
    model: str = "hog"
    upsample: int = 1
    policy: FacePolicy = "single"


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face's bounding box in the upright photo's pixel coordinates."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def side(self) -> int:
        return min(self.bottom - self.top, self.right - self.left)


@dataclass(frozen=True, slots=True, repr=False)
class FaceEmbedding:
    """A 128-d face embedding. Raw biometric: memory only, never printed."""

    vector: NDArray[np.float64]
    box: FaceBox
    faces_found: int
    seconds: float = field(default=0.0, compare=False)

    def __repr__(self) -> str:
        return f"FaceEmbedding(<{self.vector.shape[0]} values hidden>, box={self.box!r})"

    __str__ = __repr__


class FaceEncoder:
    """Photo bytes -> :class:`FaceEmbedding` (HOG detector + dlib ResNet by default).

    Raises the capture errors of :func:`decode_photo` plus :class:`NoFace`,
    :class:`MultipleFaces` and :class:`FaceTooSmall`.
    """

    def __init__(
        self,
        detector: DetectorConfig | None = None,
        limits: CaptureLimits | None = None,
    ) -> None:
        import face_recognition  # heavy (loads dlib models): only when an encoder is built

        # face_recognition switches Pillow to accepting truncated files at import; the
        # vault refuses them (a half-received photo is an error, not a face).
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        self._fr: Any = face_recognition
        self.detector = detector or DetectorConfig()
        self.limits = limits or CaptureLimits()

    def encode(self, photo: bytes) -> FaceEmbedding:
        started = time.perf_counter()
        decoded = decode_photo(photo, self.limits)
        return self.encode_decoded(decoded, started=started)

    def encode_decoded(
        self, decoded: DecodedPhoto, *, started: float | None = None
    ) -> FaceEmbedding:
        started = time.perf_counter() if started is None else started
        cfg = self.detector
        pixels, scale = _downscale(decoded.pixels, cfg.detect_max_side)
        locations: list[tuple[int, int, int, int]] = self._fr.face_locations(
            pixels, number_of_times_to_upsample=cfg.upsample, model=cfg.model
        )
        if not locations:
            raise NoFace("no face found in the photo")
        boxes = [_to_box(loc, scale) for loc in locations]
        usable = [i for i, box in enumerate(boxes) if box.side >= cfg.min_face_size]
        if cfg.policy == "central":
            height, width = pixels.shape[:2]
            chosen = min(
                range(len(locations)), key=lambda i: _off_centre(locations[i], width, height)
            )
        else:
            if len(usable) > 1:
                raise MultipleFaces(
                    "more than one face in the photo", details={"faces": len(usable)}
                )
            chosen = usable[0] if usable else max(range(len(boxes)), key=lambda i: boxes[i].side)
        box = boxes[chosen]
        if box.side < cfg.min_face_size:
            raise FaceTooSmall(
                "the face is too small to be measured reliably",
                details={"face_pixels": box.side, "min_face_pixels": cfg.min_face_size},
            )
        encodings = self._fr.face_encodings(pixels, known_face_locations=[locations[chosen]])
        if not encodings:  # pragma: no cover - dlib returns one encoding per location
            raise NoFace("no face could be measured in the photo")
        vector = np.asarray(encodings[0], dtype=np.float64)
        return FaceEmbedding(
            vector=vector,
            box=box,
            faces_found=len(locations),
            seconds=time.perf_counter() - started,
        )


def _downscale(pixels: NDArray[np.uint8], max_side: int) -> tuple[NDArray[np.uint8], float]:
    """Shrink so the long side is at most ``max_side``: HOG cost grows with pixel count."""
    height, width = pixels.shape[:2]
    long_side = max(height, width)
    if long_side <= max_side:
        return pixels, 1.0
    scale = max_side / long_side
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.ascontiguousarray(np.asarray(small, dtype=np.uint8)), scale


def _to_box(location: tuple[int, int, int, int], scale: float) -> FaceBox:
    top, right, bottom, left = (round(v / scale) for v in location)
    return FaceBox(top=top, right=right, bottom=bottom, left=left)


def _off_centre(location: tuple[int, int, int, int], width: int, height: int) -> float:
    top, right, bottom, left = location
    return float(((top + bottom) / 2 - height / 2) ** 2 + ((left + right) / 2 - width / 2) ** 2)
