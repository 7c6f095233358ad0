"""Benchmark inputs: N real Fruits-360 images laid out as the job reads them.

Up to the number of images at hand, a deterministic subset spread over the classes. Beyond,
the bank is grown from the same photos: the Test images join their class, then mirrored,
flipped and rotated copies of every image are added (each a different picture, so each a
different feature vector), until N.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from fruits_contract.input_rule import classify

# Copies that change the pixels, in the order they are used to grow the bank.
VARIANTS: tuple[tuple[str, Callable[[Image.Image], Image.Image]], ...] = (
    ("mirror", lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    ("flip", lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
    ("rot90", lambda im: im.transpose(Image.Transpose.ROTATE_90)),
    ("rot270", lambda im: im.transpose(Image.Transpose.ROTATE_270)),
    ("transpose", lambda im: im.transpose(Image.Transpose.TRANSPOSE)),
)


@dataclass(frozen=True)
class Photo:
    path: str
    label: str


def _photos(folder: Path, limit: int | None = None) -> list[Photo]:
    """The images under ``folder`` (``<class>/<image>``) as the input rule takes them; with a
    limit, the first of a round-robin over the classes, each in a hashed order (the job's
    own cap spreads a subset the same way)."""
    by_class: dict[str, list[Photo]] = defaultdict(list)
    for path in folder.rglob("*"):
        if path.is_file():
            label, reason = classify(str(path.relative_to(folder)))
            if reason is None:
                by_class[label].append(Photo(str(path), label))
    queues = [
        sorted(by_class[label], key=lambda p: hashlib.sha1(p.path.encode()).hexdigest())
        for label in sorted(by_class)
    ]
    ordered = [
        queue[depth]
        for depth in range(max(map(len, queues), default=0))
        for queue in queues
        if depth < len(queue)
    ]
    return ordered if limit is None else ordered[:limit]


def prepare_input(source: Path, count: int, target: Path) -> int:
    """Write ``count`` images under ``target/Training/<class>/``; reuse a complete earlier one."""
    done = target / f".complete-{count}"
    if done.is_file():
        return count
    shutil.rmtree(target, ignore_errors=True)
    training = _photos(source / "Training")
    if count <= len(training):
        for image in training[:count]:
            destination = target / "Training" / image.label / Path(image.path).name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(image.path, destination)
        done.touch()
        return count
    originals = [(i.path, i.label, Path(i.path).name) for i in training]
    test_folder = source / "Test"
    if test_folder.is_dir():
        originals += [(i.path, i.label, "test_" + Path(i.path).name) for i in _photos(test_folder)]
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
