"""Which files of the input a run processes: modes, labels, deterministic subsets.

Pure functions over (path, size) listings, so that the selection is tested
without Spark and is the same on S3 and on a laptop.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

MODES: dict[str, str] = {
    "mini": "300 images of the Apple* classes, spread over the classes",
    "apples": "every image of the Apple* classes",
    "full": "every image",
}
MINI_SIZE = 300
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
APPLE_PREFIX = "Apple"


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


def class_glob(mode: str) -> str:
    """Hadoop glob of the class folders under Training/ a mode may select from."""
    return "*" if mode == "full" else f"{APPLE_PREFIX}*"


def is_image_name(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def label_of(path: str) -> str | None:
    """The class of an image is the folder holding it; files directly in Training/ have none."""
    parts = path.rstrip("/").split("/")
    if len(parts) < 3 or parts[-2] == "Training":
        return None
    return parts[-2]


def _in_mode(label: str, mode: str) -> bool:
    return mode == "full" or label.startswith(APPLE_PREFIX)


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
    images: list[Image] = []
    skipped: list[ListedFile] = []
    for listed in files:
        label = label_of(listed.path)
        if label is None or not is_image_name(listed.path):
            skipped.append(listed)
        elif _in_mode(label, mode):
            images.append(Image(listed.path, label, listed.size))
    if mode == "mini" or limit is not None:
        cap = min(MINI_SIZE if mode == "mini" else len(images), limit or len(images))
        images = round_robin(images)[:cap]
    else:
        images.sort(key=lambda image: image.path)
    return Selection(images=images, skipped=skipped, files_listed=len(files))
