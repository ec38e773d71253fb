"""Built-in locate methods: where the source is, and the regions around it.

- ``rows``: the tutorial's fixed row ranges for the aperture, background and protected regions.
- ``auto``: finds the source, traces it across the dispersion and sets every region from what it measured
  (see :func:`locate_auto`).
- ``trace``: the same regions from explicit numbers (trace polynomial, offsets from it), which is what an
  ``auto`` result freezes into (:meth:`~longslit.geometry.Geometry.to_trace_params`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..geometry import Band, Geometry
from ..numerics.trace import spatial_profile, trace_source
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare

_AUTO_PARAMS = (
    Param(
        "block",
        "int",
        None,
        "Columns per block when tracing (auto: ncols/24, at least 8).",
        minimum=3,
        unit="columns",
        nullable=True,
    ),
    Param("trace_order", "int", 2, "Polynomial order of the trace in column.", minimum=0, maximum=3),
    Param(
        "min_snr",
        "float",
        5.0,
        "Blocks fainter than this are bridged by the polynomial.",
        minimum=0.0,
        unit="sigma",
    ),
    Param(
        "aperture_fwhm",
        "float",
        1.5,
        "Aperture half-width at least this many FWHM.",
        minimum=0.1,
        maximum=50.0,
        unit="FWHM",
    ),
    Param(
        "aperture_level",
        "float",
        0.005,
        "...and out to where the profile falls below this fraction of its peak (0: FWHM only).",
        minimum=0.0,
        maximum=1.0,
    ),
    Param(
        "background_gap",
        "float",
        None,
        "Rows between aperture and background (auto: the source's extent, at least 2 FWHM).",
        minimum=0.0,
        unit="rows",
        nullable=True,
    ),
    Param("background_width", "float", 60.0, "Rows of background each side.", minimum=1.0, unit="rows"),
    Param(
        "protect_fwhm",
        "float",
        2.0,
        "Protect from cosmic-ray cleaning the aperture plus this many FWHM (or the source's extent).",
        minimum=0.0,
        unit="FWHM",
    ),
)

_TRACE_PARAMS = (
    Param("centre", "float", None, "Trace row at the middle column.", unit="rows", required=True),
    Param("slope", "float", 0.0, "Trace slope.", unit="rows/column"),
    Param("curvature", "float", 0.0, "Quadratic term of the trace.", unit="rows/column^2"),
    Param("cubic", "float", 0.0, "Cubic term of the trace.", unit="rows/column^3"),
    Param(
        "aperture_below",
        "float",
        5.0,
        "Aperture's lower edge, rows below the trace (negative: above it).",
        unit="rows",
    ),
    Param(
        "aperture_above",
        "float",
        5.0,
        "Aperture's upper edge, rows above the trace (negative: below it).",
        unit="rows",
    ),
    Param(
        "background_inner",
        "float",
        15.0,
        "Background starts this far from the trace.",
        minimum=0.0,
        unit="rows",
    ),
    Param(
        "background_outer",
        "float",
        75.0,
        "Background ends this far from the trace.",
        minimum=0.0,
        unit="rows",
    ),
    Param(
        "protect",
        "float",
        None,
        "Rows each side of the trace cosmic-ray cleaning leaves alone (auto: aperture + 3).",
        minimum=0.0,
        unit="rows",
        nullable=True,
    ),
)


@declare(
    Param(
        "aperture",
        "rows",
        None,
        "Rows summed into the spectrum (stop excluded).",
        unit="rows",
        required=True,
    ),
    Param(
        "background",
        "rows_list",
        None,
        "Row ranges the background is fitted over.",
        unit="rows",
        required=True,
    ),
    Param(
        "protected",
        "rows_list",
        None,
        "Row ranges cosmic-ray cleaning leaves alone (auto: aperture +- its width).",
        unit="rows",
        nullable=True,
    ),
)
def locate_rows(
    frame: Frame,
    *,
    aperture: list[int] | None,
    background: list[list[int]] | None,
    protected: list[list[int]] | None,
) -> Geometry:
    """The tutorial's hand-chosen rows, as a per-column geometry.

    Parameters
    ----------
    aperture : [start, stop]
        Rows summed into the spectrum (Python slice: ``stop`` excluded).
    background : list of [start, stop]
        Rows the background is fitted over.
    protected : list of [start, stop], optional
        Rows cosmic-ray cleaning leaves alone. Default: the aperture widened by its own width on each
        side, so the wings of the source and its emission lines are never "cleaned" away.
    """
    nrows, ncols = frame.shape
    if aperture is None:
        raise InputError("locate method 'rows' needs locate.aperture, e.g. aperture = [250, 260]")
    if not background:
        raise InputError("locate method 'rows' needs locate.background, e.g. [[10, 200], [300, 480]]")
    if protected is None:
        width = aperture[1] - aperture[0]
        protected = [[max(aperture[0] - width, 0), min(aperture[1] + width, nrows)]]
    for name, ranges in (
        ("aperture", [aperture]),
        ("background", background),
        ("protected", protected),
    ):
        for start, stop in ranges:
            if stop > nrows:
                raise InputError(
                    f"locate.{name} rows {start}:{stop} lie outside the frame, which has rows "
                    f"0 to {nrows - 1}; choose rows within it"
                )
    overlap = [r for r in background if r[0] < aperture[1] and aperture[0] < r[1]]
    if overlap:
        raise InputError(
            f"locate.background rows {overlap[0][0]}:{overlap[0][1]} overlap the aperture "
            f"{aperture[0]}:{aperture[1]}; background rows must lie outside it"
        )
    trace = np.full(ncols, (aperture[0] + aperture[1] - 1) / 2.0)
    return Geometry(
        trace=trace,
        aperture=Band.from_rows(*aperture, ncols),
        background=tuple(Band.from_rows(*rows, ncols) for rows in background),
        protected=tuple(Band.from_rows(*rows, ncols) for rows in protected),
    )


@declare(*_AUTO_PARAMS)
def locate_auto(
    frame: Frame,
    *,
    block: int | None,
    trace_order: int,
    min_snr: float,
    aperture_fwhm: float,
    aperture_level: float,
    background_gap: float | None,
    background_width: float,
    protect_fwhm: float,
) -> Geometry:
    """Find the source, trace it, and set the aperture, background and protected regions around it.

    The brightest source along the slit is traced block by block of columns (Gaussian fits, then a
    polynomial with outlier rejection; blocks without signal are bridged). Its median profile in
    trace-relative coordinates sets the rest, in rows from the trace in every column:

    - aperture: out to where the profile falls below ``aperture_level`` of its peak (IRAF's ``ylevel``),
      each side, and at least ``aperture_fwhm`` FWHM. For a Gaussian the 1.5 FWHM floor holds 99.96%
      of the flux; real sources have wings, which the level follows;
    - background: a region each side from ``aperture + background_gap`` to ``background_width`` rows
      further, clipped to the frame (a side that does not fit is dropped). The gap defaults to the
      larger of 2 FWHM and the source's measured extent (where its profile sinks into the noise)
      beyond the aperture, plus a row, so the wings of the source stay out of the sky fit;
    - protected from cosmic-ray cleaning: the aperture plus ``protect_fwhm`` FWHM, or the source's
      extent if larger (extended line emission must not be "cleaned").

    Everything measured is in ``geometry.info``; :meth:`Geometry.to_trace_params` turns the trace and
    the regions into the numbers of the ``trace`` method, so a recipe can keep them.
    """
    ncols = frame.shape[1]
    bad = frame.mask | ~np.isfinite(frame.sci)
    try:
        fit = trace_source(frame.sci, bad, block=block, order=trace_order, min_snr=min_snr)
    except ValueError as exc:
        raise InputError(
            f"locate method 'auto' found no source ({exc}); lower locate.min_snr, or give the rows "
            'yourself with locate.method = "rows" or "trace"'
        ) from None
    columns = np.arange(ncols)
    trace = fit(columns)
    profile = spatial_profile(frame.sci, bad, trace, fit.fwhm, level=aperture_level)
    floor = aperture_fwhm * fit.fwhm
    below = max(floor, profile.level_below if aperture_level > 0 else 0.0)
    above = max(floor, profile.level_above if aperture_level > 0 else 0.0)
    edge = max(below, above)
    extent = max(profile.extent_below, profile.extent_above)
    gap = background_gap if background_gap is not None else max(2.0 * fit.fwhm, extent - edge) + 1.0
    protect = max(edge + protect_fwhm * fit.fwhm, extent)
    coefficients = [float(c) for c in fit.coefficients]
    info = {
        "method": "auto",
        "centre": coefficients[0],  # the trace row at the middle column
        "fwhm": float(fit.fwhm),
        "trace_rms": float(fit.rms),
        "blocks_used": int(fit.used.sum()),
        "blocks": int(fit.used.size),
        "block_columns": fit.columns.tolist(),
        "block_centres": fit.centres.tolist(),
        "profile_peak": float(profile.peak),
        "profile_noise": float(profile.noise),
        "extent_below": float(profile.extent_below),
        "extent_above": float(profile.extent_above),
    }
    try:
        return Geometry.from_trace(
            frame.shape,
            coefficients,
            aperture_below=below,
            aperture_above=above,
            background_inner=edge + gap,
            background_outer=edge + gap + background_width,
            protect=protect,
            info=info,
        )
    except ValueError as exc:
        raise InputError(f"locate method 'auto': {exc}") from None


@declare(*_TRACE_PARAMS)
def locate_trace(
    frame: Frame,
    *,
    centre: float | None,
    slope: float,
    curvature: float,
    cubic: float,
    aperture_below: float,
    aperture_above: float,
    background_inner: float,
    background_outer: float,
    protect: float | None,
) -> Geometry:
    """Regions around a trace given as numbers: the ``auto`` method's result, frozen into a recipe.

    The trace row in column ``c`` is ``centre + slope * x + curvature * x**2 + cubic * x**3`` with
    ``x = c - (ncols - 1) / 2`` (the middle column). Every region is an offset from it in each column;
    pixels cut by an aperture edge count by their covered fraction. The aperture need not be centred
    on the trace, nor hold it: a negative ``aperture_below`` puts its lower edge above the trace (an
    off-nuclear region of a galaxy, say, extracted along the nucleus's trace).
    """
    if centre is None:
        raise InputError("locate method 'trace' needs locate.centre, the trace row at the middle column")
    if background_outer <= background_inner:
        raise InputError(
            f"locate.background_outer = {background_outer:g} must exceed locate.background_inner = "
            f"{background_inner:g} (both in rows from the trace)"
        )
    if aperture_below + aperture_above <= 0:
        raise InputError(
            f"locate.aperture_below + locate.aperture_above = {aperture_below + aperture_above:g} rows, "
            "but the aperture needs a positive width: raise one of them"
        )
    if background_inner < max(aperture_below, aperture_above):
        raise InputError(
            f"locate.background_inner = {background_inner:g} rows from the trace lies inside the aperture, "
            f"which reaches {max(aperture_below, aperture_above):g} rows from it: raise background_inner "
            "or bring the aperture back"
        )
    if protect is None:
        protect = max(aperture_below, aperture_above) + 3.0
    try:
        return Geometry.from_trace(
            frame.shape,
            [centre, slope, curvature, cubic],
            aperture_below=aperture_below,
            aperture_above=aperture_above,
            background_inner=background_inner,
            background_outer=background_outer,
            protect=protect,
            info={"method": "trace", "centre": float(centre)},
        )
    except ValueError as exc:
        raise InputError(f"locate method 'trace': {exc}") from None


def geometry_to_params(geometry: Geometry) -> dict[str, float | str]:
    """The ``trace`` method's parameters that reproduce ``geometry`` (:meth:`Geometry.to_trace_params`)."""
    return geometry.to_trace_params()


@hookimpl
def longslit_locate_methods() -> list[Method]:
    return [
        Method(
            "locate",
            "rows",
            "Fixed row ranges for the aperture, background and cosmic-ray-protected regions.",
            locate_rows,
        ),
        Method(
            "locate",
            "auto",
            "Find and trace the source; aperture, background and protected rows follow the trace.",
            locate_auto,
        ),
        Method(
            "locate",
            "trace",
            "Regions around a trace given as numbers (what 'auto' freezes into a recipe).",
            locate_trace,
        ),
    ]
