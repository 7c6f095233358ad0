"""The selection in Spark: the input rule, the mode's classes and its cap (a deterministic
subset, round-robin over the classes), checked against orders worked out by hand and
against a plain-Python reference of the same rule."""

import hashlib
from collections import Counter, defaultdict

import pytest

from fruits_contract.input_rule import classify
from fruits_contract.modes import MODES
from tests.conftest import SAMPLE

MINI_SIZE = MODES["mini"].max_images
ROOT = "s3://bucket/fruits-360"


def _files(classes: dict[str, int], root: str = ROOT) -> list[tuple[str, int, int]]:
    return [
        (f"{root}/Training/{label}/{i}_100.jpg", 1000 + i, 0)
        for label, count in classes.items()
        for i in range(count)
    ]


def _select(spark, files, mode: str, limit: int | None = None, root: str = ROOT):
    from fruits_job.selection import select

    listing = spark.createDataFrame(files, "path string, bytes long, modified long")
    selection = select(listing, f"{root}/Training", MODES[mode], limit)
    images = selection.images.collect()
    skipped = selection.skipped.collect()
    selection.classified.unpersist()
    return images, skipped


def _reference_order(paths: list[str]) -> list[str]:
    """The cap's order, in plain Python: classes take turns (by name), each in the order of
    SHA-1 of "<class>/<file name>"."""
    by_class = defaultdict(list)
    for path in paths:
        label = path.split("/Training/")[1].split("/")[0]
        by_class[label].append(path)

    def key(label: str, path: str) -> str:
        return hashlib.sha1(f"{label}/{path.rsplit('/', 1)[1]}".encode()).hexdigest()

    queues = [sorted(by_class[c], key=lambda p, c=c: key(c, p)) for c in sorted(by_class)]
    return [q[d] for d in range(max(map(len, queues))) for q in queues if d < len(q)]


def test_label_is_the_class_folder(spark):
    files = [(f"{ROOT}/Training/Apple Red 1/3_100.jpg", 5, 0), (f"{ROOT}/Training/x.md", 5, 0)]
    images, skipped = _select(spark, files, "full")
    assert [i.label for i in images] == ["Apple Red 1"]
    assert [(f.label, f.reason) for f in skipped] == [
        ("", "not in a class folder (Training/<class>/<file>)")
    ]


def test_modes_pick_apple_classes_only_not_pineapple(spark):
    files = _files({"Apple Braeburn": 5, "Apple Red 1": 4, "Pineapple": 3, "Banana": 2})
    apples, _ = _select(spark, files, "apples")
    assert Counter(i.label for i in apples) == {"Apple Braeburn": 5, "Apple Red 1": 4}
    assert len(_select(spark, files, "full")[0]) == 14


def test_mini_takes_300_spread_evenly_over_classes(spark):
    files = _files({f"Apple {c}": 120 for c in "ABCDEFGHIJKLM"} | {"Banana": 500})
    mini, _ = _select(spark, files, "mini")
    assert len(mini) == MINI_SIZE
    per_class = Counter(i.label for i in mini)
    assert set(per_class) == {f"Apple {c}" for c in "ABCDEFGHIJKLM"}
    assert max(per_class.values()) - min(per_class.values()) <= 1


def test_the_cap_worked_by_hand(spark):
    # Within a class, images go by SHA-1 of "<class>/<file name>" (not by name: the first
    # frames of each fruit's rotation video would come first); classes take turns.
    #   Apple A: 3_100 5407a0, 0_100 68925b, 2_100 88032e, 4_100 c476f9, 1_100 db2e3a
    #   Apple B: 0_100 1559fe, 1_100 61f9c1, 2_100 9ae267
    # Order: A3 B0 A0 B1 A2 B2 A4 A1.
    files = _files({"Apple A": 5, "Apple B": 3})
    for limit, expected in (
        (1, {"A3"}),
        (2, {"A3", "B0"}),
        (5, {"A3", "B0", "A0", "B1", "A2"}),
        (7, {"A3", "B0", "A0", "B1", "A2", "B2", "A4"}),
        (8, {"A3", "B0", "A0", "B1", "A2", "B2", "A4", "A1"}),
    ):
        images, _ = _select(spark, files, "mini", limit)
        assert {i.label[-1] + i.path.rsplit("/", 1)[1][0] for i in images} == expected, limit


