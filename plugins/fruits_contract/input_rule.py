"""Which files of the bank are inputs: one rule, applied before anything is read.

A file under ``Training/`` is an image input when it sits in a class folder, has an image
extension, and Spark can read it. Every other file is *skipped*, with its reason, and
listed in the run's ``errors/skipped.csv``: nothing is dropped silently.

Spark's file sources never read names that start with ``_`` or ``.`` (Hadoop's hidden
files: ``._IMG_0001.jpg``, the metadata macOS leaves beside every copied file, and also a
real ``_photo.jpg``), and Hadoop paths cannot hold a ``:`` in a name on a local disk. Such
files are reported, not processed: the job reads the bank in place on EMR, where a staged,
renamed copy would not exist, and a run must give the same result on every backend.

The Airflow side applies it to its S3 listing, so check_inputs reports such files before any
compute; the job applies it to its own listing.
"""

from __future__ import annotations

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

NOT_IN_A_CLASS_FOLDER = "not in a class folder (Training/<class>/<file>)"
NOT_AN_IMAGE = "not an image file (.jpg, .jpeg or .png)"
HIDDEN_NAME = "name starts with '_' or '.': Spark's file sources never read it; rename it"
COLON_IN_NAME = "':' in its path: Hadoop paths cannot hold it; rename it"


def classify(relative: str) -> tuple[str | None, str | None]:
    """(class label, None) for an image input, else (label or None, why it is skipped).

    ``relative`` is the file's path below ``Training/``, with ``/`` separators.
    """
    parts = relative.split("/")
    label = parts[-2] if len(parts) >= 2 else None
    if label is None:
        return None, NOT_IN_A_CLASS_FOLDER
    if any(part.startswith(("_", ".")) for part in parts):
        return label, HIDDEN_NAME
    if ":" in relative:
        return label, COLON_IN_NAME
    if not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
        return label, NOT_AN_IMAGE
    return label, None
