"""A 2D image in the terminal: Unicode half blocks, two pixels per cell, or a character ramp.

Rows are drawn with row 0 at the bottom (astronomers' ``origin="lower"``). The image is binned (mean)
to the widget's size; masks are binned with "any" so a single cosmic ray stays visible. Region edges
(aperture, background) are drawn over it per column, so tilted traces show as tilted lines.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from ...geometry import Band

#: Characters from dark to bright, for terminals with 16 colours or fewer (and NO_COLOR). None of them is
#: an overlay mark ("=" aperture, "-" background, "~" protected rows, "x" cosmic ray).
RAMP = " .:;+*o%#@"


@dataclass
class Overlay:
    """A band drawn over the image: its edges in ``color`` (``char`` in the character ramp)."""

    band: Band
    color: str
    char: str


def bin_edges(start: int, stop: int, count: int) -> np.ndarray:
    """``count`` bins over ``[start, stop)``, as integer edges (bins may repeat when zoomed in)."""
    return np.linspace(start, stop, count + 1)


def _table(source: np.ndarray) -> np.ndarray:
    """The summed-area table of ``source``: ``table[r, c]`` is the sum of ``source[:r, :c]``."""
    table = np.zeros((source.shape[0] + 1, source.shape[1] + 1))
    table[1:, 1:] = source.cumsum(0).cumsum(1)
    return table


def _block_sums(table: np.ndarray, r0, r1, c0, c1) -> np.ndarray:
    """Sums over the blocks ``[r0:r1, c0:c1]`` from a summed-area table: four lookups per block."""
    return table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]


#: Summed-area tables of the last few images shown, by identity: moving a region or the zoom window
#: redraws the same image, and the tables (two cumulative sums of the whole frame) are most of a
#: redraw's cost. Weak references, so a replaced frame is not kept alive.
_TABLES: dict[tuple[int, str], tuple[weakref.ref, tuple[np.ndarray, ...]]] = {}


def _tables(image: np.ndarray, how: str) -> tuple[np.ndarray, ...]:
    key = (id(image), how)
    entry = _TABLES.get(key)
    if entry is not None and entry[0]() is image:
        return entry[1]
    if how == "any":
        tables: tuple[np.ndarray, ...] = (_table(image.astype(np.float64)),)
    else:
        finite = np.isfinite(image)
        tables = (_table(np.where(finite, image, 0.0).astype(np.float64)), _table(finite.astype(np.float64)))
    if len(_TABLES) >= 8:
        _TABLES.pop(next(iter(_TABLES)))
    with contextlib.suppress(TypeError):  # not weak-referenceable: no caching
        _TABLES[key] = (weakref.ref(image), tables)
    return tables


def binned(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, how: str = "mean") -> np.ndarray:
    """Reduce ``image`` to one value per (row bin, column bin).

    ``how="mean"``: the mean of the finite pixels (NaN where there is none); ``how="any"``: whether
    any pixel of the bin is set. Bins narrower than a pixel (zoomed in) take the pixel they start in.
    """
    r0 = np.clip(np.floor(rows[:-1]).astype(int), 0, image.shape[0] - 1)
    c0 = np.clip(np.floor(cols[:-1]).astype(int), 0, image.shape[1] - 1)
    r1 = np.maximum(np.ceil(rows[1:]).astype(int), r0 + 1)[:, None]
    c1 = np.maximum(np.ceil(cols[1:]).astype(int), c0 + 1)[None, :]
    r0, c0 = r0[:, None], c0[None, :]
    if how == "any":
        (table,) = _tables(image, "any")
        return _block_sums(table, r0, r1, c0, c1) > 0
    total_table, count_table = _tables(image, "mean")
    total = _block_sums(total_table, r0, r1, c0, c1)
    count = _block_sums(count_table, r0, r1, c0, c1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@lru_cache(maxsize=4096)
def cell_style(upper: str, lower: str) -> Style:
    """The style of a half-block cell (cached: a frame has few distinct colour pairs)."""
    return Style.parse(f"{upper} on {lower}")


def stretch(image: np.ndarray, method: str = "zscale") -> tuple[float, float]:
    """Display limits: astropy's zscale, or the 0.5-99.5 percentile interval."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    if method == "zscale":
        from astropy.visualization import ZScaleInterval

        low, high = ZScaleInterval().get_limits(finite)
    else:
        low, high = np.percentile(finite, [0.5, 99.5])
    if not high > low:
        high = low + 1.0
    return float(low), float(high)


