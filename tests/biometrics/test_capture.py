"""Capture: accepted formats and modes, EXIF orientation, and every refusal code."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from vault.biometrics.capture import CaptureLimits, decode_photo
from vault.biometrics.embedding import DetectorConfig, FaceEncoder
from vault.errors import VaultError

SMALL = "obama_small.jpg"


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _code(call: Callable[[], object]) -> str:
    with pytest.raises(VaultError) as info:
        call()
    return info.value.code


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def test_not_an_image(encoder: FaceEncoder) -> None:
    assert _code(lambda: encoder.encode(b"%PDF-1.7 definitely not a photo")) == "invalid_image"
    assert _code(lambda: encoder.encode(b"")) == "invalid_image"


def test_other_image_formats_are_refused(
    encoder: FaceEncoder, photo: Callable[[str], bytes]
) -> None:
    gif = _encode(Image.open(io.BytesIO(photo(SMALL))), "GIF")
    assert _code(lambda: encoder.encode(gif)) == "invalid_image"


def test_truncated_file(encoder: FaceEncoder, photo: Callable[[str], bytes]) -> None:
    data = photo(SMALL)
    assert _code(lambda: encoder.encode(data[: len(data) // 2])) == "invalid_image"


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = _encode(Image.new("L", (9000, 9000)), "PNG")  # 81 Mpx in a few hundred kB
    assert len(bomb) < 1_000_000
    assert _code(lambda: decode_photo(bomb, CaptureLimits(max_pixels=40_000_000))) == (
        "image_too_large"
    )


def test_too_many_bytes(photo: Callable[[str], bytes]) -> None:
    assert _code(lambda: decode_photo(photo(SMALL), CaptureLimits(max_bytes=1000))) == (
        "image_too_large"
    )


def test_no_face(encoder: FaceEncoder) -> None:
    blank = _encode(Image.new("RGB", (300, 300), (120, 160, 200)), "JPEG")
    assert _code(lambda: encoder.encode(blank)) == "no_face"


def test_multiple_faces(encoder: FaceEncoder, photo: Callable[[str], bytes]) -> None:
    assert _code(lambda: encoder.encode(photo("two_people.jpg"))) == "multiple_faces"


def test_face_too_small(photo: Callable[[str], bytes]) -> None:
    strict = FaceEncoder(DetectorConfig(min_face_size=200))
    with pytest.raises(VaultError) as info:
        strict.encode(photo(SMALL))
    assert info.value.code == "face_too_small"
    assert info.value.details["face_pixels"] < 200


@pytest.mark.parametrize(
    "orientation, rotate",
    [
        (6, Image.Transpose.ROTATE_90),
        (8, Image.Transpose.ROTATE_270),
        (3, Image.Transpose.ROTATE_180),
    ],
)
def test_exif_orientation_is_honoured(
    encoder: FaceEncoder,
    photo: Callable[[str], bytes],
    embed: Callable[[str], np.ndarray],
    orientation: int,
    rotate: Image.Transpose,
) -> None:
    upright = Image.open(io.BytesIO(photo(SMALL)))
    stored = upright.transpose(rotate)  # what a camera writes, with a tag saying how to fix it
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(stored, "JPEG", exif=exif, quality=95)
    decoded = decode_photo(data)
    assert (decoded.width, decoded.height) == upright.size
    assert _distance(encoder.encode(data).vector, embed(SMALL)) < 0.2


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "CMYK"])
def test_modes(
    encoder: FaceEncoder,
    photo: Callable[[str], bytes],
    embed: Callable[[str], np.ndarray],
    mode: str,
) -> None:
    base = Image.open(io.BytesIO(photo(SMALL))).convert("RGB")
    if mode == "I;16":
        gray = np.asarray(base.convert("L"), dtype=np.uint16) * 257
        image = Image.fromarray(gray)  # uint16 -> mode "I;16"
    else:
        image = base.convert(mode)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    decoded = decode_photo(_encode(image, fmt))
    assert decoded.pixels.dtype == np.uint8 and decoded.pixels.shape[2] == 3
    if mode == "I;16":  # scaled, not clipped to white
        assert 60 < decoded.pixels.mean() < 200
    assert _distance(encoder.encode(_encode(image, fmt)).vector, embed(SMALL)) < 0.35


def test_webp_and_png_rgba(
    encoder: FaceEncoder, photo: Callable[[str], bytes], embed: Callable[[str], np.ndarray]
) -> None:
    webp = _encode(Image.open(io.BytesIO(photo(SMALL))), "WEBP", quality=90)
    assert _distance(encoder.encode(webp).vector, embed(SMALL)) < 0.2
    rgba = encoder.encode(photo("32bit.png"))  # a real 32-bit PNG
    assert _distance(rgba.vector, embed("people/obama/obama2.jpg")) < 0.2


def test_large_photo_is_downscaled_before_detection(
    encoder: FaceEncoder, photo: Callable[[str], bytes]
) -> None:
    big, small = photo("obama-1080p.jpg"), photo(SMALL)
    encoder.encode(small)

    def best(data: bytes) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            encoder.encode(data)
            times.append(time.perf_counter() - start)
        return min(times)

    face = encoder.encode(big)
    assert face.box.side > 200  # reported in the original photo's pixels
    # 27x the pixels of the small photo, yet only a few times its cost.
    assert best(big) < 6 * best(small) + 0.1


def test_embedding_never_prints_its_values(
    encoder: FaceEncoder, photo: Callable[[str], bytes]
) -> None:
    face = encoder.encode(photo(SMALL))
    text = repr(face) + str(face)
    assert "hidden" in text
    assert f"{face.vector[0]:.4f}"[:6] not in text
