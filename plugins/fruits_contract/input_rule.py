"""Which files of the bank are inputs: one rule, applied before anything is read.

A file under ``Training/`` is an image input when it sits directly in a class folder
(``Training/<class>/<file>``), has an image extension and is not hidden. Every other file
is *skipped*, with its reason, and listed in the run's ``skipped/``: nothing listed is
dropped silently.

- A file deeper down (``Training/<class>/<folder>/<file>``) is skipped, not given the
  inner folder as its class: a stray sub-folder must not become a class of its own.
- A hidden name (a path part starting with ``.``) is skipped: ``._IMG_0001.jpg`` is the
  metadata macOS leaves beside every copied file, not a photo.
- A key that is not a canonical path (an empty, ``.`` or ``..`` part: ``Kiwi//x.jpg``,
  ``Kiwi/../x.jpg``) is skipped: S3 stores it as it is, but a file system (s3a, EMRFS, a
  local copy) would read it as another path, another object's or none.

The job lists the bank itself (not through Hadoop's file sources) and reads each image by
its path, so names Hadoop would hide (``_photo.jpg``) or refuse (``IMG 12:30:01.jpg``) are
inputs like any other.

The Airflow side applies it to its S3 listing, so check_inputs reports such files before any
compute; the job applies it to its own listing.
"""

from __future__ import annotations

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

NOT_IN_A_CLASS_FOLDER = "not in a class folder (Training/<class>/<file>)"
IN_A_SUB_FOLDER = "in a folder inside its class folder: only Training/<class>/<file> is read"
NOT_AN_IMAGE = "not an image file (.jpg, .jpeg or .png)"
HIDDEN_NAME = "hidden: a name starting with '.' (such as macOS's ._ metadata files)"
NOT_CANONICAL = "not a canonical path: an empty, '.' or '..' part names another file"
NOT_A_NAME = ("", ".", "..")


def classify(relative: str) -> tuple[str | None, str | None]:
    """(class label, None) for an image input, else (label or None, why it is skipped).

    ``relative`` is the file's path below ``Training/``, with ``/`` separators.
    """
    parts = relative.split("/")
    label = None if parts[0] in NOT_A_NAME else parts[0]
    if any(part in NOT_A_NAME for part in parts):
        return label, NOT_CANONICAL
    if len(parts) < 2:
        return None, NOT_IN_A_CLASS_FOLDER
    if any(part.startswith(".") for part in parts):
        return label, HIDDEN_NAME
    if len(parts) > 2:
        return label, IN_A_SUB_FOLDER
    if not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
        return label, NOT_AN_IMAGE
    return label, None
