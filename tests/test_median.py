"""The fast median filter and median of ERR are pinned to the reference implementations, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from scipy import ndimage

from longslit.numerics import median as fast
from longslit.steps.cosmic import median_of_error, middle_bracket, middle_values, sample_positions


def reference(image: np.ndarray, size: int) -> np.ndarray:
    return ndimage.median_filter(image, size=size, mode="constant", cval=0)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_bit_identical_to_medfilt_on_3c120(real_frame_path):
    import longslit

    sci = longslit.read(real_frame_path).sci
    expected = scipy.signal.medfilt(sci, 5)
    got = fast.median_filter(sci, 5)
    assert expected.dtype == np.float32
    assert same_bits(got, expected)  # edges included: medfilt pads with zeros as we do
    assert not np.array_equal(got[0], sci[0])  # the edge rows really are filtered


@pytest.mark.parametrize("size", fast.FAST_SIZES)
@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 9), (9, 1), (2, 3), (5, 5), (6, 10), (37, 41), (64, 1030), (300, 77)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8])
def test_matches_ndimage_on_random_frames(size, shape, dtype):
    rng = np.random.default_rng(sum(shape) * size)
    values = rng.normal(50, 40, size=shape)
    values[rng.random(shape) < 0.2] = 0  # ties with the padding
    values[rng.random(shape) < 0.05] = 1e4  # cosmic-ray-like outliers
    if np.dtype(dtype).kind in "iu":
        values = np.clip(values, 0, np.iinfo(dtype).max)
    image = values.astype(dtype)
    assert same_bits(fast.median_filter(image, size), reference(image, size))


def test_blocks_of_rows_join_without_seams(monkeypatch):
    # Small blocks force many block boundaries inside one frame.
    image = np.random.default_rng(3).normal(size=(101, 23)).astype(np.float32)
    monkeypatch.setattr(fast, "BLOCK_ELEMENTS", 40)
    assert same_bits(fast.median_filter(image, 5), reference(image, 5))


def test_big_endian_and_non_contiguous_input():
    image = np.random.default_rng(4).normal(size=(40, 60)).astype(">f4")
    view = image[::2, 1::3]
    assert np.array_equal(fast.median_filter(view, 5), reference(view.astype("=f4"), 5))


@pytest.mark.parametrize("size", [3, 5])
def test_every_zero_one_window(size):
    """The 0-1 principle: a min/max network that gives the median of every 0/1 window gives it for
    every input. All 2**(size*size) windows, through the real code path (tiled blocks, uint8)."""
    n = size * size
    total = 1 << n
    chunk = 1 << 19
    weights = (1 << np.arange(n, dtype=np.int64)).reshape(size, size)
    for start in range(0, total, chunk):
        patterns = np.arange(start, min(start + chunk, total), dtype=np.int64)
        windows = ((patterns[:, None, None] & weights) != 0).astype(np.uint8)  # (m, size, size)
        # Tile the windows side by side; the window centred on each tile sees exactly that tile.
        image = windows.transpose(1, 0, 2).reshape(size, -1)
        centres = fast.median_filter(image, size)[size // 2, size // 2 :: size]
        expected = windows.reshape(len(patterns), -1).sum(axis=1) > n // 2
        assert np.array_equal(centres.astype(bool), expected)


def test_nan_and_other_sizes_fall_back_to_ndimage():
    image = np.random.default_rng(5).normal(size=(30, 30))
    image[4, 7] = np.nan
    assert same_bits(fast.median_filter(image, 5), reference(image, 5))
    clean = np.nan_to_num(image)
    assert same_bits(fast.median_filter(clean, 7), reference(clean, 7))


def test_network_sizes():
    # The figures the module documents: min/max operations per pixel.
    assert fast.plan(3).operations == 22
    assert fast.plan(5).operations == 90
    with pytest.raises(ValueError, match="no fast median network"):
        fast.plan(7)


@pytest.mark.parametrize("n", [1, 2, 3, 1000, 16384, 16385, 100_001, 261_632])
def test_middle_values_equal_np_median(n):
    rng = np.random.default_rng(n)
    for values in (rng.normal(size=n), rng.integers(0, 4, size=n).astype(float), np.sort(rng.random(n))):
        low, high = middle_values(values)
        assert (low + high) / 2 == np.median(values)


def test_middle_values_when_the_sample_misleads():
    # Every sampled value is huge, so the bracket misses and the whole array is partitioned.
    values = np.random.default_rng(6).normal(size=100_000)
    values[sample_positions(values.size, 4096)] = 1e9
    assert middle_bracket(values)[0] == 1e9
    low, high = middle_values(values)
    assert (low + high) / 2 == np.median(values)


@pytest.mark.parametrize("shape", [(4096, 256), (2048, 512), (512, 511), (300, 1024)])
def test_the_sample_spreads_over_every_column(shape):
    # A frame of 4096 rows flattened: a stride of size // 4096 is its row length, and the old strided
    # sample saw column 0 alone. Here each column carries its own level, far apart, so a sample of few
    # columns puts the bracket off the frame's middle.
    nrows, ncols = shape
    columns = sample_positions(nrows * ncols, 4096) % ncols
    counts = np.bincount(columns, minlength=ncols)
    expected = 4096 / ncols
    assert counts.min() >= np.floor(0.5 * expected) and counts.max() <= np.ceil(1.5 * expected) + 1
    rng = np.random.default_rng(ncols)
    variance = (np.arange(ncols, dtype=np.float64) + rng.random((nrows, ncols))) ** 2
    values = variance.ravel()
    lo, hi = middle_bracket(values)
    low, high = middle_values(values)
    assert lo <= low <= high <= hi  # the bracket holds the middle: no partition of the whole frame
    assert (low + high) / 2 == np.median(values)
    err = np.sqrt(variance).astype(np.float32)
    assert median_of_error(err.astype(np.float64) ** 2) == np.median(err)


def test_median_of_error_is_the_tutorials_median_of_err():
    err = np.random.default_rng(7).gamma(3.0, 2.0, size=(512, 511)).astype(np.float32)
    variance = err.astype(np.float64) ** 2
    expected = np.median(err)  # the tutorial's sigma, float32
    got = median_of_error(variance)
    assert got.dtype == np.float32 and got == expected
