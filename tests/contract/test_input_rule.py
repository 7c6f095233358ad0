"""The input rule: which files are images a run processes, and why the others are skipped.

One rule (fruits_contract.input_rule), applied by check_inputs to its S3 listing and by the
job to its own listing.
"""

from __future__ import annotations

import pytest

from fruits_contract import input_rule as rule

CASES = [
    ("Apple Braeburn/0_100.jpg", "Apple Braeburn", None),
    ("Apple Braeburn/0_100.JPEG", "Apple Braeburn", None),
    ("Kiwi/photo.png", "Kiwi", None),
    ('Apple "Quote" O\'Neil/pomme été 1.jpg', 'Apple "Quote" O\'Neil', None),
    ("Apple, Red/new\nline.jpg", "Apple, Red", None),
    ("loose.jpg", None, rule.NOT_IN_A_CLASS_FOLDER),
    ("Kiwi/README.txt", "Kiwi", rule.NOT_AN_IMAGE),
    ("Kiwi/photo.jpg.bak", "Kiwi", rule.NOT_AN_IMAGE),
    ("Kiwi/._IMG_0001.jpg", "Kiwi", rule.HIDDEN_NAME),
    (".cache/0_100.jpg", ".cache", rule.HIDDEN_NAME),
    ("Kiwi/.thumbs/0_100.jpg", "Kiwi", rule.HIDDEN_NAME),
    # The job lists and reads the bank without Hadoop: names it hid or refused are images.
    ("Kiwi/_underscore.jpg", "Kiwi", None),
    ("_tmp/0_100.jpg", "_tmp", None),
    ("Kiwi/IMG 12:30:01.jpg", "Kiwi", None),
    ("Kiwi:2/0_100.jpg", "Kiwi:2", None),
    # A stray sub-folder is reported, not made a class of its own (nor, in mode apples,
    # left out of both the images and the skipped files).
    ("Apple Red/thumbs/0_100.jpg", "Apple Red", rule.IN_A_SUB_FOLDER),
    ("Apple Red/a/b/c.png", "Apple Red", rule.IN_A_SUB_FOLDER),
    # Keys S3 stores as they are but a file system (s3a, EMRFS, a local copy) reads as
    # another path: skipped for what they are, never read as the file they would name.
    ("Apple Red//0_100.jpg", "Apple Red", rule.NOT_CANONICAL),
    ("/0_100.jpg", None, rule.NOT_CANONICAL),
    ("/Apple Red/0_100.jpg", None, rule.NOT_CANONICAL),
    ("Apple Red/./0_100.jpg", "Apple Red", rule.NOT_CANONICAL),
    ("Apple Red/../Kiwi/0_100.jpg", "Apple Red", rule.NOT_CANONICAL),
    ("../0_100.jpg", None, rule.NOT_CANONICAL),
    ("Apple Red/0_100.jpg/", "Apple Red", rule.NOT_CANONICAL),
]


@pytest.mark.parametrize(("relative", "label", "reason"), CASES)
def test_each_file_gets_its_label_or_its_reason(relative, label, reason):
    assert rule.classify(relative) == (label, reason)
