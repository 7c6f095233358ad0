"""Which files of the input a run processes: the input rule, modes, deterministic subsets.

Pure functions over listings (path, size, modification time), so that the selection is
tested without Spark and is the same on S3 and on a laptop.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from fruits_contract.input_rule import classify
from fruits_contract.modes import MODES


@dataclass(frozen=True)
class ListedFile:
    path: str
    size: int
    modified: int = 0  # milliseconds since the epoch, as Spark lists the file


@dataclass(frozen=True)
class Image:
    path: str
    label: str
    size: int
    modified: int = 0


@dataclass(frozen=True)
class Skipped:
    """A listed file the run does not process, and why (errors/skipped.csv)."""

    path: str
    label: str | None
    size: int
    reason: str


@dataclass(frozen=True)
class Selection:
    images: list[Image]
    skipped: list[Skipped]
    files_listed: int


def relative_to_training(path: str, training_root: str | None = None) -> str:
    """A listed path below ``Training/`` (the root, or the last ``/Training/`` in the path)."""
    if training_root is not None:
        root = training_root.rstrip("/") + "/"
        if path.startswith(root):
            return path[len(root) :]
    return path.rsplit("/Training/", 1)[-1]


def _stable_key(image: Image) -> str:
    # Hash the class/file name, not the full URI, so a local copy and the S3
    # original of the same data set select the same images.
    name = image.path.rsplit("/", 1)[-1]
    return hashlib.sha1(f"{image.label}/{name}".encode()).hexdigest()


def round_robin(images: list[Image]) -> list[Image]:
    """Order images so that any prefix is spread evenly over the classes.

    Within a class the order is a hash of the file name: deterministic, yet not
    biased towards the first frames of each fruit's rotation video.
    """
    by_class: dict[str, list[Image]] = defaultdict(list)
    for image in images:
        by_class[image.label].append(image)
    queues = [sorted(by_class[label], key=_stable_key) for label in sorted(by_class)]
    ordered: list[Image] = []
    depth = 0
    while len(ordered) < len(images):
        ordered.extend(queue[depth] for queue in queues if depth < len(queue))
        depth += 1
    return ordered


def select_images(
    files: list[ListedFile],
    mode: str,
    limit: int | None = None,
    training_root: str | None = None,
) -> Selection:
    """Images a run processes, in a deterministic order, and the files it skips (with why)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    spec = MODES[mode]
    images: list[Image] = []
    skipped: list[Skipped] = []
    for listed in files:
        label, reason = classify(relative_to_training(listed.path, training_root))
        if reason is not None:
            skipped.append(Skipped(listed.path, label, listed.size, reason))
        elif spec.selects(label):
            images.append(Image(listed.path, label, listed.size, listed.modified))
    cap = spec.cap(limit)
    if cap is not None:
        images = round_robin(images)[:cap]
    else:
        images.sort(key=lambda image: image.path)
    skipped.sort(key=lambda file: file.path)
    return Selection(images=images, skipped=skipped, files_listed=len(files))
