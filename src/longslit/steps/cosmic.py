"""Built-in cosmic-ray method ``median``: the tutorial's median filter and sigma clip."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..geometry import Geometry
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param
from ..products import CosmicResult


def median_filter_zero_padded(image: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` median filter with zeros beyond the edges, as ``scipy.signal.medfilt``.

    Tests pin it to ``medfilt`` bit for bit. (In scipy 1.17 ``medfilt`` itself calls
    ``ndimage.rank_filter``, so this is no faster; it is where a faster filter will go.)
    """
    from scipy import ndimage

    return ndimage.median_filter(image, size=size, mode="constant", cval=0.0)


def clean_median(
    frame: Frame,
    geometry: Geometry,
    *,
    size: int = 5,
    threshold: float = 8.0,
    sigma: float | None = None,
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
            sigma = float(np.median(np.sqrt(frame.variance)))
        else:
            from astropy.stats import mad_std

            sigma = float(mad_std(data - smooth))
    if not sigma > 0:
        raise InputError(f"the noise level sigma is {sigma}; set cosmic.sigma to a positive value")
    # Same arithmetic, in the data's own precision, as the tutorial: identical pixels are replaced.
    scale = np.asarray(sigma, dtype=sci.dtype)
    hits = (np.abs(data - smooth) / scale) > threshold
    hits &= ~geometry.protected_mask(sci.shape[0])
    cleaned = np.where(hits, smooth, sci)
    return CosmicResult(cleaned=cleaned, mask=hits, info={"sigma": sigma})


@hookimpl
def longslit_cosmic_methods() -> list[Method]:
    return [
        Method(
            "cosmic",
            "median",
            "Median filter + sigma clip; hits replaced by the median outside protected rows.",
            clean_median,
            (
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
            ),
        )
    ]
