"""Decode image bytes into the input MobileNetV2 expects, or say why not."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

EMPTY_FILE = "empty file (0 bytes)"


class ImageDecodeError(ValueError):
    """The bytes are not an image we can turn into RGB pixels."""


def decode_image(data: bytes | None, size: int) -> np.ndarray:
    """Bytes of a JPEG/PNG/... → uint8 RGB array (size, size, 3).

    Grayscale, CMYK, palette and alpha images are converted to RGB; any size is
    resized (bilinear).
    """
    if not data:
        raise ImageDecodeError(EMPTY_FILE)
    try:
        with Image.open(io.BytesIO(data)) as img:
            # JPEG decoders can downscale by 1/2..1/8 while decoding: a large
            # photo costs little more than a small one.
            img.draft("RGB", (size, size))
            rgb = img.convert("RGB")
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image: no decoder recognises the bytes") from None
    except OSError as exc:  # truncated or corrupt data
        raise ImageDecodeError(f"corrupt image: {exc}") from None
    except (ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"cannot convert image: {exc}") from None
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB batch → float32 in [-1, 1]: MobileNetV2's `preprocess_input` (x / 127.5 - 1).

    Done on a whole batch at once: one pass over memory instead of two per image.
    """
    batch = pixels.astype(np.float32)
    batch /= 127.5
    batch -= 1.0
    return batch
