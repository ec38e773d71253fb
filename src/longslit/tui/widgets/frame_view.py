"""A 2D image in the terminal: Unicode half blocks, two pixels per cell, or a character ramp; with axes.

Rows are drawn with row 0 at the bottom (astronomers' ``origin="lower"``). The left margin holds the row
axis (round ticks) and a tick at each region edge; the bottom line the column axis, in wavelength when
the frame has one. The image is binned (mean) to the widget's size. Region edges (aperture, background)
are margin ticks and a dashed outline (one column in four), so the pixels under them stay visible.

Three kinds of layer: ``image`` (a grey stretch), ``count`` (pixels per cell, for cosmic-ray hits, from
black to red) and ``flags`` (DQ: each cell takes the colour of the flag bit most of its pixels carry).
:meth:`FrameView.legend` is the line under the view: the stretch's colour bar with its values, or the
flags' colours.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rich.style import Style
from rich.text import Text

from ...geometry import Band
from . import graphics
from .strips import Line, StripWidget
from .ticks import labels, nice_ticks

#: Characters from dark to bright, for terminals with 16 colours or fewer (and NO_COLOR). None of them is
#: an overlay mark ("=" aperture, "-" background, "~" protected rows, "x" cosmic ray).
RAMP = " .:;+*o%#@"
#: Colours of DQ flag categories (distinct in 256 colours), and their letters without colour.
FLAG_COLOURS = (
    "rgb(230,159,0)",
    "rgb(86,180,233)",
    "rgb(0,158,115)",
    "rgb(240,228,66)",
    "rgb(0,114,178)",
    "rgb(213,94,0)",
    "rgb(204,121,167)",
    "rgb(255,255,255)",
)
FLAG_LETTERS = "ABCDEFGH"
HIT = "rgb(255,40,40)"
#: A cell shows cosmic-ray hits over the image only when it covers at most this many pixels: coarser, a
#: single hit would paint a whole cell red (nine in ten cells of 3C 120 at 80x24). The ``hits`` layer
#: shows their count per cell at any size.
HIT_PIXELS = 2


@dataclass
class Overlay:
    """A band drawn over the image: its edges in ``color`` (``char`` in the character ramp)."""

    band: Band
    color: str
    char: str


#: Kitty image ids of the views (below 2**24: the placeholders' colour carries them).
_IMAGE_IDS = itertools.count(0x4C5301)


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
    if how in ("any", "sum"):
        tables: tuple[np.ndarray, ...] = (_table(image.astype(np.float64)),)
    elif how == "flags":
        values = image.astype(np.int64)
        present = np.bitwise_or.reduce(values, axis=None) if values.size else 0
        bits = [1 << b for b in range(63) if int(present) >> b & 1]
        tables = tuple(_table(((values & bit) != 0).astype(np.float64)) for bit in bits)
        tables = (np.array(bits, dtype=np.int64), *tables)
    else:
        finite = np.isfinite(image)
        tables = (_table(np.where(finite, image, 0.0).astype(np.float64)), _table(finite.astype(np.float64)))
    if len(_TABLES) >= 8:
        _TABLES.pop(next(iter(_TABLES)))
    with contextlib.suppress(TypeError):  # not weak-referenceable: no caching
        _TABLES[key] = (weakref.ref(image), tables)
    return tables


def _bounds(image: np.ndarray, rows: np.ndarray, cols: np.ndarray):
    r0 = np.clip(np.floor(rows[:-1]).astype(int), 0, image.shape[0] - 1)
    c0 = np.clip(np.floor(cols[:-1]).astype(int), 0, image.shape[1] - 1)
    r1 = np.maximum(np.ceil(rows[1:]).astype(int), r0 + 1)[:, None]
    c1 = np.maximum(np.ceil(cols[1:]).astype(int), c0 + 1)[None, :]
    return r0[:, None], r1, c0[None, :], c1


def binned(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, how: str = "mean") -> np.ndarray:
    """Reduce ``image`` to one value per (row bin, column bin).

    ``how="mean"``: the mean of the finite pixels (NaN where there is none); ``"any"``: whether any
    pixel of the bin is set; ``"sum"``: the sum (a count, for a mask). Bins narrower than a pixel
    (zoomed in) take the pixel they start in.
    """
    r0, r1, c0, c1 = _bounds(image, rows, cols)
    if how in ("any", "sum"):
        (table,) = _tables(image, how)
        sums = _block_sums(table, r0, r1, c0, c1)
        return sums > 0 if how == "any" else sums
    total_table, count_table = _tables(image, "mean")
    total = _block_sums(total_table, r0, r1, c0, c1)
    count = _block_sums(count_table, r0, r1, c0, c1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def binned_flags(dq: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flag bits present in ``dq``, and per bin the index of the bit most of its pixels carry
    (-1 where no pixel of the bin is flagged)."""
    bits, *tables = _tables(dq, "flags")
    r0, r1, c0, c1 = _bounds(dq, rows, cols)
    if not tables:
        return bits, np.full((len(rows) - 1, len(cols) - 1), -1)
    counts = np.stack([_block_sums(t, r0, r1, c0, c1) for t in tables])
    best = counts.argmax(axis=0)
    return bits, np.where(counts.max(axis=0) > 0, best, -1)


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