class FrameView(Widget):
    """Shows one 2D layer of the frame, zoomed to a row and column window, with overlays."""

    DEFAULT_CSS = """
    FrameView { height: 1fr; min-height: 4; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.image: np.ndarray | None = None
        self.mask: np.ndarray | None = None
        self.overlays: list[Overlay] = []
        self.window: tuple[int, int, int, int] | None = None  # row0, row1, col0, col1
        self.limits = (0.0, 1.0)
        self.stretch_method = "zscale"
        self._stretched: tuple | None = None  # (image, window, method) the limits were computed for

    def show(
        self,
        image: np.ndarray | None,
        *,
        mask: np.ndarray | None = None,
        overlays: list[Overlay] | None = None,
        window: tuple[int, int, int, int] | None = None,
        stretch_method: str | None = None,
    ) -> None:
        """Display ``image`` (None: nothing), recomputing the stretch for the visible window."""
        self.image, self.mask, self.overlays = image, mask, overlays or []
        if stretch_method:
            self.stretch_method = stretch_method
        if image is not None:
            self.window = window or (0, image.shape[0], 0, image.shape[1])
            r0, r1, c0, c1 = self.window
            key = (self.window, self.stretch_method)
            # The same layer in the same window (an aperture nudge redraws only the overlays): the
            # same limits, without zscale's fit over every pixel again.
            if self._stretched is None or self._stretched[0] is not image or self._stretched[1] != key:
                self.limits = stretch(image[r0:r1, c0:c1], self.stretch_method)
                self._stretched = (image, key)
        self.refresh()

    def _ramp_mode(self) -> bool:
        app = self.app
        system = getattr(app.console, "color_system", None)
        return bool(getattr(app, "no_color", False)) or system in (None, "standard", "windows")

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        if self.image is None or width < 2 or height < 1:
            return Text("")
        r0, r1, c0, c1 = self.window
        ramp = self._ramp_mode()
        pixel_rows = height if ramp else 2 * height
        row_edges = bin_edges(r0, r1, pixel_rows)
        col_edges = bin_edges(c0, c1, width)
        # The binning is the costly part of a render (a summed-area table of the frame): an edit that
        # only moves a region redraws the same pixels, so the last binning is kept for reuse.
        key = (self.image, r0, r1, c0, c1, pixel_rows, width)
        cached = getattr(self, "_binned", None)
        if cached is not None and cached[0][0] is self.image and cached[0][1:] == key[1:]:
            values = cached[1]
        else:
            values = binned(self.image, row_edges, col_edges)
            self._binned = (key, values)
        low, high = self.limits
        level = np.clip((values - low) / (high - low), 0.0, 1.0)
        level = np.where(np.isfinite(level), level, 0.0)
        hits = binned(self.mask, row_edges, col_edges, "any") if self.mask is not None else None
        marks = self._edge_marks(row_edges, col_edges)
        lines = (
            [self._ramp_line(level, hits, marks, pixel_rows - 1 - i) for i in range(height)]
            if ramp
            else [self._block_line(level, hits, marks, pixel_rows - 1 - 2 * i) for i in range(height)]
        )
        return Text("\n").join(lines)

    def _edge_marks(self, row_edges: np.ndarray, col_edges: np.ndarray) -> list[tuple[np.ndarray, Overlay]]:
        """For each overlay, a (pixel_rows, columns) boolean of the cells its edges pass through."""
        centres = ((col_edges[:-1] + col_edges[1:]) / 2).astype(int)
        marks = []
        for overlay in self.overlays:
            hit = np.zeros((len(row_edges) - 1, len(centres)), dtype=bool)
            for edge in (overlay.band.lower, overlay.band.upper):
                value = edge[np.clip(centres, 0, len(edge) - 1)] + 0.5  # edge in pixel-boundary units
                index = np.searchsorted(row_edges, value, side="right") - 1
                inside = (index >= 0) & (index < hit.shape[0])
                hit[index[inside], np.flatnonzero(inside)] = True
            marks.append((hit, overlay))
        return marks

    def _pixel_color(self, level: float, hit: bool, marks, row: int, col: int) -> str:
        for mark, overlay in marks:
            if mark[row, col]:
                return overlay.color
        if hit:
            return "rgb(255,40,40)"
        grey = int(level * 31) * 8  # 32 grey levels keep the style cache small
        return f"rgb({grey},{grey},{grey})"

    def _block_line(self, level, hits, marks, top: int) -> Text:
        text = Text()
        for col in range(level.shape[1]):
            upper = self._pixel_color(
                level[top, col], bool(hits is not None and hits[top, col]), marks, top, col
            )
            bottom = top - 1
            if bottom >= 0:
                lower = self._pixel_color(
                    level[bottom, col], bool(hits is not None and hits[bottom, col]), marks, bottom, col
                )
            else:
                lower = "rgb(0,0,0)"
            text.append("▀", cell_style(upper, lower))
        return text

    def _ramp_line(self, level, hits, marks, row: int) -> Text:
        chars = []
        for col in range(level.shape[1]):
            char = RAMP[min(int(level[row, col] * len(RAMP)), len(RAMP) - 1)]
            if hits is not None and hits[row, col]:
                char = "x"
            for mark, overlay in marks:
                if mark[row, col]:
                    char = overlay.char
                    break
            chars.append(char)
        return Text("".join(chars))
