"""Built-in cosmic-ray method ``median``: the tutorial's median filter and sigma clip."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..geometry import Geometry
from ..numerics.indices import nonzero_2d
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
    Param(
        "model",
        "str",
        "square",
        "What a pixel is compared with: a square median (tutorial), or medians along the slit and "
        "along the dispersion (keeps sky lines and traces).",
        choices=("square", "slit"),
    ),
    Param(
        "noise",
        "str",
        "frame",
        "Noise per pixel from the variance, or one sigma for the frame (tutorial).",
        choices=("frame", "pixel"),
    ),
)
def clean_median(
    frame: Frame,
    geometry: Geometry,
    *,
    size: int,
    threshold: float,
    sigma: float | None,
    model: str,
    noise: str,
) -> CosmicResult:
    """Replace pixels that stand out from their median-filtered neighbourhood.

    With ``model = "square"`` (the tutorial's), a pixel is a hit when ``|sci - median| / sigma >
    threshold`` for the ``size`` x ``size`` median; hits are replaced by the median, except inside the
    geometry's protected regions (the source), which are left as they are.

    With ``model = "slit"``, a pixel is a hit when it stands above both the median of the ``size``
    pixels along the slit (its column) and that of the ``size`` pixels along the dispersion (its row)
    by ``threshold`` times its noise. A sky emission line is uniform along the slit, so the first
    median follows it; a source's trace is smooth along the dispersion, so the second follows that; a
    cosmic ray stands above both. Hits are replaced by the median along the slit.

    Parameters
    ----------
    size : int
        Width of the median filter (odd): the square's side, or the length of each line with
        ``model = "slit"``.
    threshold : float
        Clip level in units of ``sigma``.
    sigma : float, optional
        Noise level; default the median of the frame's ERR (the tutorial's choice), or, without ERR,
        a robust (MAD) estimate of the scatter about the filtered image. With ``noise = "pixel"`` it
        is used only where the frame has no ERR.
    model : {"square", "slit"}
        The comparison, above.
    noise : {"frame", "pixel"}
        ``"frame"``: one ``sigma`` for every pixel (the tutorial's). ``"pixel"``: each pixel's own,
        the square root of the median of the variance along the slit (so that a hit, whose ERR the
        calibration pipeline computed from its own counts, does not hide behind it); a sky line's
        pixels are noisier than the sky between lines, and a frame-wide sigma marks them as hits.
    """
    if size % 2 == 0:
        raise InputError(f"cosmic.size = {size} must be odd (the filter is centred on the pixel)")
    if model == "slit":
        return _clean_slit(frame, geometry, size, threshold, sigma, noise)
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
    if noise == "pixel" and frame.variance is not None:
        from scipy.ndimage import median_filter

        level = np.sqrt(median_filter(frame.variance, size=(size, 1), mode="nearest"))
        hits = np.abs(data - smooth) > threshold * np.maximum(level, np.finfo(np.float32).tiny)
        hits &= ~geometry.protected_mask(sci.shape[0])
        return CosmicResult(cleaned=np.where(hits, smooth, sci), mask=hits, info={"noise": "pixel"})
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


def _clean_slit(
    frame: Frame, geometry: Geometry, size: int, threshold: float, sigma: float | None, noise: str
) -> CosmicResult:
    """``clean_median`` with ``model = "slit"``: medians along the slit and along the dispersion.

    The medians are needed only where a pixel could be a hit, so they are taken only there: a pixel
    is a candidate when it stands above its column's median by half the threshold times the column's
    lowest noise (a hit stands above the median along the slit by the whole threshold times a noise at
    least that low, and the median of a column follows the one along the slit to far better than half
    the threshold). Each candidate's ``size`` neighbours along the slit and along the dispersion are
    gathered (edges repeated, as ``scipy.ndimage.median_filter(mode="nearest")``) and their medians
    taken. On 3C 120 a few thousand of 261,632 pixels are candidates; full-frame median filters cost
    40 ms each there, and 2.5 s each on a 4096 x 4096 frame.
    """
    sci = frame.sci
    nrows, ncols = sci.shape
    usable = np.isfinite(sci)
    data = sci  # in its own precision: a float64 copy of a 4096 x 4096 frame costs 0.14 s
    if not usable.all():
        # A NaN must not win a median: the column's median of its finite values stands in for it.
        from ..numerics.trace import nanmedian_rows

        fill = np.nan_to_num(nanmedian_rows(np.where(usable, sci, np.nan).T)[:, 0])
        data = np.where(usable, sci, fill[None, :].astype(sci.dtype))
    pixel_noise = noise == "pixel" and frame.variance is not None
    if pixel_noise:
        lowest = np.fmin.reduce(frame.variance, axis=0)  # NaN variances left out
        floor = np.sqrt(np.where(np.isfinite(lowest), np.maximum(lowest, 0.0), 0.0))
    else:
        if sigma is None:
            if frame.variance is not None:
                sigma = float(median_of_error(frame.variance))
            else:
                from astropy.stats import mad_std

                sigma = float(mad_std(data - np.median(data, axis=0)[None, :]))
        if not sigma > 0:
            raise InputError(f"the noise level sigma is {sigma}; set cosmic.sigma to a positive value")
        floor = np.full(ncols, float(sigma))
    # The column's level from at most 256 of its rows: plenty for a median, and 20 ms instead of 0.15 s
    # on a 4096 x 4096 frame.
    sample = np.ascontiguousarray(data[:: max(1, nrows // 256)].T, dtype=np.float64)
    middle = sample.shape[1] // 2
    level_of_column = np.partition(sample, middle, axis=1)[:, middle]
    limit = (level_of_column + 0.5 * threshold * floor).astype(data.dtype)
    candidate = data > limit[None, :]
    candidate &= usable
    candidate &= ~geometry.protected_mask(nrows)
    rows, cols = nonzero_2d(candidate)
    hits = np.zeros(sci.shape, dtype=bool)
    cleaned = sci.copy()
    if rows.size:
        half = size // 2
        offsets = np.arange(-half, half + 1)
        down = np.clip(rows[:, None] + offsets[None, :], 0, nrows - 1)
        across_cols = np.clip(cols[:, None] + offsets[None, :], 0, ncols - 1)
        along = _middle(data[down, cols[:, None]].astype(np.float64))
        across = _middle(data[rows[:, None], across_cols].astype(np.float64))
        level = np.sqrt(_middle(frame.variance[down, cols[:, None]])) if pixel_noise else floor[cols]
        level = np.maximum(level, np.finfo(np.float32).tiny)
        # A cosmic ray adds charge: only excesses count, over both medians.
        value = data[rows, cols].astype(np.float64)
        hit = np.minimum(value - along, value - across) > threshold * level
        hits[rows[hit], cols[hit]] = True
        cleaned[rows[hit], cols[hit]] = along[hit].astype(sci.dtype)
    info = {"model": "slit", "noise": "pixel" if pixel_noise else "frame", "candidates": int(rows.size)}
    return CosmicResult(cleaned=cleaned, mask=hits, info=info)


def _middle(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=1)`` for rows of an odd length: the middle of each sorted row (NaN for
    a row holding one, as numpy gives). Twice as fast as np.median's partition on 3C 120's few
    thousand candidates' windows of 5, and the same values: the median of an odd count is one of them.
    """
    middle = np.sort(values, axis=1)[:, values.shape[1] // 2]
    if values.dtype.kind == "f":
        middle[np.isnan(values).any(axis=1)] = np.nan
    return middle


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

    ``np.partition`` of a whole frame costs about 2.5 ms; instead, a sample spread over the whole array
    (:func:`sample_positions`) brackets the middle (ranks within about 5 standard deviations of the
    sample's middle), one pass counts what lies below the bracket, and only the values inside it are
    partitioned. If the bracket misses (it should about once in a few million calls), the whole array
    is partitioned. Exact either way.
    """
    n = values.size
    half = n // 2
    ranks = (half, half) if n % 2 else (half - 1, half)
    bracket = middle_bracket(values, sample)
    if bracket is not None:
        lo, hi = bracket
        below = int(np.count_nonzero(values < lo))
        inside = values[(values >= lo) & (values <= hi)]
        first, last = ranks[0] - below, ranks[1] - below
        if first >= 0 and last < inside.size:
            part = np.partition(inside, (first, last))
            return float(part[first]), float(part[last])
    part = np.partition(values, ranks)
    return float(part[ranks[0]]), float(part[ranks[1]])


#: The fractional parts of ``i / golden ratio`` spread over [0, 1) more evenly than random numbers, for
#: any count, and with no period (a Weyl sequence).
_INVERSE_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def sample_positions(n: int, sample: int) -> np.ndarray:
    """``sample`` positions spread evenly over ``range(n)`` with no stride a frame's rows could share.

    A plain stride (``values[:: n // sample]``) of a flattened frame samples one column when the
    stride equals the row length (any frame of 4096 rows: the stride is then ``ncols``), and a few
    columns when it divides it; a bad or bright column then moves the whole bracket.
    """
    return (np.modf(np.arange(sample) * _INVERSE_GOLDEN)[0] * n).astype(np.intp)


def middle_bracket(values: np.ndarray, sample: int = 4096) -> tuple[float, float] | None:
    """Two values of a sample of ``values`` that should hold its middle between them (None: too few)."""
    if values.size < 4 * sample:
        return None
    picked = np.sort(values[sample_positions(values.size, sample)])
    m = picked.size
    spread = int(5 * np.sqrt(m) / 2) + 1
    return float(picked[max(m // 2 - spread, 0)]), float(picked[min(m // 2 + spread, m - 1)])


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
