"""What the locate step finds, per column: the trace centre, the aperture and the regions around it.

Every region is a :class:`Band`: a lower and an upper edge in each column, in row coordinates where
pixel centres sit at integer rows. The tutorial's rows ``250:260`` (Python slice, stop excluded) are
the band from 249.5 to 259.5 in every column. A tilted trace simply has edges that change with the
column, so later steps (cleaning, background, extraction) work the same for both.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Band:
    """A region between two edges in each column (``lower < upper``, row coordinates)."""

    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def from_rows(cls, start: int, stop: int, ncols: int) -> Band:
        """The band covering rows ``start .. stop - 1`` in every column (a Python slice)."""
        return cls(np.full(ncols, start - 0.5), np.full(ncols, stop - 0.5))

    @classmethod
    def around(cls, centre: np.ndarray, below: float, above: float) -> Band:
        """The band from ``centre - below`` to ``centre + above`` in each column."""
        centre = np.asarray(centre, dtype=np.float64)
        return cls(centre - below, centre + above)

    def as_rows(self) -> list[int] | None:
        """The ``[start, stop]`` row range if the band is the same whole rows in every column."""
        lower, upper = self.lower + 0.5, self.upper + 0.5
        if (
            np.all(lower == lower[0])
            and np.all(upper == upper[0])
            and float(lower[0]).is_integer()
            and float(upper[0]).is_integer()
        ):
            return [int(lower[0]), int(upper[0])]
        return None

    def coverage(self, nrows: int, rows: slice | None = None) -> np.ndarray:
        """Fraction of each pixel inside the band, values in [0, 1].

        Pixels cut by an edge count by the fraction of their height inside it. The result covers all
        ``nrows`` rows, or only ``rows`` (e.g. :meth:`row_span`) to spare work on a narrow band.
        """
        start, stop, _ = (rows or slice(0, nrows)).indices(nrows)
        rows = np.arange(start, stop, dtype=np.float64)[:, None]
        top = np.minimum(self.upper[None, :], rows + 0.5)
        bottom = np.maximum(self.lower[None, :], rows - 0.5)
        return np.clip(top - bottom, 0.0, 1.0)

    def contains(self, nrows: int) -> np.ndarray:
        """Boolean (nrows, ncols): pixels whose centre lies inside the band."""
        if not (np.isfinite(self.lower).all() and np.isfinite(self.upper).all()):
            rows = np.arange(nrows, dtype=np.float64)[:, None]
            return (rows >= self.lower[None, :]) & (rows < self.upper[None, :])
        # Only the rows the band can reach are compared; the rest are outside.
        inside = np.zeros((nrows, self.lower.shape[0]), dtype=bool)
        span = self.row_span(nrows)
        rows = np.arange(span.start, span.stop, dtype=np.float64)[:, None]
        inside[span] = (rows >= self.lower[None, :]) & (rows < self.upper[None, :])
        return inside

    def row_span(self, nrows: int) -> slice:
        """The smallest row slice holding the band in every column (clipped to the frame)."""
        start = max(int(np.floor(self.lower.min() + 0.5)), 0)
        stop = min(int(np.ceil(self.upper.max() + 0.5)), nrows)
        return slice(start, max(start, stop))


#: The parameters of the ``trace`` locate method, in the order :meth:`TraceModel.to_params` gives them.
TRACE_PARAMS = (
    "centre",
    "slope",
    "curvature",
    "cubic",
    "aperture_below",
    "aperture_above",
    "background_inner",
    "background_outer",
    "protect",
)


@dataclass(frozen=True)
class TraceModel:
    """A trace polynomial and the regions around it as offsets from it (apall's way).

    Attributes
    ----------
    coefficients : tuple of float
        Power series in ``column - reference``: the row at the reference column, the slope, ...
    reference : float
        The column the series is centred on (the middle column, ``(ncols - 1) / 2``).
    aperture_below, aperture_above : float
        Rows from the trace to the aperture's lower and upper edges (negative: past the trace).
    background_inner, background_outer : float
        Rows from the trace to the inner and outer edges of the background regions, one each side.
    protect : float
        Rows each side of the trace that cosmic-ray cleaning leaves alone.
    background_sides : tuple of str
        Which of the two background regions fit in the frame (``"below"``, ``"above"``).
    """

    coefficients: tuple[float, ...]
    reference: float
    aperture_below: float
    aperture_above: float
    background_inner: float
    background_outer: float
    protect: float
    background_sides: tuple[str, ...] = ("below", "above")

    def rows(self, ncols: int) -> np.ndarray:
        """The trace row in each of ``ncols`` columns."""
        return trace_rows(list(self.coefficients), ncols)

    def to_params(self) -> dict[str, float | str]:
        """The ``trace`` locate method's parameters that reproduce this model exactly.

        Raises
        ------
        ValueError
            If the polynomial has terms beyond the cubic, which ``trace`` cannot hold.
        """
        coefficients = list(self.coefficients)
        if len(coefficients) > 4 and any(c != 0 for c in coefficients[4:]):
            raise ValueError("the trace has terms beyond the cubic; the 'trace' method holds up to cubic")
        values = dict(zip(TRACE_PARAMS[:4], [*coefficients, 0.0, 0.0, 0.0, 0.0][:4], strict=True))
        for name in TRACE_PARAMS[4:]:
            values[name] = getattr(self, name)
        return {"method": "trace", **{k: float(v) for k, v in values.items()}}


#: Numbers per line of the ``trace`` method's ``sources`` and ``apertures`` (:class:`Layout`).
SOURCE_COLUMNS = (
    "centre",
    "slope",
    "curvature",
    "cubic",
    "exclude_below",
    "exclude_above",
    "protect_below",
    "protect_above",
)
APERTURE_COLUMNS = ("source", "shift", "below", "above", "fwhm")


@dataclass(frozen=True)
class Layout:
    """What :meth:`Geometry.from_traces` was given: several apertures as numbers, so they freeze into
    the ``trace`` method's parameters (:meth:`to_params`) and replay exactly.

    Attributes
    ----------
    sources : tuple of tuple
        Per source along the slit: its trace (power series, up to the cubic, :func:`trace_rows`), the
        rows below and above it no background may enter, and the rows below and above it protected
        from cosmic-ray cleaning.
    apertures : tuple of tuple
        Per aperture: ``(source index, shift, below, above, fwhm)``: the trace it follows, its own
        trace's shift from it, its edges' offsets from its own trace, its source's FWHM (0: a slice
        of a resolved source, with no profile of its own).
    background_width : float
        Rows of background used beside each excluded zone.
    primary : int
        Index of the main aperture.
    """

    sources: tuple[tuple[float, ...], ...]
    apertures: tuple[tuple[int, float, float, float, float], ...]
    background_width: float
    primary: int

    def to_params(self) -> dict[str, Any]:
        """The ``trace`` method's ``sources``, ``apertures``, ``primary`` and ``background_width``
        (numbers, 1-based source and aperture numbers) that rebuild this layout exactly."""
        sources = []
        for line in self.sources:
            coefficients = list(line[:-4])
            if len(coefficients) > 4 and any(c != 0 for c in coefficients[4:]):
                raise ValueError("a trace has terms beyond the cubic; the 'trace' method holds up to cubic")
            sources.append([float(c) for c in [*coefficients, 0.0, 0.0, 0.0, 0.0][:4] + list(line[-4:])])
        apertures = [
            [float(k + 1), float(shift), float(below), float(above), float(fwhm)]
            for k, shift, below, above, fwhm in self.apertures
        ]
        return {
            "method": "trace",
            "sources": sources,
            "apertures": apertures,
            "primary": self.primary + 1,
            "background_width": float(self.background_width),
        }


@dataclass(frozen=True, eq=False)
class Aperture:
    """One aperture of a geometry with several: a named band along its own trace.

    Attributes
    ----------
    name : str
        ``AP1``, ``AP2``, ... in order along the slit (rows increasing).
    trace : ndarray (ncols,)
        Its own trace in each column: its source's, or for a spatially resolved aperture the trace it
        is a slice of, shifted by its offset (the slice's centre).
    band : Band
        Rows summed (or weighted) into its spectrum.
    info : dict
        Plain numbers for display and output: ``row`` (its centre at the middle column), ``offset``
        (rows from the reference trace), and, for a found source, ``snr``, ``fwhm``, ``traced``.
    model : TraceModel, optional
        Its trace polynomial and band as offsets from it.
    """

    name: str
    trace: np.ndarray
    band: Band
    info: dict[str, Any] = field(default_factory=dict)
    model: TraceModel | None = None

    @property
    def row(self) -> float:
        """Its trace's row at the middle column (its position on the slit: the source's centre, or
        the slice's for a resolved aperture)."""
        middle = (self.trace.shape[0] - 1) / 2.0
        return float(np.interp(middle, np.arange(self.trace.shape[0]), self.trace))


@dataclass(frozen=True, eq=False)
class Geometry:
    """Trace, aperture, background regions and cosmic-ray-protected regions, per column.

    Attributes
    ----------
    trace : ndarray (ncols,)
        Row of the source centre in each column.
    aperture : Band
        Rows summed (or weighted) into the spectrum.
    background : tuple of Band
        Rows used to fit the background, usually one band each side of the aperture.
    protected : tuple of Band
        Rows where cosmic-ray cleaning must not touch the data (the source and its wings).
    info : dict
        What the locate method measured or was given, as plain numbers, for display.
    model : TraceModel, optional
        The trace polynomial and the regions' offsets from it, when the regions follow a trace
        (:meth:`from_trace`); :meth:`to_trace_params` freezes it into a recipe.
    apertures : tuple of Aperture
        Several apertures (sources along the slit, or slices along one trace), in order along the
        slit; empty for one aperture (``trace`` and ``aperture`` are then all there is). With
        several, ``trace``, ``aperture`` and ``model`` are those of the primary one,
        ``apertures[primary]``, so code that knows of one aperture sees the main source.
    primary : int
        The index in ``apertures`` of the main aperture (the brightest source, or the nucleus).
    """

    trace: np.ndarray
    aperture: Band
    background: tuple[Band, ...]
    protected: tuple[Band, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    model: TraceModel | None = None
    apertures: tuple[Aperture, ...] = ()
    primary: int = 0
    layout: Layout | None = None

    def each(self) -> tuple[Aperture, ...]:
        """Every aperture: :attr:`apertures`, or the one aperture as an :class:`Aperture` named AP1."""
        if self.apertures:
            return self.apertures
        centre = float(np.interp((self.ncols - 1) / 2.0, np.arange(self.ncols), self.trace))
        return (Aperture("AP1", self.trace, self.aperture, {"row": centre, "offset": 0.0}, self.model),)

    def for_aperture(self, index: int) -> Geometry:
        """This geometry with one aperture only, ``each()[index]`` (the background and protected
        regions, shared, unchanged): what a method that extracts one aperture is given."""
        chosen = self.each()[index]
        return replace(
            self,
            trace=chosen.trace,
            aperture=chosen.band,
            model=chosen.model,
            apertures=(),
            primary=0,
            layout=None,
        )

    @classmethod
    def from_traces(
        cls,
        shape: tuple[int, int],
        traces: Sequence[Sequence[float]],
        *,
        exclude: Sequence[tuple[float, float]],
        protect: Sequence[tuple[float, float]],
        apertures: Sequence[tuple[int, float, float, dict[str, Any]]],
        background_width: float,
        primary: int = 0,
        min_background_rows: float = 3.0,
        info: dict[str, Any] | None = None,
    ) -> Geometry:
        """Several apertures on several traces, with background regions shared by all of them.

        Parameters
        ----------
        shape : (nrows, ncols)
            The frame's shape.
        traces : list of coefficient lists
            Each source's trace (power series, :func:`trace_rows`), in order along the slit.
        exclude : list of (below, above)
            Rows below and above each trace that no background region may enter (the source's
            aperture, its extent and a margin).
        protect : list of (below, above)
            Rows below and above each trace that cosmic-ray cleaning leaves alone.
        apertures : list of (trace index, shift, below, above, info)
            Each aperture, in order along the slit: the trace it follows, its own trace's shift from
            that one (rows: a slice of a resolved source; 0 for a source's own aperture), and its
            edges' offsets from its own trace.
        background_width : float
            Rows of background beside each excluded zone; the sky between two sources is used up to
            this far from each (all of it when they are closer than twice this).
        primary : int
            Which aperture is the main one (:attr:`trace`, :attr:`aperture` and :attr:`model`).

        Raises
        ------
        ValueError
            If an aperture misses the frame, or no background region fits.
        """
        nrows, ncols = shape
        bottom, top = -0.5, nrows - 0.5
        rows = [trace_rows(list(c), ncols) for c in traces]
        # The background: the gaps between excluded zones (clipped to the frame), each used up to
        # background_width rows from the zone beside it, and the rows beyond the first and last.
        zones = [(t - lo, t + hi) for t, (lo, hi) in zip(rows, exclude, strict=True)]
        candidates = [(zones[0][0] - background_width, zones[0][0])]
        for (_, upper), (lower, _) in itertools.pairwise(zones):
            if np.all(lower - upper > 2 * background_width):
                candidates += [(upper, upper + background_width), (lower - background_width, lower)]
            else:
                candidates.append((upper, lower))
        candidates.append((zones[-1][1], zones[-1][1] + background_width))
        background = []
        for lower, upper in candidates:
            band = Band(np.clip(lower, bottom, top), np.clip(upper, bottom, top))
            if float(np.min(band.upper - band.lower)) >= min_background_rows:
                background.append(band)
        if not background:
            raise ValueError(
                f"no background region of {min_background_rows:g} rows fits in the frame beside the "
                f"{len(rows)} sources; bring the background closer or extract fewer sources"
            )
        protected = tuple(
            Band(np.clip(t - lo, bottom, top), np.clip(t + hi, bottom, top))
            for t, (lo, hi) in zip(rows, protect, strict=True)
        )
        made, frozen = [], []
        for number, (which, shift, below, above, extra) in enumerate(apertures, start=1):
            fwhm = extra.get("fwhm") if extra.get("kind") != "resolved" else 0.0
            frozen.append((int(which), float(shift), float(below), float(above), float(fwhm or 0.0)))
            coefficients = [float(c) for c in traces[which]]
            coefficients[0] += float(shift)
            trace = rows[which] + shift
            band = Band(np.clip(trace - below, bottom, top), np.clip(trace + above, bottom, top))
            if np.any(band.upper - band.lower <= 0):
                raise ValueError(
                    f"aperture AP{number} lies outside the frame in some column; check the trace"
                )
            model = TraceModel(
                coefficients=tuple(coefficients),
                reference=(ncols - 1) / 2.0,
                aperture_below=float(below),
                aperture_above=float(above),
                background_inner=float(max(exclude[which]) - shift),
                background_outer=float(max(exclude[which]) - shift + background_width),
                protect=float(max(protect[which])),
            )
            aperture = Aperture(f"AP{number}", trace, band, {}, model)
            aperture.info.update(row=aperture.row, **extra)
            made.append(aperture)
        main = made[primary]
        layout = Layout(
            sources=tuple(
                (*(float(c) for c in coefficients), *map(float, ex), *map(float, pr))
                for coefficients, ex, pr in zip(traces, exclude, protect, strict=True)
            ),
            apertures=tuple(frozen),
            background_width=float(background_width),
            primary=int(primary),
        )
        return cls(
            trace=main.trace,
            aperture=main.band,
            background=tuple(background),
            protected=protected,
            info=dict(info or {}),
            model=main.model,
            apertures=tuple(made),
            primary=primary,
            layout=layout,
        )

    @classmethod
    def from_trace(
        cls,
        shape: tuple[int, int],
        coefficients: list[float],
        *,
        aperture_below: float,
        aperture_above: float,
        background_inner: float,
        background_outer: float,
        protect: float,
        min_background_rows: float = 3.0,
        info: dict[str, Any] | None = None,
    ) -> Geometry:
        """Regions that follow a polynomial trace, as offsets from it in every column (apall's way).

        Parameters
        ----------
        shape : (nrows, ncols)
            The frame's shape.
        coefficients : list of float
            The trace as a power series in ``column - (ncols - 1) / 2`` (see :func:`trace_rows`).
        aperture_below, aperture_above : float
            Rows from the trace to the aperture's lower and upper edges.
        background_inner, background_outer : float
            Rows from the trace to the inner and outer edges of the background regions, one each side.
        protect : float
            Rows each side of the trace left alone by cosmic-ray cleaning.
        min_background_rows : float
            A background region narrower than this in some column, once clipped to the frame, is dropped
            (a source near an edge has its background on one side only).
        info : dict, optional
            Measurements to keep with the geometry; the parameters above are added to it.

        Raises
        ------
        ValueError
            If the aperture misses the frame in some column, or no background region fits in it.
        """
        nrows, ncols = shape
        trace = trace_rows(coefficients, ncols)
        bottom, top = -0.5, nrows - 0.5
        aperture = Band(
            np.clip(trace - aperture_below, bottom, top), np.clip(trace + aperture_above, bottom, top)
        )
        if np.any(aperture.upper - aperture.lower <= 0):
            raise ValueError("the aperture lies outside the frame in some column; check the trace")
        sides = (
            Band(
                np.clip(trace - background_outer, bottom, top), np.clip(trace - background_inner, bottom, top)
            ),
            Band(
                np.clip(trace + background_inner, bottom, top), np.clip(trace + background_outer, bottom, top)
            ),
        )
        widths = [float(np.min(band.upper - band.lower)) for band in sides]
        background = tuple(
            band for band, width in zip(sides, widths, strict=True) if width >= min_background_rows
        )
        if not background:
            raise ValueError(
                f"no background region of {min_background_rows:g} rows fits in the frame at "
                f"{background_inner:g}-{background_outer:g} rows from the trace; bring the background closer"
            )
        protected = Band(np.clip(trace - protect, bottom, top), np.clip(trace + protect, bottom, top))
        model = TraceModel(
            coefficients=tuple(float(c) for c in coefficients),
            reference=(ncols - 1) / 2.0,
            aperture_below=float(aperture_below),
            aperture_above=float(aperture_above),
            background_inner=float(background_inner),
            background_outer=float(background_outer),
            protect=float(protect),
            background_sides=tuple(
                name for name, w in zip(("below", "above"), widths, strict=True) if w >= min_background_rows
            ),
        )
        return cls(trace, aperture, background, (protected,), dict(info or {}), model)

    def to_trace_params(self) -> dict[str, float | str]:
        """The ``trace`` locate method's parameters that reproduce this geometry: how an automatic
        result is frozen into a recipe.

        Use it to write what ``auto`` found into a recipe as numbers, so the next run (or another
        frame) uses exactly these regions, and a user can read and edit them::

            result = longslit.reduce("frame.fits")                # locate.method = "auto"
            frozen = result.recipe.with_overrides({"locate": result.geometry.to_trace_params()})
            print(frozen.to_toml())                               # [locate] method = "trace", ...
            longslit.reduce("frame.fits", frozen)                 # the same geometry, bit for bit

        For a geometry with a :attr:`model` (``auto``, ``trace``) the numbers are exact and the round
        trip reproduces every array. For any other (e.g. ``rows``) they are estimated: a cubic fitted
        to the trace, the median offsets of the aperture edges, and one symmetric background region
        each side spanning the nearest to the farthest background edge.

        Returns
        -------
        dict
            ``{"method": "trace", "centre": ..., "slope": ..., ...}`` with plain floats (every name in
            :data:`TRACE_PARAMS`), ready for ``Recipe.with_overrides({"locate": ...})``.

        A geometry of several apertures made by :meth:`from_traces` (``auto`` with ``max_sources``,
        ``near_row`` or ``resolved``) freezes whole: the ``trace`` method's ``sources`` (every
        source's trace and the rows kept from the background and from cleaning around it),
        ``apertures`` (each one's source, shift and edges), ``primary`` and ``background_width``
        (:meth:`Layout.to_params`), which replay every aperture exactly.

        Raises
        ------
        ValueError
            If the trace polynomial has terms beyond the cubic, which ``trace`` cannot hold.
        """
        if self.apertures and self.layout is not None:
            return self.layout.to_params()
        if self.model is not None:
            return self.model.to_params()
        trace = np.asarray(self.trace, dtype=np.float64)
        x = np.arange(trace.size) - (trace.size - 1) / 2.0
        coefficients = (
            np.polynomial.polynomial.polyfit(x, trace, min(3, trace.size - 1)) if trace.size > 1 else trace
        )
        coefficients = [*np.asarray(coefficients, dtype=np.float64).tolist(), 0.0, 0.0, 0.0][:4]
        inner, outer = [], []
        for band in self.background:
            if np.median(band.upper) <= np.median(trace):
                inner.append(float(np.median(trace - band.upper)))
                outer.append(float(np.median(trace - band.lower)))
            else:
                inner.append(float(np.median(band.lower - trace)))
                outer.append(float(np.median(band.upper - trace)))
        protect = [float(np.median(np.maximum(trace - b.lower, b.upper - trace))) for b in self.protected]
        values = dict(zip(TRACE_PARAMS[:4], coefficients, strict=True))
        values.update(
            aperture_below=float(np.median(trace - self.aperture.lower)),
            aperture_above=float(np.median(self.aperture.upper - trace)),
            background_inner=min(inner) if inner else 15.0,
            background_outer=max(outer) if outer else 75.0,
            protect=max(protect) if protect else float(np.median(trace - self.aperture.lower)) + 3.0,
        )
        return {"method": "trace", **{k: float(v) for k, v in values.items()}}

    @property
    def ncols(self) -> int:
        """Number of columns described."""
        return self.trace.shape[0]

    def background_mask(self, nrows: int) -> np.ndarray:
        """Boolean (nrows, ncols): pixels in any background region."""
        return _union(self.background, nrows, self.ncols)

    def protected_mask(self, nrows: int) -> np.ndarray:
        """Boolean (nrows, ncols): pixels that cosmic-ray cleaning leaves alone."""
        return _union(self.protected, nrows, self.ncols)

    def problems(self, shape: tuple[int, int]) -> list[str]:
        """What makes this geometry unusable on a frame of ``shape`` (empty when fine)."""
        nrows, ncols = shape
        found = []
        bands = [("aperture", self.aperture)]
        bands += [(f"aperture {a.name}", a.band) for a in self.apertures]
        bands += [(f"background region {i + 1}", b) for i, b in enumerate(self.background)]
        for name, band in [("trace", Band(self.trace, self.trace)), *bands]:
            if band.lower.shape != (ncols,) or band.upper.shape != (ncols,):
                found.append(f"{name} has {band.lower.shape[0]} columns, the frame {ncols}")
                return found
        if not np.all(np.isfinite(self.trace)):
            found.append("the trace is not finite in every column")
        for name, band in bands:
            if np.any(band.upper <= band.lower):
                found.append(f"the {name} is empty in some column")
            elif band.lower.min() < -0.5 or band.upper.max() > nrows - 0.5:
                found.append(
                    f"the {name} (rows {_rows_text(band)}) lies outside the frame's rows 0-{nrows - 1}"
                )
        if not self.background:
            found.append("there is no background region")
        if self.apertures and not 0 <= self.primary < len(self.apertures):
            found.append(f"the primary aperture {self.primary} is not one of the {len(self.apertures)}")
        return found


def trace_rows(coefficients: list[float] | np.ndarray, ncols: int) -> np.ndarray:
    """Trace row in each column from power-series coefficients in ``column - (ncols - 1) / 2``.

    ``coefficients[k]`` multiplies ``(column - (ncols - 1) / 2) ** k``: the first is the row at the middle
    column, the second the slope (rows per column), the third the curvature.
    """
    x = np.arange(ncols, dtype=np.float64) - (ncols - 1) / 2.0
    return np.polynomial.polynomial.polyval(x, np.asarray(coefficients, dtype=np.float64))


def _union(bands: tuple[Band, ...], nrows: int, ncols: int) -> np.ndarray:
    inside = np.zeros((nrows, ncols), dtype=bool)
    for band in bands:
        inside |= band.contains(nrows)
    return inside


def _rows_text(band: Band) -> str:
    rows = band.as_rows()
    if rows is not None:
        return f"{rows[0]}:{rows[1]}"
    return f"{band.lower.min() + 0.5:.1f} to {band.upper.max() + 0.5:.1f}"
