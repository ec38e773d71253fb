"""Line plots in braille (2x4 dots a cell) with round ticks, a legend, shaded spans and bands.

A :class:`Figure` says what to draw (series, an uncertainty band, shaded x ranges, a cursor, the axis
ranges and the y scale); :func:`render_figure` turns it into rich Text of a given size. Each series is
reduced to the lowest and highest dot it reaches in each dot column (with the join to the column
before), so a 5000-point spectrum costs what a 160-point one does. Colours are chosen to stay distinct
when 256-colour terminals round them; without colour (NO_COLOR, 16 colours) every series after the first
draws its own marker character instead of braille, and the legend shows the markers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from rich.style import Style
from rich.text import Text

from .strips import Line, StripWidget, join
from .ticks import labels, nice_step, nice_ticks, tick_label

#: Series colours (bright, distinct after rounding to the 256-colour cube) and their no-colour markers.
GOLD, CYAN, RED, GREEN, MAGENTA, WHITE = (
    "rgb(255,200,0)",
    "rgb(0,210,255)",
    "rgb(255,70,70)",
    "rgb(80,230,80)",
    "rgb(255,95,255)",
    "rgb(230,230,230)",
)
#: Backgrounds of shaded spans and bands (dark, so braille on them stays readable).
SHADE_GOLD, SHADE_CYAN, SHADE_GREY, SHADE_GREEN = (
    "rgb(95,75,0)",
    "rgb(0,70,95)",
    "rgb(70,70,70)",
    "rgb(0,80,0)",
)
#: The environment variable naming a file each plot's redraw time is appended to (opt-in; benchmarks).
PLOT_TIMES_ENV = "LONGSLIT_PLOT_TIMES"
_BRAILLE_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]])


@dataclass
class Series:
    """A curve (``points=False``) or a scatter of points, with its legend label and no-colour marker."""

    x: np.ndarray
    y: np.ndarray
    label: str = ""
    color: str = WHITE
    marker: str = ""  # the character drawn without colour ("" = braille)
    points: bool = False


@dataclass
class Band:
    """The region between ``low`` and ``high`` (an uncertainty band), shaded."""

    x: np.ndarray
    low: np.ndarray
    high: np.ndarray
    label: str = ""
    shade: str = SHADE_GREY


@dataclass
class Span:
    """An x range shaded over the plot's full height (a region: aperture, background)."""

    start: float
    stop: float
    label: str = ""
    shade: str = SHADE_CYAN
    char: str = "░"  # without colour


@dataclass
class Figure:
    """What one plot shows. ``xlim``/``ylim`` None: the data's range; ``yscale``: linear, log, asinh."""

    series: list[Series] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    title: str = ""
    xlabel: str = ""
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    yscale: str = "linear"
    #: An x value marked by a vertical line (the spectrum's cursor).
    cursor: float | None = None
    #: A y value drawn as a dotted horizontal line (zero for residuals).
    hline: float | None = None


# -- scales ------------------------------------------------------------------------------------------
def _forward(values: np.ndarray, scale: str, softening: float) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if scale == "log":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)
    if scale == "asinh":
        return np.arcsinh(values / softening)
    return values


