import numpy as np
import pytest

from fruits_job.preprocess import ImageDecodeError, decode_image, to_model_input
from tests.spark.images import BROKEN_CONVERTED, BROKEN_REJECTED, broken_files, sample_images


@pytest.fixture(scope="module")
def broken():
    return broken_files(sample_images("Banana", 1)[0])


def test_real_jpeg_becomes_mobilenet_input():
    pixels = to_model_input(decode_image(sample_images("Banana", 1)[0].read_bytes(), 224))
    assert pixels.shape == (224, 224, 3)
    assert pixels.dtype == np.float32
    assert -1.0 <= pixels.min() < 0 < pixels.max() <= 1.0
    # The white Fruits-360 background maps close to +1.
    assert pixels[0, 0].mean() > 0.9


@pytest.mark.parametrize("name", sorted(BROKEN_CONVERTED))
def test_convertible_files_are_converted(broken, name):
    pixels = to_model_input(decode_image(broken[name], 160))
    assert pixels.shape == (160, 160, 3)
    assert pixels.std() > 0.05


def test_grayscale_and_cmyk_keep_the_picture(broken):
    rgb = to_model_input(decode_image(broken["png_named.jpg"], 100))
    for name in ("grayscale.jpg", "cmyk.jpg"):
        converted = to_model_input(decode_image(broken[name], 100))
        assert np.corrcoef(rgb.mean(axis=2).ravel(), converted.mean(axis=2).ravel())[0, 1] > 0.9


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.jpg", "empty file"),
        ("text.jpg", "not an image"),
        ("truncated.jpg", "corrupt image"),
    ],
)
def test_unreadable_files_raise_with_a_reason(broken, name, reason):
    assert name in BROKEN_REJECTED
    with pytest.raises(ImageDecodeError, match=reason):
        decode_image(broken[name], 224)


def test_scaling_is_mobilenet_preprocess_input():
    pixels = np.array([[[0, 127, 255]]], dtype=np.uint8)
    assert np.allclose(to_model_input(pixels), [[[-1.0, 127 / 127.5 - 1, 1.0]]])
