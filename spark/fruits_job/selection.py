"""Which files of the input a run processes: modes, labels, deterministic subsets.

Pure functions over (path, size) listings, so that the selection is tested
without Spark and is the same on S3 and on a laptop.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from fruits_job.modes import MODES

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class ListedFile:
    path: str
    size: int


@dataclass(frozen=True)
class Image:
    path: str
    label: str
    size: int


@dataclass(frozen=True)
class Selection:
    images: list[Image]
    skipped: list[ListedFile]  # files listed but never processed (not an image, no class folder)
    files_listed: int


def is_image_name(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def label_of(path: str) -> str | None:
    """The class of an image is the folder holding it; files directly in Training/ have none."""
    parts = path.rstrip("/").split("/")
    if len(parts) < 3 or parts[-2] == "Training":
        return None
    return parts[-2]


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


def select_images(files: list[ListedFile], mode: str, limit: int | None = None) -> Selection:
    """Images a run processes, in a deterministic order, and the files it skips."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    spec = MODES[mode]
    images: list[Image] = []
    skipped: list[ListedFile] = []
    for listed in files:
        label = label_of(listed.path)
        if label is None or not is_image_name(listed.path):
            skipped.append(listed)
        elif spec.selects(label):
            images.append(Image(listed.path, label, listed.size))
    caps = [cap for cap in (spec.max_images, limit) if cap is not None]
    if caps:
        images = round_robin(images)[: min(caps)]
    else:
        images.sort(key=lambda image: image.path)
    return Selection(images=images, skipped=skipped, files_listed=len(files))