def softening_of(values: np.ndarray) -> float:
    """The asinh scale's linear range: about the noise (the median absolute deviation)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 1.0
    mad = float(np.median(np.abs(finite - np.median(finite))))
    return max(mad, float(np.ptp(finite)) * 1e-4, 1e-12)


def _nonlinear_ticks(low: float, high: float, scale: str, softening: float, rows: int) -> list[float]:
    """Round values (0 and 1, 2, 5 x 10^n, either sign) spread over a log or asinh axis."""
    lo, hi = _forward(np.array([low, high]), scale, softening)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [low]
    biggest = max(abs(low), abs(high), 1e-300)
    top = math.floor(math.log10(biggest))
    candidates = [0.0] if scale == "asinh" else []
    for power in range(top - 12, top + 1):
        for factor in (1.0, 2.0, 5.0):
            value = factor * 10.0**power
            candidates += [value, -value] if scale == "asinh" else [value]
    inside = [v for v in candidates if low <= v <= high]

    def decade(v: float) -> bool:
        return v == 0 or math.isclose(abs(v), 10.0 ** round(math.log10(abs(v))))

    # Zero and the powers of ten first, then the 2s and 5s, each two text rows from those kept.
    ranked = sorted(inside, key=lambda v: (not decade(v), abs(v)))
    positions = (_forward(np.array(ranked), scale, softening) - lo) / (hi - lo) * rows if ranked else []
    kept: list[tuple[float, float]] = []
    for value, position in zip(ranked, positions, strict=True):
        if all(abs(position - p) >= 2 for _, p in kept):
            kept.append((value, position))
    return sorted(v for v, _ in kept)


def _range(values: list[np.ndarray]) -> tuple[float, float]:
    finite = [v[np.isfinite(v)] for v in values]
    finite = [v for v in finite if v.size]
    if not finite:
        return 0.0, 1.0
    low = min(float(v.min()) for v in finite)
    high = max(float(v.max()) for v in finite)
    if high == low:
        high, low = high + 0.5, low - 0.5
    return low, high


# -- drawing ----------------------------------------------------------------------------------------
def render_figure(figure: Figure, width: int, height: int, colour: bool = True) -> Text:
    """``figure`` as Text (see :func:`figure_lines`)."""
    return join(figure_lines(figure, width, height, colour))


def figure_lines(figure: Figure, width: int, height: int, colour: bool = True) -> list[Line]:
    """``figure`` as ``height`` lines of ``width`` cells: a title and legend line, the plot with its
    y axis, and the x axis's labels."""
    plot_height = height - 2
    if plot_height < 2 or width < 16:
        return []
    xs = [s.x for s in figure.series] + [b.x for b in figure.bands]
    x0, x1 = figure.xlim or _range([np.asarray(x, dtype=float) for x in xs])
    if x1 <= x0:
        x1 = x0 + 1.0
    in_x = [(np.asarray(s.x, float) >= x0) & (np.asarray(s.x, float) <= x1) for s in figure.series]
    ys = [np.asarray(s.y, float)[m] for s, m in zip(figure.series, in_x, strict=True)]
    ys += [np.asarray(b.low, float) for b in figure.bands] + [np.asarray(b.high, float) for b in figure.bands]
    if figure.yscale == "log":
        ys = [y[y > 0] for y in ys]
    y0, y1 = figure.ylim or _range(ys)
    if figure.ylim is None and figure.yscale == "linear":
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad
    softening = softening_of(np.concatenate(ys)) if figure.yscale == "asinh" and ys else 1.0
    t0, t1 = _forward(np.array([y0, y1]), figure.yscale, softening)
    if not (np.isfinite(t0) and np.isfinite(t1)) or t1 <= t0:
        t0, t1 = (t0, t0 + 1.0) if np.isfinite(t0) else (0.0, 1.0)

    # y ticks first: the margin is as wide as the longest label.
    if figure.yscale == "linear":
        yticks = list(nice_ticks(y0, y1, max(2, plot_height // 3)))
        ylabels = labels(np.array(yticks))
    else:
        yticks = _nonlinear_ticks(y0, y1, figure.yscale, softening, plot_height)
        ylabels = [tick_label(v, abs(v) if v else 1.0) for v in yticks]
    margin = max((len(label) for label in ylabels), default=1) + 1
    plot_width = width - margin
    if plot_width < 8:
        return []
    dots_x, dots_y = plot_width * 2, plot_height * 4

    def to_dot_x(x) -> np.ndarray:
        return np.floor((np.asarray(x, float) - x0) / (x1 - x0) * dots_x).astype(float)

    def to_dot_y(y) -> np.ndarray:
        return (_forward(y, figure.yscale, softening) - t0) / (t1 - t0) * dots_y

    owner = np.full((dots_y, dots_x), -1, dtype=int)  # which series set each dot (row 0 at the bottom)
    marker_cells: dict[tuple[int, int], int] = {}
    for index, series in enumerate(figure.series):
        x = np.asarray(series.x, float)
        y = np.asarray(series.y, float)
        keep = np.isfinite(x) & np.isfinite(y) & (x >= x0) & (x <= x1)
        if not keep.any():
            continue
        dx = np.clip(to_dot_x(x[keep]), 0, dots_x - 1).astype(int)
        dy_float = to_dot_y(y[keep])
        good = np.isfinite(dy_float)
        dx, dy = dx[good], np.floor(dy_float[good]).astype(int)
        if not dx.size:
            continue
        use_marker = not colour and series.marker
        if series.points or use_marker:
            inside = (dy >= 0) & (dy < dots_y)
            if use_marker:
                for cx, cy in zip(dx[inside] // 2, dy[inside] // 4, strict=True):
                    marker_cells[(int(cy), int(cx))] = index
            else:
                owner[dy[inside], dx[inside]] = index
            continue
        _draw_line(owner, dx, dy, index)

    shade = np.full((plot_height, plot_width), "", dtype=object)
    shade_char = np.full((plot_height, plot_width), "", dtype=object)
    cell_x = (np.arange(plot_width) + 0.5) / plot_width * (x1 - x0) + x0
    for span in figure.spans:
        inside = (cell_x >= min(span.start, span.stop)) & (cell_x <= max(span.start, span.stop))
        shade[:, inside] = span.shade
        shade_char[:, inside] = span.char
    for band in figure.bands:
        bx = np.asarray(band.x, float)
        order = np.argsort(bx)
        low = np.interp(cell_x, bx[order], np.asarray(band.low, float)[order], left=np.nan, right=np.nan)
        high = np.interp(cell_x, bx[order], np.asarray(band.high, float)[order], left=np.nan, right=np.nan)
        lo_row, hi_row = to_dot_y(low) / 4, to_dot_y(high) / 4
        rows = np.arange(plot_height)[:, None] + 0.5
        covered = (rows >= np.floor(lo_row)[None, :]) & (rows <= np.ceil(hi_row)[None, :])
        shade[covered] = band.shade
        shade_char[covered] = "░"

    cursor_cell = None
    if figure.cursor is not None and x0 <= figure.cursor <= x1:
        cursor_cell = min(int((figure.cursor - x0) / (x1 - x0) * plot_width), plot_width - 1)
    hline_row = None
    if figure.hline is not None:
        value = to_dot_y(np.array([figure.hline]))[0] / 4
        if np.isfinite(value) and 0 <= value < plot_height:
            hline_row = int(value)

    tick_rows = {}
    for value, label in zip(yticks, ylabels, strict=True):
        row = to_dot_y(np.array([value]))[0] / 4
        if np.isfinite(row) and 0 <= row < plot_height + 0.01:
            tick_rows.setdefault(min(int(row), plot_height - 1), label)

    # Per cell: the braille pattern of its eight dots and the last series that set one (-1: none).
    cells = owner.reshape(plot_height, 4, plot_width, 2)
    weights = _BRAILLE_BITS[::-1][None, :, None, :]  # dot row 0 of a cell is its lowest
    patterns = ((cells >= 0) * weights).sum(axis=(1, 3))
    cell_owner = cells.max(axis=(1, 3))
    lines = [Line.from_text(_title_line(figure, width, colour))]
    body = _cell_rows(
        figure, patterns, cell_owner, marker_cells, shade, shade_char, cursor_cell, hline_row, colour
    )
    for line in range(plot_height):
        row = plot_height - 1 - line  # cell row from the bottom
        text = Line(tick_rows.get(row, "").rjust(margin - 1) + ("┤" if row in tick_rows else "│"), "dim")
        text.parts.extend(body[row])
        lines.append(text)
    lines.append(_x_axis(x0, x1, margin, plot_width, figure.xlabel))
    return lines


# What a plot cell shows, in order of precedence: a marker, a series' braille dots, the cursor, the
# dotted hline, a shade's character (without colour), blank.
_BLANK, _SHADE, _HLINE, _CURSOR, _DOTS, _MARKER = range(6)


def _cell_rows(
    figure: Figure,
    patterns: np.ndarray,
    cell_owner: np.ndarray,
    marker_cells: dict[tuple[int, int], int],
    shade: np.ndarray,
    shade_char: np.ndarray,
    cursor_cell: int | None,
    hline_row: int | None,
    colour: bool,
) -> list[list[tuple[str, Style | None]]]:
    """Per cell row (from the bottom), the plot's cells as (text, style) parts, one part per run of
    cells drawn alike: what a part per cell gives once neighbours of one style are merged, without a
    Python step per cell (a 127x42 plot has 5334 cells)."""
    rows, cols = patterns.shape
    kind = np.full((rows, cols), _BLANK, dtype=np.int64)
    chars = np.full((rows, cols), " ", dtype="<U1")
    if not colour:
        has_char = shade_char != ""
        kind[has_char] = _SHADE
        chars[has_char] = shade_char[has_char].astype("<U1")
    if hline_row is not None:
        kind[hline_row, ::2] = _HLINE
        chars[hline_row, ::2] = "·"
    if cursor_cell is not None:
        kind[:, cursor_cell] = _CURSOR
        chars[:, cursor_cell] = "│"
    dots = cell_owner >= 0
    kind[dots] = _DOTS
    chars[dots] = (0x2800 + patterns[dots]).astype(np.uint32).view("<U1")
    series = np.where(dots, cell_owner, 0)
    texts = chars.tolist()
    for (row, col), index in marker_cells.items():
        kind[row, col], series[row, col] = _MARKER, index
        texts[row][col] = figure.series[index].marker
    codes = kind * (len(figure.series) + 1) + series
    if colour:
        backgrounds, inverse = np.unique(shade.astype(str), return_inverse=True)
        background = inverse.reshape(rows, cols)
        codes = codes * len(backgrounds) + background
    styles: dict[int, Style | None] = {}

    def style_of(row: int, col: int) -> Style | None:
        code = int(codes[row, col])
        if code in styles:
            return styles[code]
        what = int(kind[row, col])
        bg = str(backgrounds[background[row, col]]) if colour else ""
        on = f" on {bg}" if bg else ""
        colour_of = figure.series[int(series[row, col])].color if what in (_DOTS, _MARKER) else ""
        if what == _MARKER:
            style = Style.parse(colour_of + on)
        elif not colour:
            style = None
        elif what == _DOTS:
            style = Style.parse(colour_of + on)
        elif what == _CURSOR:
            style = Style.parse("bold white" + on)
        elif what == _HLINE:
            style = Style.parse("dim" + on)
        else:
            style = Style.parse(f"on {bg}") if bg else None
        styles[code] = style
        return style

    out = []
    for row in range(rows):
        starts = [0, *(np.flatnonzero(codes[row, 1:] != codes[row, :-1]) + 1).tolist()]
        stops = [*starts[1:], cols]
        text = texts[row]
        out.append([("".join(text[a:b]), style_of(row, a)) for a, b in zip(starts, stops, strict=True)])
    return out


def _draw_line(owner: np.ndarray, dx: np.ndarray, dy: np.ndarray, index: int) -> None:
    """Per dot column, the dots from the lowest to the highest the curve reaches, joined to the last
    value of the column before (so a steep line stays connected)."""
    dots_y = owner.shape[0]
    order = np.argsort(dx, kind="stable")
    dx, dy = dx[order], dy[order]
    columns, first = np.unique(dx, return_index=True)
    last = np.r_[first[1:], dx.size] - 1
    low = np.minimum.reduceat(dy, first)
    high = np.maximum.reduceat(dy, first)
    previous = np.r_[dy[last[0]], dy[last[:-1]]]
    joined = np.r_[False, np.diff(columns) <= 2]
    low = np.where(joined, np.minimum(low, previous + 1), low)
    high = np.where(joined, np.maximum(high, previous - 1), high)
    for column, lo, hi in zip(
        columns, np.clip(low, 0, dots_y - 1), np.clip(high, 0, dots_y - 1), strict=True
    ):
        if hi >= 0 and lo < dots_y and lo <= hi:
            owner[lo : hi + 1, column] = index


def _title_line(figure: Figure, width: int, colour: bool) -> Text:
    text = Text().append(figure.title, "bold")
    for series in figure.series:
        if not series.label:
            continue
        key = series.marker if (not colour and series.marker) else ("•" if series.points else "━")
        text.append("  ")
        text.append(key, Style.parse(series.color) if colour else None)
        text.append(" " + series.label)
    for item in [*figure.bands, *figure.spans]:
        if item.label:
            text.append("  ")
            text.append(
                "█" if colour else getattr(item, "char", "░"), Style.parse(item.shade) if colour else None
            )
            text.append(" " + item.label)
    text.truncate(width)
    return text


def _x_axis(x0: float, x1: float, margin: int, plot_width: int, xlabel: str) -> Line:
    count = max(2, plot_width // 10)
    ticks = nice_ticks(x0, x1, count)
    names = labels(ticks)
    line = [" "] * plot_width
    unit = f" {xlabel}" if xlabel else ""
    usable = plot_width - len(unit)
    for value, name in zip(ticks, names, strict=True):
        x = int((value - x0) / (x1 - x0) * plot_width)
        text = "╵" + name
        if x >= 0 and x + len(text) <= usable and all(c == " " for c in line[max(0, x - 1) : x + len(text)]):
            line[x : x + len(text)] = list(text)
    body = "".join(line[:usable]) + unit
    return Line(" " * margin + body, "dim")


class PlotView(StripWidget):
    """Shows a :class:`Figure`, redrawn at the widget's size."""

    DEFAULT_CSS = """
    PlotView { height: 1fr; min-height: 5; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.figure: Figure | None = None
        #: ``LONGSLIT_PLOT_TIMES=FILE``: each redraw appends "plot-id wall-ms cpu-ms width height" to FILE
        #: (a benchmark's view from the real console script: ``bench/tui_plots.py --summarize FILE``).
        self._times_file = os.environ.get(PLOT_TIMES_ENV) or None

    def drawn(self, seconds: float, cpu: float) -> None:
        if self._times_file and self.figure is not None:
            try:
                with open(self._times_file, "a", encoding="utf-8") as log:
                    size = f"{self.size.width} {self.size.height}"
                    log.write(f"{self.id} {seconds * 1e3:.3f} {cpu * 1e3:.3f} {size}\n")
            except OSError:  # a timing log must never take the app down
                self._times_file = None

    def plot(self, figure) -> None:
        """Set what to draw: a :class:`Figure`, a plotext ``draw(plt)`` function, or None (nothing)."""
        self.figure = figure
        self.changed()

    def colour(self) -> bool:
        return not getattr(self.app, "no_color", False) and self.app.console.color_system not in (
            None,
            "standard",
            "windows",
        )

    def lines(self) -> list[Line]:
        if self.figure is None:
            return []
        try:
            if callable(self.figure):  # a plotext drawing function (the older screens' way)
                return _plotext_lines(self.figure, self.size.width, self.size.height, self.colour())
            return figure_lines(self.figure, self.size.width, self.size.height, self.colour())
        except Exception as exc:  # a chart must never take the app down
            return [Line(f"(cannot draw: {type(exc).__name__}: {exc})")]


def _plotext_lines(draw, width: int, height: int, colour: bool) -> list[Line]:
    """``draw(plt)`` with plotext's module, at this size, as Lines (plotext keeps one global figure,
    so it is built from scratch each time)."""
    if width < 10 or height < 4:
        return []
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    try:
        draw(plt)
        built = plt.build()
    finally:
        plt.clear_figure()
    text = Text.from_ansi(built) if colour else Text(plt.uncolorize(built))
    return [Line.from_text(line) for line in text.split("\n")]


__all__ = ["Band", "Figure", "PlotView", "Series", "Span", "nice_step", "render_figure"]
