"""Draw a widget's rich Text as cached Strips: the fast path for the 2D view and the plots.

Textual turns a widget's ``render()`` result into Content and then Strips, which costs most of a redraw
for Text with a style per cell (a half-block image, a braille plot: thousands of spans). Widgets here
render their Text once per change and size, turned straight into Segments by rich, and hand Textual
the Strips line by line.
"""

from __future__ import annotations

import time

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static


class Line:
    """One line being drawn: (text, style) parts, turned into Segments without rich's Text machinery."""

    __slots__ = ("parts",)

    def __init__(self, text: str = "", style: str | Style | None = None) -> None:
        self.parts: list[tuple[str, str | Style | None]] = [(text, style)] if text else []

    def append(self, text: str, style: str | Style | None = None) -> Line:
        self.parts.append((text, style))
        return self

    @classmethod
    def from_text(cls, text: Text) -> Line:
        line = cls()
        line.parts = [(segment.text, segment.style) for segment in segments_of(text)]
        return line

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.parts)

    def segments(self) -> list[Segment]:
        """The parts as Segments, neighbours of the same style merged."""
        out: list[Segment] = []
        run: list[str] = []
        current: str | Style | None = None
        for text, style in self.parts:
            if style is not current and style != current and run:
                out.append(Segment("".join(run), _style(current)))
                run = []
            current = style
            run.append(text)
        if run:
            out.append(Segment("".join(run), _style(current)))
        return out

    def to_text(self) -> Text:
        text = Text()
        for part, style in self.parts:
            text.append(part, style)
        return text


def join(lines: list[Line]) -> Text:
    """``lines`` as one Text (for tests and for Textual's ordinary path)."""
    return Text("\n").join(line.to_text() for line in lines)


class StripWidget(Widget):
    """A widget that draws :class:`Line` s (its :meth:`lines`), shown through cached Strips; call
    :meth:`changed` when what it draws changes. ``render()`` gives the same as Text."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._strips: tuple[tuple, list[Strip]] | None = None
        self._version = 0

    def changed(self) -> None:
        """What to draw changed: drop the cached Strips and redraw."""
        self._version += 1
        self.refresh()

    def lines(self) -> list[Line]:
        """What to draw, one :class:`Line` per row (the widget's size is ``self.size``)."""
        return []

    def drawn(self, seconds: float, cpu: float) -> None:
        """Called after each full redraw (lines to Strips) with the seconds it took, wall and this
        thread's CPU."""

    def render(self) -> Text:
        return join(self.lines())

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        key = (self._version, width, height, self.app.no_color, self.app.console.color_system)
        if self._strips is None or self._strips[0] != key:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                lines = self.lines()[:height]
            except Exception as exc:  # a drawing bug must not end the session: it is said where it drew
                lines = [Line(f"cannot draw this view: {type(exc).__name__}: {exc}", "bold red")]
                self.log.error(f"{type(self).__name__}.lines failed: {exc!r}")
            strips = [Strip(line.segments()).crop_extend(0, width, _NULL) for line in lines]
            self._strips = (key, strips)
            self.drawn(time.perf_counter() - started, time.thread_time() - cpu)
        strips = self._strips[1]
        return strips[y] if y < len(strips) else Strip([Segment(" " * width, _NULL)], width)


_NULL = Style.null()


def _style(style: str | Style | None) -> Style:
    """A Style for a Segment (never None: Textual's NO_COLOR filter reads every segment's colours)."""
    if isinstance(style, str):
        return Style.parse(style) if style else _NULL  # Style.parse is cached by rich
    return _NULL if style is None else style


def segments_of(line: Text) -> list[Segment]:
    """The Segments of one line of Text whose spans do not overlap (as the renderers here make them):
    one Segment per span, without rich's general style stacking (most of a redraw's cost)."""
    plain = line.plain
    base = _style(line.style)
    out: list[Segment] = []
    position = 0
    for span in sorted(line.spans, key=lambda s: s.start):
        if span.start > position:
            out.append(Segment(plain[position : span.start], base))
        if span.end > span.start:
            style = _style(span.style)
            out.append(
                Segment(plain[span.start : span.end], base + style if base and style else style or base)
            )
        position = max(position, span.end)
    if position < len(plain):
        out.append(Segment(plain[position:], base))
    return out


class Shown(Static):
    """A Static that ignores an update to what it already shows: each update costs a layout pass of
    the screen, and after an aperture nudge most captions and messages read the same."""

    def update(self, content="", **kwargs) -> None:
        if getattr(self, "_shown", None) == content and not kwargs:
            return
        self._shown = content
        super().update(content, **kwargs)
