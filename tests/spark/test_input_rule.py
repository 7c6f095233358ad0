"""The input rule: which files are images a run processes, and why the others are skipped.

The Spark job and the Airflow side each hold the rule (they share nothing at import time);
this table holds both to the same answers.
"""

from __future__ import annotations

import pytest

from fruits_features import input_rule as airflow_side
from fruits_job import input_rule as job_side

CASES = [
    ("Apple Braeburn/0_100.jpg", "Apple Braeburn", None),
    ("Apple Braeburn/0_100.JPEG", "Apple Braeburn", None),
    ("Kiwi/photo.png", "Kiwi", None),
    ('Apple "Quote" O\'Neil/pomme été 1.jpg', 'Apple "Quote" O\'Neil', None),
    ("Apple, Red/new\nline.jpg", "Apple, Red", None),
    ("loose.jpg", None, job_side.NOT_IN_A_CLASS_FOLDER),
    ("Kiwi/README.txt", "Kiwi", job_side.NOT_AN_IMAGE),
    ("Kiwi/photo.jpg.bak", "Kiwi", job_side.NOT_AN_IMAGE),
    ("Kiwi/._IMG_0001.jpg", "Kiwi", job_side.HIDDEN_NAME),
    ("Kiwi/_underscore.jpg", "Kiwi", job_side.HIDDEN_NAME),
    ("_tmp/0_100.jpg", "_tmp", job_side.HIDDEN_NAME),
    ("Kiwi/.thumbs/0_100.jpg", ".thumbs", job_side.HIDDEN_NAME),
    ("Kiwi/IMG 12:30:01.jpg", "Kiwi", job_side.COLON_IN_NAME),
    ("Kiwi:2/0_100.jpg", "Kiwi:2", job_side.COLON_IN_NAME),
]


@pytest.mark.parametrize(("relative", "label", "reason"), CASES)
def test_both_sides_give_the_same_answer(relative, label, reason):
    assert job_side.classify(relative) == (label, reason)
    assert airflow_side.classify(relative) == (label, reason)


def test_both_sides_say_the_same_reasons():
    names = ("NOT_IN_A_CLASS_FOLDER", "NOT_AN_IMAGE", "HIDDEN_NAME", "COLON_IN_NAME")
    for name in (*names, "IMAGE_EXTENSIONS"):
        assert getattr(job_side, name) == getattr(airflow_side, name), name
