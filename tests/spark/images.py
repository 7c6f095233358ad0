"""Real sample images and deliberately broken files for the job's tests."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from PIL import Image

from tests.conftest import SAMPLE


def sample_images(label: str, count: int, split: str = "Training") -> list[Path]:
    return sorted((SAMPLE / split / label).glob("*.jpg"))[:count]


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=92)
    return out.getvalue()


def broken_files(source: Path) -> dict[str, bytes | None]:
    """name → bytes; None marks files that must be converted, not rejected.

    Keys ending in `.bad` are expected in the error report.
    """
    data = source.read_bytes()
    img = Image.open(source).convert("RGB")
    png = io.BytesIO()
    img.save(png, format="PNG")
    return {
        "truncated.jpg": data[: len(data) // 2],
        "empty.jpg": b"",
        "text.jpg": b"this is a text file, not a picture\n",
        "png_named.jpg": png.getvalue(),
        "grayscale.jpg": _jpeg(img.convert("L")),
        "cmyk.jpg": _jpeg(img.convert("CMYK")),
        "large_2000.jpg": _jpeg(img.resize((2000, 2000))),
    }


BROKEN_REJECTED = {"truncated.jpg", "empty.jpg", "text.jpg"}
BROKEN_CONVERTED = {"png_named.jpg", "grayscale.jpg", "cmyk.jpg", "large_2000.jpg"}


def build_input(root: Path, per_class: dict[str, int], broken_class: str | None = None) -> Path:
    """A Fruits-360-shaped folder: Training/<class>/ with real JPEGs (+ broken files)."""
    for label, count in per_class.items():
        folder = root / "Training" / label
        folder.mkdir(parents=True, exist_ok=True)
        for path in sample_images(label, count):
            shutil.copy(path, folder / path.name)
    if broken_class:
        folder = root / "Training" / broken_class
        folder.mkdir(parents=True, exist_ok=True)
        source = sample_images(broken_class, 1)[0]
        for name, data in broken_files(source).items():
            (folder / name).write_bytes(data)
        (folder / "README.txt").write_text("not an image, must be skipped\n")
    # Test/ must be ignored by every mode.
    test_folder = root / "Test" / "Banana"
    test_folder.mkdir(parents=True, exist_ok=True)
    for path in sample_images("Banana", 2, split="Test"):
        shutil.copy(path, test_folder / path.name)
    return root
