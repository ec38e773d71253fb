"""The longslit background method ``skymedian``: a sigma-clipped median of each column's sky rows.

A small, complete plugin, meant to be copied:

1. the algorithm is a plain function of the step's inputs (here a ``Frame`` and a ``Geometry``) and
   its parameters, returning the step's product (a ``BackgroundFit``); it can be tested on its own;
2. ``longslit_background_methods`` is the hook: it returns the ``Method`` record that names the
   function and declares its parameters as data, from which longslit builds the recipe keys, the
   ``--set`` options, ``longslit steps`` and the terminal UI's form.
"""

from __future__ import annotations

import numpy as np

from longslit import BackgroundFit, Frame, Geometry, InputError, Method, Param, hookimpl

#: Variance of the median of n Gaussian values, in units of sigma**2 / n (its asymptotic efficiency).
MEDIAN_VARIANCE_FACTOR = np.pi / 2


def sky_median(
    frame: Frame,
    geometry: Geometry,
    *,
    sigma: float = 3.0,
    maxiters: int = 5,
    use_mask: bool = True,
) -> BackgroundFit:
    """The background of each column: the sigma-clipped median of its pixels in the background regions.

    The model is flat along each column (the same value in every row), so it suits a sky that does not
    change along the slit; the built-in ``polynomial`` method follows a gradient.

    Parameters
    ----------
    sigma : float
        Clip pixels further than this many standard deviations from the column's median
        (``astropy.stats.sigma_clip``, both sides).
    maxiters : int
        Most rounds of clipping.
    use_mask : bool
        Leave out pixels the frame's mask flags (DQ bits, non-finite values).

    Returns
    -------
    BackgroundFit
        ``basis`` is a column of ones (one coefficient per column, the level) and ``covariance`` its
        variance: ``(pi / 2) * s**2 / n`` for the median of ``n`` pixels of variance ``s**2``, where
        ``s**2`` is the mean of the frame's variance (ERR squared) over the pixels kept, or their
        clipped scatter when the frame has no ERR. Through them the extraction adds the uncertainty of
        the subtracted sky to the spectrum's.
    """
    from astropy.stats import sigma_clip

    nrows, ncols = frame.shape
    data = frame.sci.astype(np.float64)
    use = geometry.background_mask(nrows) & np.isfinite(data)
    if use_mask:
        use &= ~frame.mask
    clipped = sigma_clip(
        np.ma.masked_array(data, mask=~use),
        sigma=sigma,
        maxiters=maxiters,
        axis=0,
        cenfunc="median",
        stdfunc="std",
    )
    kept = use & ~np.ma.getmaskarray(clipped)
    count = kept.sum(axis=0)
    fitted = count > 0
    if not fitted.any():
        raise InputError("no column has a usable pixel in the background regions; widen locate.background")
    level = np.zeros(ncols)
    level[fitted] = np.ma.median(np.ma.masked_array(data, mask=~kept)[:, fitted], axis=0).filled(0.0)
    if frame.variance is not None:
        pixel_variance = np.where(kept, frame.variance, 0.0).sum(axis=0) / np.maximum(count, 1)
    else:
        mean = np.where(kept, data, 0.0).sum(axis=0) / np.maximum(count, 1)
        pixel_variance = np.where(kept, (data - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count - 1, 1)
    variance = MEDIAN_VARIANCE_FACTOR * pixel_variance / np.maximum(count, 1)
    empty = np.flatnonzero(~fitted)
    if empty.size:
        # A column with no usable sky pixel (a bad column) takes its neighbours' level.
        good = np.flatnonzero(fitted)
        level[empty] = np.interp(empty, good, level[good])
        variance[empty] = np.interp(empty, good, variance[good])
    return BackgroundFit(
        model=np.repeat(level[None, :], nrows, axis=0),
        basis=np.ones((nrows, 1)),
        covariance=variance[:, None, None],
        used=kept,
        info={"interpolated_columns": empty.tolist(), "pixels_used": int(kept.sum())},
    )


@hookimpl
def longslit_background_methods() -> list[Method]:
    """Offer ``skymedian`` to longslit's background step."""
    return [
        Method(
            step="background",
            name="skymedian",
            summary="Sigma-clipped median of each column over the background regions (flat along the slit).",
            func=sky_median,
            params=(
                Param(
                    "sigma", "float", 3.0, "Clip limit, both sides of the median.", minimum=0.1, unit="sigma"
                ),
                Param("maxiters", "int", 5, "Most rounds of clipping.", minimum=1, maximum=100),
                Param("use_mask", "bool", True, "Leave out pixels flagged bad (DQ, NaN)."),
            ),
        )
    ]