def grey(level: float) -> str:
    value = int(level * 31) * 8  # 32 grey levels keep the style cache small
    return f"rgb({value},{value},{value})"


def red(level: float) -> str:
    value = int(level * 31) * 8
    return f"rgb({min(255, 40 + value)},{value // 4},{value // 4})" if level > 0 else "rgb(0,0,0)"


def _number(value: float) -> str:
    return f"{value:.4g}"


class FrameView(StripWidget):
    """Shows one 2D layer of the frame, zoomed to a row and column window, with axes and overlays."""

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
        self.kind = "image"
        self.wavelength: np.ndarray | None = None
        self.bits: np.ndarray = np.array([], dtype=np.int64)
        #: Columns left of the image (the row axis and the region ticks), set by each render.
        self.margin = 0
        self._stretched: tuple | None = None  # (image, window, method) the limits were computed for
        #: "kitty": the image region is a bitmap (see :mod:`.graphics`); None: half blocks.
        self.protocol = graphics.graphics_mode()
        self.bitmap: np.ndarray | None = None  # the last bitmap drawn (rows, columns, 3), top row first
        self.escapes = ""  # the escapes that sent it
        self._image_id = next(_IMAGE_IDS)  # one terminal image per view, replaced at each change

    def show(
        self,
        image: np.ndarray | None,
        *,
        mask: np.ndarray | None = None,
        overlays: list[Overlay] | None = None,
        window: tuple[int, int, int, int] | None = None,
        stretch_method: str | None = None,
        kind: str = "image",
        wavelength: np.ndarray | None = None,
    ) -> None:
        """Display ``image`` (None: nothing), recomputing the stretch for the visible window.

        ``kind`` is ``"image"``, ``"count"`` (a boolean mask shown as pixels per cell) or ``"flags"``
        (a DQ array shown by flag bit); ``wavelength`` labels the column axis when given.
        """
        self.image, self.mask, self.overlays = image, mask, overlays or []
        self.kind, self.wavelength = kind, wavelength
        if stretch_method:
            self.stretch_method = stretch_method
        if image is not None:
            self.window = window or (0, image.shape[0], 0, image.shape[1])
            r0, r1, c0, c1 = self.window
            key = (self.window, self.stretch_method, kind)
            # The same layer in the same window (an aperture nudge redraws only the overlays): the
            # same limits, without zscale's fit over every pixel again.
            if self._stretched is None or self._stretched[0] is not image or self._stretched[1] != key:
                if kind == "image":
                    self.limits = stretch(image[r0:r1, c0:c1], self.stretch_method)
                elif kind == "flags":
                    self.bits = _tables(image, "flags")[0]
                self._stretched = (image, key)
        self.changed()

    def _ramp_mode(self) -> bool:
        app = self.app
        system = getattr(app.console, "color_system", None)
        return bool(getattr(app, "no_color", False)) or system in (None, "standard", "windows")

    # -- the line under the view --------------------------------------------------------------------
    def legend(self, layer: str, cells: int = 12) -> Text:
        """What the colours mean: a colour bar with the stretch's values, or the flags' colours."""
        ramp = self._ramp_mode() if self.is_attached else False
        text = Text(f"{layer} ")
        if self.kind == "flags":
            if not len(self.bits):
                return text.append("no pixel flagged")
            text.append("flag ")
            for i, bit in enumerate(self.bits[: len(FLAG_COLOURS)]):
                if ramp:
                    text.append(f"{FLAG_LETTERS[i]}={bit} ")
                else:
                    text.append("█", Style.parse(FLAG_COLOURS[i])).append(f"{bit} ")
            return text
        low, high = self.limits
        if self.kind == "count":
            text.append("hits/cell 0 ")
        else:
            text.append(f"{self.stretch_method} {_number(low)} ")
        for i in range(cells):
            level = i / (cells - 1)
            if ramp:
                text.append(RAMP[min(int(level * len(RAMP)), len(RAMP) - 1)])
            else:
                text.append(" ", Style(bgcolor=(red if self.kind == "count" else grey)(level)))
        text.append(f" {_number(high)}")
        return text

    # -- drawing ------------------------------------------------------------------------------------
    def lines(self) -> list[Line]:
        width, height = self.size.width, self.size.height
        if self.image is None or width < 8 or height < 2:
            return []
        r0, r1, c0, c1 = self.window
        ramp = self._ramp_mode()
        label_width = max(len(str(r1 - 1)), 3)
        self.margin = label_width + 2  # labels, the axis, the left region ticks
        image_width = width - self.margin - 1  # and the right region ticks
        image_height = height - 1  # and the column axis
        if image_width < 2:
            return []
        if self.protocol == "kitty" and not ramp:
            return self._bitmap_lines(label_width, image_width, image_height)
        pixel_rows = image_height if ramp else 2 * image_height
        row_edges = bin_edges(r0, r1, pixel_rows)
        col_edges = bin_edges(c0, c1, image_width)
        colours, chars = self._cells(row_edges, col_edges, pixel_rows, image_width, ramp)
        marks = self._edge_marks(row_edges, col_edges)
        # The dashed outline: an edge shows in one column of four, so the pixels between show.
        dashed = (np.arange(image_width) % 4) == 1
        for hit, overlay in marks:
            cells = hit & dashed[None, :]
            if ramp:
                chars[cells] = overlay.char
            else:
                colours[cells] = overlay.color
        row_ticks = self._row_ticks(r0, r1, pixel_rows, image_height, ramp)
        left, right = self._margin_ticks(marks, image_height, ramp)
        lines = []
        for line in range(image_height):
            text = Line(row_ticks.get(line, "").rjust(label_width))
            text.append("┤" if line in row_ticks else "│")
            text.append(*left.get(line, (" ",)))
            if ramp:
                text.append("".join(chars[image_height - 1 - line]))
            else:
                top = pixel_rows - 1 - 2 * line
                for col in range(image_width):
                    text.append("▀", cell_style(colours[top, col], colours[top - 1, col]))
            text.append(*right.get(line, (" ",)))
            lines.append(text)
        lines.append(self._column_axis(col_edges, label_width, image_width))
        return lines

    def _bitmap_lines(self, label_width: int, image_width: int, image_height: int) -> list[Line]:
        """The view with its image region as a kitty bitmap: the window at its own resolution (or the
        cells' pixels, if fewer), the same colours as the half blocks, region edges as thin lines."""
        r0, r1, c0, c1 = self.window
        cell_width, cell_height = graphics.cell_pixels()
        rows = min(r1 - r0, image_height * cell_height)
        columns = min(c1 - c0, image_width * cell_width)
        row_edges, col_edges = bin_edges(r0, r1, rows), bin_edges(c0, c1, columns)
        colours, _ = self._cells(row_edges, col_edges, rows, columns, False)
        for hit, overlay in self._edge_marks(row_edges, col_edges):
            colours[hit] = overlay.color
        names, index = np.unique(colours.astype(str), return_inverse=True)
        palette = np.array([Style.parse(name).color.get_truecolor() for name in names], dtype=np.uint8)
        bitmap = palette[index.reshape(colours.shape)][::-1]  # row 0 at the bottom
        old = self.bitmap
        if old is None or old.shape != bitmap.shape or not np.array_equal(old, bitmap):
            self.bitmap = bitmap
            self.escapes = graphics.transmit(self._image_id, bitmap, image_width, image_height)
            driver = getattr(self.app, "_driver", None) if self.is_attached else None
            if driver is not None:
                driver.write(self.escapes)
        text_rows = self._row_ticks(r0, r1, image_height, image_height, True)
        marks = self._edge_marks(bin_edges(r0, r1, 2 * image_height), bin_edges(c0, c1, image_width))
        left, right = self._margin_ticks(marks, image_height, False)
        colour = graphics.id_colour(self._image_id)
        lines = []
        for line in range(image_height):
            text = Line(text_rows.get(line, "").rjust(label_width))
            text.append("┤" if line in text_rows else "│")
            text.append(*left.get(line, (" ",)))
            text.append(graphics.placeholder_row(line, image_width), colour)
            text.append(*right.get(line, (" ",)))
            lines.append(text)
        lines.append(self._column_axis(bin_edges(c0, c1, image_width), label_width, image_width))
        return lines

    def _cells(self, row_edges, col_edges, pixel_rows, image_width, ramp):
        """The colour (or ramp character) of every display pixel, row 0 at index 0."""
        colours = np.full((pixel_rows, image_width), "rgb(0,0,0)", dtype=object)
        chars = np.full((pixel_rows, image_width), " ", dtype=object)
        if self.kind == "flags":
            _, best = binned_flags(self.image, row_edges, col_edges)
            palette = np.array(["rgb(0,0,0)", *FLAG_COLOURS], dtype=object)
            letters = np.array([" ", *FLAG_LETTERS])
            index = np.minimum(best + 1, len(FLAG_COLOURS))
            colours[:] = palette[index]
            chars[:] = letters[index]
            return colours, chars
        if self.kind == "count":
            values = binned(self.image, row_edges, col_edges, "sum")
            top = max(float(values.max()), 1.0)
            self.limits = (0.0, top)
            level = values / top
            lut = np.array([red(i / 31) for i in range(32)], dtype=object)
            colours[:] = lut[np.clip((level * 31).astype(int), 0, 31)]
            colours[values == 0] = "rgb(0,0,0)"
        else:
            # The binning is the costly part of a render (a summed-area table of the frame): an edit
            # that only moves a region redraws the same pixels, so the last binning is kept for reuse.
            key = (len(row_edges), len(col_edges), *self.window)
            cached = getattr(self, "_binned", None)
            if cached is not None and cached[0] is self.image and cached[1] == key:
                values = cached[2]
            else:
                values = binned(self.image, row_edges, col_edges)
                self._binned = (self.image, key, values)
            low, high = self.limits
            level = np.clip((values - low) / (high - low), 0.0, 1.0)
            level = np.where(np.isfinite(level), level, 0.0)
            lut = np.array([grey(i / 31) for i in range(32)], dtype=object)
            colours[:] = lut[np.clip((level * 31).astype(int), 0, 31)]
        ramp_index = np.clip((level * len(RAMP)).astype(int), 0, len(RAMP) - 1)
        chars[:] = np.array(list(RAMP), dtype=object)[ramp_index]
        if self.mask is not None and self._pixels_per_cell(row_edges, col_edges) <= HIT_PIXELS:
            hits = binned(self.mask, row_edges, col_edges, "any")
            colours[hits] = HIT
            chars[hits] = "x"
        return colours, chars

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

    @staticmethod
    def _pixels_per_cell(row_edges, col_edges) -> float:
        return float(np.diff(row_edges).mean() * np.diff(col_edges).mean())

    def _row_ticks(self, r0, r1, pixel_rows, image_height, ramp) -> dict[int, str]:
        """Text line -> label of the round row numbers (row 0 at the bottom)."""
        ticks = nice_ticks(r0, r1 - 1, max(2, image_height // 3))
        per_line = 1 if ramp else 2
        found: dict[int, str] = {}
        for value, label in zip(ticks, labels(ticks), strict=True):
            pixel = (value + 0.5 - r0) / (r1 - r0) * pixel_rows  # pixel centres at integer rows
            line = image_height - 1 - int(pixel // per_line)
            if 0 <= line < image_height and line not in found:
                found[line] = label
        return found

    def _margin_ticks(self, marks, image_height, ramp):
        """Per text line, the mark left and right of the image where a region edge crosses the
        first and the last column shown (the selected region's wins)."""
        per_line = 1 if ramp else 2
        left: dict[int, tuple] = {}
        right: dict[int, tuple] = {}
        for hit, overlay in reversed(marks):  # the first overlays (aperture, selected) drawn last
            for side, column, arrow in ((left, 0, "▸"), (right, -1, "◂")):
                for pixel in np.flatnonzero(hit[:, column]):
                    line = image_height - 1 - pixel // per_line
                    side[int(line)] = (overlay.char,) if ramp else (arrow, Style.parse(overlay.color))
        return left, right

    def _column_axis(self, col_edges, label_width, image_width) -> Line:
        """Round columns (or wavelengths) under the image, each label starting at its tick."""
        c0, c1 = float(col_edges[0]), float(col_edges[-1])
        wave = self.wavelength
        unit = "col"
        if wave is not None and len(wave) >= 2 and wave[-1] != wave[0]:
            unit = "Å"
            lo, hi = sorted((float(wave[int(c0)]), float(wave[min(int(c1) - 1, len(wave) - 1)])))
            ticks = nice_ticks(lo, hi, max(2, image_width // 12))
            columns = (
                np.interp(ticks, wave, np.arange(len(wave)))
                if wave[-1] > wave[0]
                else np.interp(ticks, wave[::-1], np.arange(len(wave))[::-1])
            )
        else:
            ticks = nice_ticks(c0, c1 - 1, max(2, image_width // 10))
            columns = ticks
        line = [" "] * image_width
        for column, label in zip(columns, labels(ticks), strict=True):
            x = int((column + 0.5 - c0) / (c1 - c0) * image_width)
            text = "╵" + label
            if (
                x >= 0
                and x + len(text) <= image_width
                and all(c == " " for c in line[max(0, x - 1) : x + len(text)])
            ):
                line[x : x + len(text)] = list(text)
        return Line(unit.rjust(label_width) + "  " + "".join(line))
