"""Built-in locate methods: where the source is, and the regions around it.

- ``rows``: the tutorial's fixed row ranges for the aperture, background and protected regions.
- ``auto``: finds the source, traces it across the dispersion and sets every region from what it measured
  (see :func:`locate_auto`).
- ``trace``: the same regions from explicit numbers (trace polynomial, offsets from it), which is what an
  ``auto`` result freezes into (:meth:`~longslit.geometry.Geometry.to_trace_params`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..geometry import APERTURE_COLUMNS, SOURCE_COLUMNS, Band, Geometry
from ..numerics.sources import FoundSource, find_sources
from ..numerics.trace import TraceFit, spatial_profile, trace_source
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
        "Blocks fainter than this are bridged by the polynomial; sources fainter than this in the "
        "spatial profile are not sources.",
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
    Param(
        "max_sources",
        "int",
        1,
        "Sources extracted: the brightest N found (0: every source; 1: the brightest, as before).",
        minimum=0,
    ),
    Param(
        "near_row",
        "float",
        None,
        "With one source: the one nearest this row (at the middle column), not the brightest.",
        unit="rows",
        nullable=True,
    ),
    Param(
        "min_separation",
        "float",
        2.0,
        "Peaks closer than this are one source.",
        minimum=0.5,
        unit="FWHM",
    ),
    Param(
        "follow",
        "str",
        "auto",
        "Sources other than the brightest: traced on their own when isolated and bright enough "
        "(auto), or all on the brightest's trace shape (reference).",
        choices=("auto", "reference"),
    ),
    Param(
        "resolved",
        "str",
        None,
        "Spatially resolved apertures along the source's trace: START:STOP:STEP rows from it "
        '(e.g. "-20:20:2", STOP included), each STEP rows wide.',
        nullable=True,
    ),
)

_TRACE_PARAMS = (
    Param(
        "centre",
        "float",
        None,
        "Trace row at the middle column (required, unless sources are given).",
        unit="rows",
        nullable=True,
    ),
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
    Param(
        "sources",
        "numbers_list",
        None,
        "Several apertures instead (what 'auto' with several sources freezes into): per source along "
        "the slit [centre, slope, curvature, cubic, exclude_below, exclude_above, protect_below, "
        "protect_above], its trace and the rows kept from the background and from cleaning; the "
        "single-trace numbers above are then unused.",
        nullable=True,
    ),
    Param(
        "apertures",
        "numbers_list",
        None,
        "With sources: per aperture [source, shift, below, above, fwhm]: its source's number (1: the "
        "first), its trace's shift from that one, its edges in rows from its trace, its source's FWHM "
        "(0: a slice of a resolved source, summed only).",
        nullable=True,
    ),
    Param("primary", "int", 1, "With sources: the main aperture's number (1: the first).", minimum=1),
    Param(
        "background_width",
        "float",
        60.0,
        "With sources: rows of background used beside each source's excluded rows.",
        minimum=1.0,
        unit="rows",
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
    max_sources: int,
    near_row: float | None,
    min_separation: float,
    follow: str,
    resolved: str | None,
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

    Several sources (``max_sources`` other than 1, or ``near_row``): every source along the slit is
    found (``longslit.numerics.sources.find_sources``: S/N at least ``min_snr`` in the slit collapsed
    along the brightest one's trace, ``min_separation`` FWHM apart), traced, and given its aperture,
    as above but reaching no further than half-way to a neighbour; the background leaves out every
    source found (extracted or not) with the same gap, and the protected regions cover them all
    (:meth:`Geometry.from_traces`). ``resolved`` slices the source's light into apertures along its
    trace instead, for position-velocity work. The default (the brightest source only) is the
    single-source result of before, bit for bit.
    """
    ncols = frame.shape[1]
    bad = frame.mask | ~np.isfinite(frame.sci)
    offsets = _resolved_offsets(resolved)
    if offsets is not None and max_sources != 1:
        raise InputError(
            "locate.resolved slices one source into apertures; leave locate.max_sources at 1 (use "
            "locate.near_row to choose the source)"
        )
    try:
        fit = trace_source(frame.sci, bad, block=block, order=trace_order, min_snr=min_snr)
    except ValueError as exc:
        raise InputError(
            f"locate method 'auto' found no source ({exc}); lower locate.min_snr, or give the rows "
            'yourself with locate.method = "rows" or "trace"'
        ) from None
    if max_sources != 1 or near_row is not None or offsets is not None:
        return _locate_several(
            frame,
            bad,
            fit,
            block=block,
            trace_order=trace_order,
            min_snr=min_snr,
            aperture_fwhm=aperture_fwhm,
            aperture_level=aperture_level,
            background_gap=background_gap,
            background_width=background_width,
            protect_fwhm=protect_fwhm,
            max_sources=max_sources,
            near_row=near_row,
            min_separation=min_separation,
            follow=follow,
            offsets=offsets,
        )
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


