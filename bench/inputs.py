"""Benchmark inputs: N real Fruits-360 images laid out as the job reads them.

Up to the number of images at hand, a deterministic subset spread over the classes. Beyond,
the bank is grown from the same photos: the Test images join their class, then mirrored,
flipped and rotated copies of every image are added (each a different picture, so each a
different feature vector), until N.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from fruits_job.selection import ListedFile, select_images

# Copies that change the pixels, in the order they are used to grow the bank.
VARIANTS: tuple[tuple[str, Callable[[Image.Image], Image.Image]], ...] = (
    ("mirror", lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    ("flip", lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
    ("rot90", lambda im: im.transpose(Image.Transpose.ROTATE_90)),
    ("rot270", lambda im: im.transpose(Image.Transpose.ROTATE_270)),
    ("transpose", lambda im: im.transpose(Image.Transpose.TRANSPOSE)),
)


def _listing(folder: Path) -> list[ListedFile]:
    return [ListedFile(str(p), p.stat().st_size) for p in folder.rglob("*") if p.is_file()]


def prepare_input(source: Path, count: int, target: Path) -> int:
    """Write ``count`` images under ``target/Training/<class>/``; reuse a complete earlier one."""
    done = target / f".complete-{count}"
    if done.is_file():
        return count
    shutil.rmtree(target, ignore_errors=True)
    training = select_images(_listing(source / "Training"), "full").images
    if count <= len(training):
        for image in select_images(_listing(source / "Training"), "full", limit=count).images:
            destination = target / "Training" / image.label / Path(image.path).name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(image.path, destination)
        done.touch()
        return count
    originals = [(i.path, i.label, Path(i.path).name) for i in training]
    test_folder = source / "Test"
    if test_folder.is_dir():
        originals += [
            (i.path, i.label, "test_" + Path(i.path).name)
            for i in select_images(_listing(test_folder), "full").images
        ]
    written = 0
    for path, label, name in originals:
        if written == count:
            break
        destination = target / "Training" / label / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, destination)
        written += 1
    for variant, transform in VARIANTS:
        for path, label, name in originals:
            if written == count:
                break
            with Image.open(path) as image:
                transform(image.convert("RGB")).save(
                    target / "Training" / label / f"{variant}_{Path(name).stem}.jpg", quality=95
                )
            written += 1
    if written < count:
        raise ValueError(f"cannot build {count} images from {source}: only {written}")
    done.touch()
    return written
