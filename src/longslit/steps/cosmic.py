"""Built-in cosmic-ray method ``median``: the tutorial's median filter and sigma clip."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..geometry import Geometry
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare
from ..products import CosmicResult


def median_filter_zero_padded(image: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` median filter with zeros beyond the edges, as ``scipy.signal.medfilt``.

    Sizes 3, 5 and 9 run as min/max sorting networks on whole arrays (``longslit.numerics.median``,
    about 25x faster than ``medfilt`` at size 5); tests pin the result to ``medfilt`` bit for bit.
    """
    from ..numerics.median import median_filter

    return median_filter(image, size)


@declare(
    Param(
        "size",
        "int",
        5,
        "Width of the square median filter (odd).",
        minimum=3,
        maximum=51,
        unit="pixels",
    ),
    Param(
        "threshold",
        "float",
        8.0,
        "Replace pixels this far from the median.",
        minimum=0.0,
        unit="sigma",
    ),
    Param(
        "sigma",
        "float",
        None,
        "Noise level (auto: median of ERR).",
        minimum=0.0,
        unit="counts",
        nullable=True,
    ),
)
def clean_median(
    frame: Frame,
    geometry: Geometry,
    *,
    size: int,
    threshold: float,
    sigma: float | None,
) -> CosmicResult:
    """Replace pixels that stand out from their median-filtered neighbourhood.

    A pixel is a hit when ``|sci - median| / sigma > threshold``; hits are replaced by the median,
    except inside the geometry's protected regions (the source), which are left as they are.

    Parameters
    ----------
    size : int
        Width of the square median filter (odd).
    threshold : float
        Clip level in units of ``sigma``.
    sigma : float, optional
        Noise level; default the median of the frame's ERR (the tutorial's choice), or, without ERR,
        a robust (MAD) estimate of the scatter about the filtered image.
    """
    if size % 2 == 0:
        raise InputError(f"cosmic.size = {size} must be odd (the filter is centred on the pixel)")
    sci = frame.sci
    finite = np.isfinite(sci)
    data = sci if finite.all() else np.where(finite, sci, np.median(sci[finite])).astype(sci.dtype)
    smooth = median_filter_zero_padded(data, size)
    if sigma is None:
        if frame.variance is not None:
            sigma = float(median_of_error(frame.variance))
        else:
            from astropy.stats import mad_std

            sigma = float(mad_std(data - smooth))
    if not sigma > 0:
        raise InputError(f"the noise level sigma is {sigma}; set cosmic.sigma to a positive value")
    # Same arithmetic, in the data's own precision, as the tutorial (|sci - median| / sigma >
    # threshold): identical pixels are replaced. In place, to allocate one frame-sized array less.
    scale = np.asarray(sigma, dtype=sci.dtype)
    deviation = np.subtract(data, smooth, dtype=sci.dtype)
    np.abs(deviation, out=deviation)
    np.divide(deviation, scale, out=deviation)
    hits = deviation > threshold
    del deviation
    hits &= ~geometry.protected_mask(sci.shape[0])
    cleaned = np.where(hits, smooth, sci)
    return CosmicResult(cleaned=cleaned, mask=hits, info={"sigma": sigma})


def median_of_error(variance: np.ndarray) -> np.floating:
    """``np.median(ERR)`` from the variance (ERR squared), as the tutorial's ``np.median(err)``.

    The square root is monotonic, so the middle values of the variance are the squares of the
    middle values of ERR: only those two are square-rooted, and their mean is taken in float32 as
    numpy does for the tutorial's float32 ERR. Exact for float32 ERR, whose square float64 holds
    exactly. The two middle values come from :func:`middle_values` (tests pin it to ``np.median``).
    """
    low, high = middle_values(variance.ravel())
    return np.mean(np.sqrt(np.array([low, high])).astype(np.float32))


def middle_values(values: np.ndarray, sample: int = 4096) -> tuple[float, float]:
    """The two middle order statistics of a 1D array without NaN (the same one twice if its size is odd).

    ``np.partition`` of a whole frame costs about 2.5 ms; instead, a strided sample brackets the
    middle (ranks within about 5 standard deviations of the sample's middle), one pass counts what
    lies below the bracket, and only the values inside it are partitioned. If the bracket misses
    (it should about once in a few million calls), the whole array is partitioned. Exact either way.
    """
    n = values.size
    half = n // 2
    ranks = (half, half) if n % 2 else (half - 1, half)
    step = n // sample
    if step >= 4:
        picked = np.sort(values[::step])
        m = picked.size
        spread = int(5 * np.sqrt(m) / 2) + 1
        lo = picked[max(m // 2 - spread, 0)]
        hi = picked[min(m // 2 + spread, m - 1)]
        below = int(np.count_nonzero(values < lo))
        inside = values[(values >= lo) & (values <= hi)]
        first, last = ranks[0] - below, ranks[1] - below
        if first >= 0 and last < inside.size:
            part = np.partition(inside, (first, last))
            return float(part[first]), float(part[last])
    part = np.partition(values, ranks)
    return float(part[ranks[0]]), float(part[ranks[1]])


@hookimpl
def longslit_cosmic_methods() -> list[Method]:
    return [
        Method(
            "cosmic",
            "median",
            "Median filter + sigma clip; hits replaced by the median outside protected rows.",
            clean_median,
            uses=("protected",),
        )
    ]