def _resolved_offsets(text: str | None) -> np.ndarray | None:
    """``"-20:20:2"`` -> offsets -20, -18, ..., 20 (STOP included); None for None."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(":")
    try:
        start, stop, step = (float(p) for p in parts) if len(parts) == 3 else (None, None, None)
    except ValueError:
        start = None
    if start is None or not (step > 0 and stop >= start):
        raise InputError(
            f"locate.resolved = {text!r} is not START:STOP:STEP rows from the trace with STOP >= START "
            'and STEP > 0, e.g. "-20:20:2"'
        )
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    if count > 1000:
        raise InputError(f"locate.resolved = {text!r} makes {count} apertures; at most 1000: widen the step")
    return start + step * np.arange(count)


def _source_regions(
    frame: Frame,
    bad: np.ndarray,
    coefficients: np.ndarray,
    fwhm: float,
    *,
    aperture_fwhm: float,
    aperture_level: float,
    background_gap: float | None,
    protect_fwhm: float,
    room: tuple[float, float],
) -> dict[str, float]:
    """One source's aperture edges, excluded zone and protected rows (rows from its trace), measured
    from its profile as the single-source ``auto`` does, the aperture reaching no further than
    ``room`` (half-way to each neighbour)."""
    from ..geometry import trace_rows

    trace = trace_rows(list(coefficients), frame.shape[1])
    profile = spatial_profile(frame.sci, bad, trace, fwhm, level=aperture_level)
    floor = aperture_fwhm * fwhm
    below = max(floor, profile.level_below if aperture_level > 0 else 0.0)
    above = max(floor, profile.level_above if aperture_level > 0 else 0.0)
    below, above = min(below, room[0]), min(above, room[1])
    edge = max(below, above)
    extent = max(profile.extent_below, profile.extent_above)
    gap = background_gap if background_gap is not None else max(2.0 * fwhm, extent - edge) + 1.0
    protect = max(edge + protect_fwhm * fwhm, extent)
    return {
        "below": below,
        "above": above,
        "exclude": edge + gap,
        "protect": protect,
        "peak": float(profile.peak),
        "noise": float(profile.noise),
    }


def _locate_several(
    frame: Frame,
    bad: np.ndarray,
    fit: TraceFit,
    *,
    block: int | None,
    trace_order: int,
    min_snr: float,
    aperture_fwhm: float,
    aperture_level: float,
    background_gap: float | None,
    background_width: float,
    protect_fwhm: float,
    max_sources: int,
    near_row: float | None,
    min_separation: float,
    follow: str,
    offsets: np.ndarray | None,
) -> Geometry:
    """:func:`locate_auto` with every source found: several apertures, or slices of one source."""
    try:
        found = find_sources(
            frame.sci,
            bad,
            fit,
            min_snr=min_snr,
            min_separation=min_separation,
            block=block,
            order=trace_order,
            follow=follow,
        )
    except ValueError as exc:
        raise InputError(f"locate method 'auto': {exc}") from None
    rows = np.array([s.coefficients[0] for s in found])
    if near_row is not None:
        chosen = [int(np.argmin(np.abs(rows - near_row)))]
    elif offsets is not None:
        chosen = [int(np.argmin([abs(s.offset) for s in found]))]
    else:
        ranked = sorted(range(len(found)), key=lambda k: -found[k].snr)
        chosen = sorted(ranked[: max_sources or len(found)])
    fwhm = found[0].fwhm
    regions = []
    for k, source in enumerate(found):
        room_below = (rows[k] - rows[k - 1]) / 2.0 if k > 0 else np.inf
        room_above = (rows[k + 1] - rows[k]) / 2.0 if k + 1 < len(found) else np.inf
        regions.append(
            _source_regions(
                frame,
                bad,
                source.coefficients,
                fwhm,
                aperture_fwhm=aperture_fwhm,
                aperture_level=aperture_level,
                background_gap=background_gap,
                protect_fwhm=protect_fwhm,
                room=(room_below, room_above),
            )
        )
    exclude = [(r["exclude"], r["exclude"]) for r in regions]
    protect = [(r["protect"], r["protect"]) for r in regions]
    if offsets is not None:
        (k,) = chosen
        half = (offsets[1] - offsets[0]) / 2.0 if offsets.size > 1 else max(regions[k]["below"], 1.0)
        gap = regions[k]["exclude"] - max(regions[k]["below"], regions[k]["above"])
        exclude[k] = (
            max(exclude[k][0], -offsets[0] + half + gap),
            max(exclude[k][1], offsets[-1] + half + gap),
        )
        protect[k] = (max(protect[k][0], -offsets[0] + half), max(protect[k][1], offsets[-1] + half))
        apertures = [
            (k, float(o), half, half, {"offset": float(o), "kind": "resolved", "source_row": float(rows[k])})
            for o in offsets
        ]
        primary = int(np.argmin(np.abs(offsets)))
    else:
        apertures = [
            (
                k,
                0.0,
                regions[k]["below"],
                regions[k]["above"],
                {
                    "kind": "source",
                    "offset": found[k].offset,
                    "snr": found[k].snr,
                    "fwhm": found[k].fwhm,
                    "traced": found[k].traced,
                    "trace_rms": found[k].trace_rms,
                },
            )
            for k in chosen
        ]
        brightest = max(chosen, key=lambda k: found[k].snr)
        primary = chosen.index(brightest)
    info = _several_info(fit, found, chosen, regions)
    try:
        return Geometry.from_traces(
            frame.shape,
            [list(s.coefficients) for s in found],
            exclude=exclude,
            protect=protect,
            apertures=apertures,
            background_width=background_width,
            primary=primary,
            info=info,
        )
    except ValueError as exc:
        raise InputError(f"locate method 'auto': {exc}") from None


def _several_info(
    fit: TraceFit, found: list[FoundSource], chosen: list[int], regions: list[dict[str, float]]
) -> dict:
    main = max(chosen, key=lambda k: found[k].snr)
    return {
        "method": "auto",
        "centre": float(found[main].coefficients[0]),
        "fwhm": float(found[main].fwhm),
        "trace_rms": float(found[main].trace_rms),
        "blocks_used": int(fit.used.sum()),
        "blocks": int(fit.used.size),
        "block_columns": fit.columns.tolist(),
        "block_centres": fit.centres.tolist(),
        "profile_peak": regions[main]["peak"],
        "profile_noise": regions[main]["noise"],
        "sources_found": len(found),
        "source_rows": [float(s.coefficients[0]) for s in found],
        "source_snr": [float(s.snr) for s in found],
        "sources_extracted": len(chosen),
    }


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
    sources: list[list[float]] | None,
    apertures: list[list[float]] | None,
    primary: int,
    background_width: float,
) -> Geometry:
    """Regions around a trace given as numbers: the ``auto`` method's result, frozen into a recipe.

    The trace row in column ``c`` is ``centre + slope * x + curvature * x**2 + cubic * x**3`` with
    ``x = c - (ncols - 1) / 2`` (the middle column). Every region is an offset from it in each column;
    pixels cut by an aperture edge count by their covered fraction. The aperture need not be centred
    on the trace, nor hold it: a negative ``aperture_below`` puts its lower edge above the trace (an
    off-nuclear region of a galaxy, say, extracted along the nucleus's trace).

    ``sources`` and ``apertures`` give several apertures instead (:func:`locate_layout`): what
    :meth:`Geometry.to_trace_params` freezes a result of several sources (or a resolved one) into.
    """
    if sources is not None or apertures is not None:
        if centre is not None:
            raise InputError(
                "locate.centre gives one trace and locate.sources several; give one of them (a frozen "
                "result of several apertures has sources and apertures only)"
            )
        return locate_layout(
            frame, sources=sources, apertures=apertures, primary=primary, background_width=background_width
        )
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


def locate_layout(
    frame: Frame,
    *,
    sources: list[list[float]] | None,
    apertures: list[list[float]] | None,
    primary: int,
    background_width: float,
) -> Geometry:
    """Several apertures from the ``trace`` method's ``sources`` and ``apertures`` (see its params).

    Sources are put in order along the slit (their centres), and so are the apertures (their rows at
    the middle column): a list edited by hand or in the terminal UI names them ``AP1``, ``AP2``, ...
    from the bottom of the slit up, as ``auto`` does. The background leaves out every source's
    excluded rows, extracted or not (:meth:`Geometry.from_traces`).
    """
    if not sources or not apertures:
        raise InputError(
            "locate.sources and locate.apertures go together, each a list of at least one line: "
            "[[centre, slope, curvature, cubic, exclude_below, exclude_above, protect_below, "
            "protect_above], ...] and [[source, shift, below, above, fwhm], ...]"
        )
    for number, line in enumerate(sources, start=1):
        if len(line) != len(SOURCE_COLUMNS):
            raise InputError(
                f"locate.sources line {number} has {len(line)} numbers; it needs {len(SOURCE_COLUMNS)}: "
                f"[{', '.join(SOURCE_COLUMNS)}]"
            )
        if min(line[4:]) < 0:
            raise InputError(
                f"locate.sources line {number}: the excluded and protected rows must not be negative"
            )
    for number, line in enumerate(apertures, start=1):
        if len(line) not in (4, 5):
            raise InputError(
                f"locate.apertures line {number} has {len(line)} numbers; it needs "
                f"[{', '.join(APERTURE_COLUMNS)}] (fwhm may be left out: 0)"
            )
        if not (float(line[0]).is_integer() and 1 <= line[0] <= len(sources)):
            raise InputError(
                f"locate.apertures line {number}: source {line[0]:g} is not one of the "
                f"{len(sources)} in locate.sources (1 to {len(sources)})"
            )
        if line[2] + line[3] <= 0:
            raise InputError(
                f"locate.apertures line {number}: below + above = {line[2] + line[3]:g} rows, but an "
                "aperture needs a positive width"
            )
        if len(line) == 5 and line[4] < 0:
            raise InputError(f"locate.apertures line {number}: the FWHM must not be negative")
    if primary > len(apertures):
        raise InputError(f"locate.primary = {primary} but there are {len(apertures)} apertures")
    for number, line in enumerate(apertures, start=1):
        source = sources[int(line[0]) - 1]
        reach_below, reach_above = line[2] - line[1], line[3] + line[1]
        if reach_below > source[4] or reach_above > source[5]:
            raise InputError(
                f"locate.apertures line {number} reaches {reach_below:g} rows below and {reach_above:g} "
                f"above its source's trace, but the background is kept out only {source[4]:g} and "
                f"{source[5]:g} rows (locate.sources line {int(line[0])}): the background would enter "
                "the aperture; raise exclude_below/exclude_above"
            )
    source_order = sorted(range(len(sources)), key=lambda k: sources[k][0])
    new_index = {old: new for new, old in enumerate(source_order)}
    lines = [sources[k] for k in source_order]
    made = [
        (new_index[int(line[0]) - 1], float(line[1]), float(line[2]), float(line[3]),
         float(line[4]) if len(line) == 5 else 0.0)
        for line in apertures
    ]  # fmt: skip
    order = sorted(range(len(made)), key=lambda i: lines[made[i][0]][0] + made[i][1])
    main = order.index(primary - 1)
    made = [made[i] for i in order]
    centre = lines[made[main][0]][0] + made[main][1]
    specs = []
    for which, shift, below, above, fwhm in made:
        row = lines[which][0] + shift
        if fwhm > 0:
            extra = {"kind": "source", "offset": row - centre, "fwhm": fwhm}
        else:
            extra = {"kind": "resolved", "offset": row - centre, "source_row": float(lines[which][0])}
        specs.append((which, shift, below, above, extra))
    info: dict[str, Any] = {
        "method": "trace",
        "centre": float(centre),
        "sources_found": len(lines),
        "source_rows": [float(line[0]) for line in lines],
        "sources_extracted": len(made),
    }
    if made[main][4] > 0:
        info["fwhm"] = made[main][4]
    try:
        return Geometry.from_traces(
            frame.shape,
            [line[:4] for line in lines],
            exclude=[(line[4], line[5]) for line in lines],
            protect=[(line[6], line[7]) for line in lines],
            apertures=specs,
            background_width=background_width,
            primary=main,
            info=info,
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
