"""What every screen shares: the layout, the 2D view and its keys, the step's form.

A screen only draws what the session holds; it never computes science. Keys that change the recipe post
a message (:class:`StepPane.Edit`) that the app turns into a session edit and a rerun in a worker; the app
calls :meth:`StepPane.update_from` when the result is in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static

from ..widgets.frame_view import FrameView, Overlay
from ..widgets.params import ParamForm
from ..widgets.plot import PlotView

if TYPE_CHECKING:
    from ..session import Session

APERTURE, BACKGROUND, SELECTED, PROTECTED = (
    "rgb(255,215,0)",
    "rgb(0,200,255)",
    "rgb(255,0,255)",
    "rgb(0,200,0)",
)
#: Layers of the 2D view, cycled with ``v``.
LAYERS = ("SCI", "ERR", "DQ", "cleaned", "background", "residual")


def overlays(session: Session, protected: bool = False) -> list[Overlay]:
    """Aperture and background edges of the last geometry (the selected region highlighted)."""
    if session.reduction is None:
        return []
    geometry = session.reduction.geometry
    selected = session.selected_region
    traced = session.regions() is None  # one symmetric background pair, selected together
    marks = [Overlay(geometry.aperture, SELECTED if selected == 0 else APERTURE, "=")]
    marks += [
        Overlay(band, SELECTED if selected == i or (traced and selected) else BACKGROUND, "-")
        for i, band in enumerate(geometry.background, start=1)
    ]
    if protected:
        marks += [Overlay(band, PROTECTED, "~") for band in geometry.protected]
    return marks


def layer_image(session: Session, layer: str) -> np.ndarray | None:
    """The 2D array of ``layer`` (None when that product does not exist yet)."""
    frame, result = session.frame, session.reduction
    if frame is None:
        return None
    if layer == "SCI":
        return frame.sci
    if layer == "ERR":
        return frame.error
    if layer == "DQ":
        return None if frame.dq is None else frame.dq.astype(np.float32)
    if result is None:
        return None
    return {
        "cleaned": result.cleaned.sci,
        "background": result.background.model,
        "residual": result.subtracted.sci,
    }.get(layer)


class StepPane(Horizontal):
    """Base of the screens: a main column (plots, 2D view) and a side column (form, figures).

    A screen declares its :attr:`screen_name` (its id, ``goto('name')``), the step kind whose method
    and parameters its form edits (:attr:`kind`, or None for no form), and its own key bindings.
    """

    can_focus = True
    #: The screen's name: its id and what ``goto`` takes.
    screen_name: ClassVar[str] = ""
    #: The step kind whose method and parameters the form edits (None: no form).
    kind: ClassVar[str | None] = None
    BINDINGS = [
        Binding("v", "layer", "layer"),
        Binding("z", "zoom(2)", "zoom"),
        Binding("Z", "zoom(0.5)", "unzoom", show=False),
        Binding("s", "stretch", "stretch", show=False),
        Binding("escape", "focus_pane", "keys", show=False),
    ]

    @dataclass
    class Edit(Message):
        """Change the session (a region edit by keys), then rerun unless ``rerun`` is false."""

        change: Callable[[Session], object]
        rerun: bool = True

    @dataclass
    class MethodChosen(Message):
        """Switch ``step`` to method ``name`` and rerun."""

        step: str
        name: str

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id or self.screen_name)
        self.session = session
        self.view_layer = "SCI"
        self.zoom = 1.0
        self.stretch_method = "zscale"

    @property
    def step(self) -> str:
        """The form's step kind (or the screen's name, for ids), kept for the widgets' ids."""
        return self.kind or self.screen_name

    def update_from(self, session: Session) -> None:
        """Redraw from the session (after a run, or when shown)."""

    # -- shared 2D view controls --------------------------------------------------------------------
    def window(self) -> tuple[int, int, int, int] | None:
        """Rows and columns shown: centred on the trace when zoomed."""
        frame = self.session.frame
        if frame is None:
            return None
        nrows, ncols = frame.shape
        centre = nrows / 2
        if self.session.reduction is not None:
            centre = float(np.median(self.session.reduction.geometry.trace))
        half = max(nrows / self.zoom / 2, 4)
        r0 = int(max(0, min(centre - half, nrows - 2 * half)))
        return r0, int(min(nrows, r0 + 2 * half)), 0, ncols

    def caption(self, layer: str) -> str:
        window = self.window()
        if window is None:
            return ""
        r0, r1, c0, c1 = window
        return f"{layer} · rows {r0}-{r1 - 1} · cols {c0}-{c1 - 1} · {self.stretch_method} · v z s"

    def action_layer(self) -> None:
        available = [name for name in LAYERS if layer_image(self.session, name) is not None]
        if available:
            index = available.index(self.view_layer) if self.view_layer in available else -1
            self.view_layer = available[(index + 1) % len(available)]
            self.update_from(self.session)

    def action_zoom(self, factor: float) -> None:
        self.zoom = float(min(max(self.zoom * factor, 1.0), 32.0))
        self.update_from(self.session)

    def action_stretch(self) -> None:
        self.stretch_method = "percentile" if self.stretch_method == "zscale" else "zscale"
        self.update_from(self.session)

    def action_focus_pane(self) -> None:
        self.focus()

    def show_frame(self, view: FrameView, caption: Static, *, mask=None, protected=False) -> None:
        image = layer_image(self.session, self.view_layer)
        if image is None:
            self.view_layer, image = "SCI", layer_image(self.session, "SCI")
        view.show(
            image,
            mask=mask,
            overlays=overlays(self.session, protected),
            window=self.window(),
            stretch_method=self.stretch_method,
        )
        caption.update(self.caption(self.view_layer))

    def compose(self):
        """The usual layout: a plot over the 2D view, the form and figures beside them."""
        with Vertical():
            yield PlotView(id=f"{self.step}-plot")
            yield FrameView(id=f"{self.step}-view")
            yield Static(id=f"{self.step}-caption", classes="caption")
        with Vertical(classes="side"):
            yield self.form_for(self.step)
            yield Static(id=f"{self.step}-figures", classes="figures")

    def form_for(self, step: str) -> ParamForm:
        return ParamForm(step, id=f"form-{step}")

    def update_form(self) -> None:
        if not self.step or not self.query(f"#form-{self.step}"):
            return
        form = self.query_one(f"#form-{self.step}", ParamForm)
        session = self.session
        form.set_method(session.methods(self.step), session.method(self.step), session.params(self.step))


class KindPane(StepPane):
    """The screen of a step kind that has no screen of its own (a plugin's): its form, and what its
    product says of itself."""

    def compose(self):
        with Vertical():
            yield Static(id=f"{self.step}-product", classes="figures")
        with Vertical(classes="side"):
            yield self.form_for(self.step)
            yield Static(id=f"{self.step}-figures", classes="figures")

    def update_from(self, session: Session) -> None:
        self.update_form()
        kind = session.kind(self.step)
        result = session.reduction
        if result is None or kind.provides is None:
            return
        product = result.products.get(kind.provides)
        record = next((r for r in result.records if r.step == self.step), None)
        lines = [f"{kind.title}: {kind.summary}", "", f"product: {kind.provides} ({type(product).__name__})"]
        info = getattr(product, "info", None)
        if isinstance(info, dict):
            lines += [f"  {key}: {value}" for key, value in list(info.items())[:12]]
        if record is not None:
            lines.append(
                f"method {record.method} ({record.package} {record.version}), {record.seconds:.3f} s"
            )
        self.query_one(f"#{self.step}-product", Static).update("\n".join(lines))
