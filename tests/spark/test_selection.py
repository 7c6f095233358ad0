from collections import Counter

import pytest

from fruits_contract.modes import MODES
from fruits_job.selection import ListedFile, round_robin, select_images
from tests.conftest import SAMPLE

MINI_SIZE = MODES["mini"].max_images


def _listing(classes: dict[str, int], root: str = "s3://bucket/fruits-360") -> list[ListedFile]:
    return [
        ListedFile(f"{root}/Training/{label}/{i}_100.jpg", 1000 + i)
        for label, count in classes.items()
        for i in range(count)
    ]


def test_label_is_the_class_folder():
    selection = select_images(
        [
            ListedFile("s3://b/x/Training/Apple Red 1/3_100.jpg", 5),
            ListedFile("file:/data/Training/readme.md", 5),
        ],
        "full",
    )
    assert [i.label for i in selection.images] == ["Apple Red 1"]
    assert [(f.label, f.reason) for f in selection.skipped] == [
        (None, "not in a class folder (Training/<class>/<file>)")
    ]


def test_modes_pick_apple_classes_only_not_pineapple():
    files = _listing({"Apple Braeburn": 5, "Apple Red 1": 4, "Pineapple": 3, "Banana": 2})
    apples = select_images(files, "apples")
    assert {i.label for i in apples.images} == {"Apple Braeburn", "Apple Red 1"}
    assert len(apples.images) == 9
    assert len(select_images(files, "full").images) == 14


def test_mini_takes_300_spread_evenly_over_classes():
    files = _listing({f"Apple {c}": 120 for c in "ABCDEFGHIJKLM"} | {"Banana": 500})
    mini = select_images(files, "mini").images
    assert len(mini) == MINI_SIZE
    per_class = Counter(i.label for i in mini)
    assert set(per_class) == {f"Apple {c}" for c in "ABCDEFGHIJKLM"}
    assert max(per_class.values()) - min(per_class.values()) <= 1


def test_mini_is_deterministic_whatever_the_listing_order_and_location():
    files = _listing({"Apple A": 200, "Apple B": 150, "Apple C": 10})
    first = [i.path for i in select_images(files, "mini").images]
    again = [i.path for i in select_images(list(reversed(files)), "mini").images]
    assert first == again
    local = _listing({"Apple A": 200, "Apple B": 150, "Apple C": 10}, root="file:/tmp/copy")
    names = [p.split("/Training/")[1] for p in first]
    assert names == [i.path.split("/Training/")[1] for i in select_images(local, "mini").images]
    # Not just the first 300 files in name order.
    assert names != sorted(p.split("/Training/")[1] for p in first)


def test_mini_order_worked_by_hand():
    # Within a class, images go by SHA-1 of "<class>/<file name>" (not by name: the first
    # frames of each fruit's rotation video would come first); classes take turns.
    #   Apple A: 3_100 5407a0, 0_100 68925b, 2_100 88032e, 4_100 c476f9, 1_100 db2e3a
    #   Apple B: 0_100 1559fe, 1_100 61f9c1, 2_100 9ae267
    files = _listing({"Apple A": 5, "Apple B": 3})
    mini = select_images(files, "mini").images
    order = [(i.label[-1], i.path.rsplit("/", 1)[1][0]) for i in mini]
    assert order == [
        ("A", "3"), ("B", "0"), ("A", "0"), ("B", "1"), ("A", "2"), ("B", "2"), ("A", "4"),
        ("A", "1"),
    ]  # fmt: skip


def test_mini_on_a_small_input_takes_everything():
    files = _listing({"Apple A": 7, "Apple B": 5})
    assert len(select_images(files, "mini").images) == 12


def test_limit_is_a_spread_deterministic_prefix():
    files = _listing({"Apple A": 50, "Banana": 50, "Kiwi": 50})
    limited = select_images(files, "full", limit=9).images
    assert Counter(i.label for i in limited) == {"Apple A": 3, "Banana": 3, "Kiwi": 3}
    assert limited == select_images(files, "full", limit=12).images[:9]


def test_non_images_and_loose_files_are_skipped_not_selected():
    files = [
        *_listing({"Apple A": 3}),
        ListedFile("s3://b/Training/Apple A/notes.txt", 10),
        ListedFile("s3://b/Training/Apple A/photo.PNG", 10),
        ListedFile("s3://b/Training/loose.jpg", 10),
    ]
    selection = select_images(files, "full")
    assert {f.path.rsplit("/", 1)[1] for f in selection.skipped} == {"notes.txt", "loose.jpg"}
    assert len(selection.images) == 4
    assert selection.files_listed == 6


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown mode 'pears'"):
        select_images([], "pears")


def test_round_robin_keeps_every_image_once():
    files = _listing({"Apple A": 3, "Apple B": 1, "Apple C": 5})
    images = select_images(files, "full").images
    assert sorted(round_robin(images), key=lambda i: i.path) == images


def test_the_shipped_sample_has_enough_apples_for_mini():
    jpgs = [ListedFile(str(p), p.stat().st_size) for p in (SAMPLE / "Training").rglob("*.jpg")]
    mini = select_images(jpgs, "mini").images
    assert len(mini) == MINI_SIZE
    assert len({i.label for i in mini}) == 13


def test_uri_form_of_a_path_matches_the_path_column():
    from fruits_job.listing import hadoop_path_string

    assert hadoop_path_string("file:///d/Training/Apple%20Red%201/a.jpg") == (
        "file:/d/Training/Apple Red 1/a.jpg"
    )
    assert hadoop_path_string("s3://bucket/x/Training/Kiwi%20B/1.jpg") == (
        "s3://bucket/x/Training/Kiwi B/1.jpg"
    )


def test_the_pca_check_refuses_inconsistent_variance():
    from fruits_job.pca import PcaCheckError, check_explained_variance

    check_explained_variance([0.2357, 0.0752], [0.23571, 0.07519])
    with pytest.raises(PcaCheckError, match=r"reported 0\.0258 .* holds 0\.2357"):
        check_explained_variance([0.0258, 0.0190], [0.2357, 0.0752])