def test_the_cap_matches_the_reference_order_on_uneven_classes(spark):
    files = _files({"Apple A": 40, "Apple B": 3, "Apple C": 17, "Apple D": 1, "Apple E": 29})
    order = _reference_order([f[0] for f in files])
    for limit in (4, 5, 13, 37, 61, 89, 90, 200):
        images, _ = _select(spark, files, "apples", limit)
        assert {i.path for i in images} == set(order[:limit]), limit


def test_the_cap_is_the_same_whatever_the_listing_order_and_location(spark):
    files = _files({"Apple A": 200, "Apple B": 150, "Apple C": 10})
    first = {i.path.split("/Training/")[1] for i in _select(spark, files, "mini")[0]}
    again = {i.path.split("/Training/")[1] for i in _select(spark, files[::-1], "mini")[0]}
    local = _files({"Apple A": 200, "Apple B": 150, "Apple C": 10}, root="file:/tmp/copy")
    moved = _select(spark, local, "mini", root="file:/tmp/copy")[0]
    assert first == again == {i.path.split("/Training/")[1] for i in moved}
    # Not just the first 300 files in name order.
    assert first != set(sorted(f[0].split("/Training/")[1] for f in files)[:MINI_SIZE])


def test_a_small_input_under_the_cap_is_taken_whole(spark):
    assert len(_select(spark, _files({"Apple A": 7, "Apple B": 5}), "mini")[0]) == 12


def test_a_limit_is_a_prefix_of_a_larger_one(spark):
    files = _files({"Apple A": 50, "Banana": 50, "Kiwi": 50})
    nine = {i.path for i in _select(spark, files, "full", 9)[0]}
    twelve = {i.path for i in _select(spark, files, "full", 12)[0]}
    assert Counter(p.split("/Training/")[1].split("/")[0] for p in nine) == {
        "Apple A": 3,
        "Banana": 3,
        "Kiwi": 3,
    }
    assert nine < twelve


def test_non_images_and_loose_files_are_skipped_not_selected(spark):
    files = [
        *_files({"Apple A": 3}),
        (f"{ROOT}/Training/Apple A/notes.txt", 10, 0),
        (f"{ROOT}/Training/Apple A/photo.PNG", 10, 0),
        (f"{ROOT}/Training/loose.jpg", 10, 0),
        (f"{ROOT}/Training/Apple A/deeper/x.jpg", 10, 0),
    ]
    images, skipped = _select(spark, files, "full")
    assert len(images) == 4
    assert {f.path.rsplit("/", 1)[1]: f.reason for f in skipped} == {
        name: classify(path.split("/Training/")[1])[1]
        for path, name in (
            (files[3][0], "notes.txt"),
            (files[5][0], "loose.jpg"),
            (files[6][0], "x.jpg"),
        )
    }


def test_the_shipped_sample_has_enough_apples_for_mini(spark):
    jpgs = [(f"file:{p}", p.stat().st_size, 0) for p in (SAMPLE / "Training").rglob("*.jpg")]
    mini, _ = _select(spark, jpgs, "mini", root=f"file:{SAMPLE}")
    assert len(mini) == MINI_SIZE
    assert len({i.label for i in mini}) == 13


def test_the_pca_check_refuses_inconsistent_variance():
    from fruits_job.pca import PcaCheckError, check_explained_variance

    check_explained_variance([0.2357, 0.0752], [0.23571, 0.07519])
    with pytest.raises(PcaCheckError, match=r"reported 0\.0258 .* holds 0\.2357"):
        check_explained_variance([0.0258, 0.0190], [0.2357, 0.0752])
