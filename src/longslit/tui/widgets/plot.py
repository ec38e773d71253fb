"""A plotext chart as a widget: the figure is rebuilt at the widget's size on every render.

plotext keeps one global figure, so a long-lived figure would leak state between charts (and its log
scale breaks on re-render); drawing from scratch in ``render`` avoids both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.widget import Widget

Draw = Callable[[Any], None]


class PlotView(Widget):
    """Calls ``draw(plt)`` with plotext's module, sized to the widget, and shows the result."""

    DEFAULT_CSS = """
    PlotView { height: 1fr; min-height: 5; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._draw: Draw | None = None

    def plot(self, draw: Draw | None) -> None:
        """Set what to draw (None: nothing) and redraw."""
        self._draw = draw
        self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        if self._draw is None or width < 10 or height < 4:
            return Text("")
        import plotext as plt

        plt.clear_figure()
        plt.plotsize(width, height)
        colour = not getattr(self.app, "no_color", False) and self.app.console.color_system is not None
        plt.theme("clear")
        try:
            self._draw(plt)
            built = plt.build()
        except Exception as exc:  # a chart must never take the app down
            return Text(f"(cannot draw: {exc})")
        finally:
            plt.clear_figure()
        return Text.from_ansi(built) if colour else Text(plt.uncolorize(built))
