"""Photo bytes -> one upright 8-bit RGB face image, or a clear refusal.

Guarantees: only JPEG, PNG and WebP are decoded; the pixel count is checked from the
header *before* any decoding (decompression bombs); EXIF orientation is applied;
grayscale, palette, RGBA/LA and 16-bit images come out as 8-bit RGB. Nothing here
writes the photo anywhere: the decoded pixels live only in the returned array.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from vault.errors import ImageTooLarge, InvalidImage

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})

#: Modes holding more than 8 bits per sample that Pillow would clip, not scale.
_WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


@dataclass(frozen=True, slots=True)
class CaptureLimits:
    """What a photo may cost before the vault refuses to decode it."""

    max_bytes: int = 15_000_000
    max_pixels: int = 40_000_000


@dataclass(frozen=True, slots=True)
class DecodedPhoto:
    """An upright RGB photo (H x W x 3, uint8) and its original format."""

    pixels: NDArray[np.uint8]
    source_format: str

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def decode_photo(data: bytes, limits: CaptureLimits | None = None) -> DecodedPhoto:
    """Decode ``data`` into an upright 8-bit RGB array.

    Raises :class:`ImageTooLarge` (too many bytes or pixels) and :class:`InvalidImage`
    (not an accepted image format, corrupt or truncated).
    """
    limits = limits or CaptureLimits()
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            "photo is larger than the configured limit",
            details={"max_bytes": limits.max_bytes, "bytes": len(data)},
        )
    if not data:
        raise InvalidImage("empty photo")
    try:
        # Pillow's own bomb check is global state; ours is per call and stricter.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=sorted(ACCEPTED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own pixel limit fires while opening, before ours: still a size refusal.
        raise ImageTooLarge(
            "photo has more pixels than the configured limit",
            details={"max_pixels": limits.max_pixels},
        ) from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("not a JPEG, PNG or WebP photo") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage("unreadable photo") from exc
    with image:
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageTooLarge(
                "photo has more pixels than the configured limit",
                details={"max_pixels": limits.max_pixels, "pixels": width * height},
            )
        if width == 0 or height == 0:
            raise InvalidImage("photo has no pixels")
        source_format = str(image.format)
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            pixels = _to_rgb8(upright)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            # Truncated files surface here ("image file is truncated").
            raise InvalidImage("corrupt or truncated photo") from exc
    return DecodedPhoto(pixels=pixels, source_format=source_format)


def _to_rgb8(image: Image.Image) -> NDArray[np.uint8]:
    mode = image.mode
    if mode in _WIDE_MODES:
        wide = np.asarray(image, dtype=np.float64)
        # 16-bit data uses the full 0..65535 range; a float image is taken as 0..1.
        scale = 1.0 if mode == "F" else (255.0 / 65535.0)
        if mode == "F":
            wide = wide * 255.0
        gray = np.clip(np.rint(wide * scale), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels carry arbitrary colour: lay the photo on white instead.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)
