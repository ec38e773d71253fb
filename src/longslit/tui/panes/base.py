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
from textual.widgets import Input, OptionList, Static

from ..widgets.frame_view import FrameView, Overlay
from ..widgets.params import ParamForm
from ..widgets.plot import SHADE_CYAN, SHADE_GOLD, PlotView, Span
from ..widgets.strips import Shown

if TYPE_CHECKING:
    from ..session import Session

APERTURE, BACKGROUND, SELECTED, PROTECTED = (
    "rgb(255,215,0)",
    "rgb(0,200,255)",
    "rgb(255,0,255)",
    "rgb(0,200,0)",
)
SHADE_SELECTED = "rgb(95,0,95)"
#: Each aperture's own colour (edges on the frame) and shade (on the profile), in turn along the slit;
#: the selected one is drawn in SELECTED.
APERTURE_COLOURS = (
    "rgb(255,215,0)",
    "rgb(255,140,0)",
    "rgb(150,255,60)",
    "rgb(255,100,100)",
    "rgb(170,140,255)",
    "rgb(235,235,235)",
)
APERTURE_SHADES = (
    "rgb(95,75,0)",
    "rgb(100,50,0)",
    "rgb(45,90,0)",
    "rgb(100,35,35)",
    "rgb(60,45,105)",
    "rgb(80,80,80)",
)


def aperture_colour(index: int) -> str:
    """The colour of aperture ``index`` (along the slit) on the frame."""
    return APERTURE_COLOURS[index % len(APERTURE_COLOURS)]


#: Layers of the 2D view, cycled with ``v`` (those whose product exists; ``hits`` on the Cosmic screen).
LAYERS = ("SCI", "ERR", "DQ", "cleaned", "hits", "background", "residual")
#: The calibrate step's masters, as layers of the Calibrate screen's 2D view (``v`` cycles to them).
MASTER_LAYERS = ("master bias", "master dark", "master flat")
#: How each layer is drawn (see :class:`~longslit.tui.widgets.frame_view.FrameView`): the rest are images.
LAYER_KINDS = {"DQ": "flags", "hits": "count"}


def overlays(session: Session, protected: bool = False) -> list[Overlay]:
    """Aperture and background edges of the last geometry (the selected region highlighted)."""
    if session.reduction is None:
        return []
    geometry = session.reduction.geometry
    selected = session.selected_region
    traced = session.regions() is None  # one symmetric background pair, selected together
    if geometry.apertures:  # several: each in its colour, the selected one highlighted
        chosen = session.aperture_index()
        marks = [
            Overlay(a.band, SELECTED if selected == 0 and i == chosen else aperture_colour(i), "=")
            for i, a in enumerate(geometry.apertures)
        ]
    else:
        marks = [Overlay(geometry.aperture, SELECTED if selected == 0 else APERTURE, "=")]
    marks += [
        Overlay(band, SELECTED if selected == i or (traced and selected) else BACKGROUND, "-")
        for i, band in enumerate(geometry.background, start=1)
    ]
    if protected:
        marks += [Overlay(band, PROTECTED, "~") for band in geometry.protected]
    return marks


def layer_image(session: Session, layer: str, raw: bool = False) -> np.ndarray | None:
    """The 2D array of ``layer`` (None when that product does not exist yet): SCI, ERR and DQ of the
    frame the steps work on (calibrated and trimmed), or of the frame as read when ``raw``."""
    frame, result = (session.frame if raw else session.working), session.reduction
    if frame is None:
        return None
    if layer == "SCI":
        return frame.sci
    if layer == "ERR":
        return frame.error
    if layer == "DQ":
        return frame.dq
    if result is None:
        return None
    if layer in MASTER_LAYERS:  # the calibrate step's masters, on the calibrated frame's pixels
        masters = getattr(result.products.get("calibration"), "masters", None) or {}
        master = masters.get(layer.split()[-1])
        return None if master is None else master.data
    return {
        "cleaned": result.cleaned.sci,
        "hits": result.cosmic.mask,
        "background": result.background.model,
        "residual": result.subtracted.sci,
    }.get(layer)


class StepPane(Horizontal):
    """Base of the screens: a main column (plots, 2D view) and a side column (form, figures).

    A screen declares its :attr:`screen_name` (its id, ``goto('name')``), the step kind whose method
    and parameters its form edits (:attr:`kind`, or None for no form), and its own key bindings.
    """

    can_focus = True
    #: Whether the 2D view shows the frame as read (the Frame screen) rather than the calibrated one.
    shows_raw: ClassVar[bool] = False
    #: Layers the screen's 2D view offers beyond :data:`LAYERS` (the Calibrate screen: the masters).
    extra_layers: ClassVar[tuple[str, ...]] = ()
    #: The screen's name: its id and what ``goto`` takes.
    screen_name: ClassVar[str] = ""
    #: The step kind whose method and parameters the form edits (None: no form).
    kind: ClassVar[str | None] = None
    #: Whether the 2D view marks the regions (aperture, background) of the last result.
    show_regions: ClassVar[bool] = True
    BINDINGS = [
        Binding("v", "layer", "layer", tooltip="next 2D layer: SCI, ERR, DQ, cleaned, hits, background..."),
        Binding("z", "zoom(2)", "zoom", tooltip="zoom in on the rows (x2)"),
        Binding("Z", "zoom(0.5)", "unzoom", show=False, tooltip="zoom out on the rows"),
        Binding(
            "greater_than_sign", "zoom_columns(2)", "zoom cols", show=False, tooltip="zoom in on columns"
        ),
        Binding(
            "less_than_sign", "zoom_columns(0.5)", "unzoom cols", show=False, tooltip="zoom out on columns"
        ),
        Binding("shift+up", "pan(1, 0)", "pan", show=False, tooltip="pan up (an eighth of the view)"),
        Binding("shift+down", "pan(-1, 0)", "pan", show=False, tooltip="pan down"),
        Binding("shift+left", "pan(0, -1)", "pan", show=False, tooltip="pan left"),
        Binding("shift+right", "pan(0, 1)", "pan", show=False, tooltip="pan right"),
        Binding(
            "0", "reset_view", "whole frame", show=False, tooltip="the whole frame again (no zoom, no pan)"
        ),
        Binding("s", "stretch", "stretch", show=False, tooltip="stretch: zscale or 0.5-99.5 percentile"),
        Binding("y", "yscale", "y scale", show=False, tooltip="profile's y scale: asinh, log, linear"),
        Binding(
            "escape", "focus_pane", "keys", key_display="Esc", tooltip="from a form back to the screen's keys"
        ),
    ]
    #: The shared 2D view and plot actions (the keys above).
    VIEW_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"layer", "zoom", "zoom_columns", "pan", "reset_view", "stretch", "yscale"}
    )
    #: Which of :attr:`VIEW_ACTIONS` do something on this screen: all where there is a 2D view; a screen
    #: without one names its own, and the others' keys are neither shown in the footer nor active.
    view_actions: ClassVar[frozenset[str]] = VIEW_ACTIONS

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
        self.column_zoom = 1.0
        #: Where the view is centred, in rows and columns (None: on the trace, and the middle column).
        self.centre: list[float | None] = [None, None]
        self.stretch_method = "zscale"
        #: The y scale of the spatial profile: asinh shows the core and the wings at once.
        self.yscale = "asinh"

    @property
    def step(self) -> str:
        """The form's step kind (or the screen's name, for ids), kept for the widgets' ids."""
        return self.kind or self.screen_name

    def update_from(self, session: Session) -> None:
        """Redraw from the session (after a run, or when shown)."""

    # -- shared 2D view controls --------------------------------------------------------------------
    @property
    def shown_frame(self):
        """The frame the 2D view shows: as read on the Frame screen, the calibrated one elsewhere."""
        return self.session.frame if self.shows_raw else self.session.working

    def window(self) -> tuple[int, int, int, int] | None:
        """Rows and columns shown: centred on the trace (or where panned to), ``zoom`` times fewer rows."""
        frame = self.shown_frame
        if frame is None:
            return None
        nrows, ncols = frame.shape
        row_centre, column_centre = self.centre
        if row_centre is None:
            row_centre = nrows / 2
            if self.session.reduction is not None:
                row_centre = float(np.median(self.session.reduction.geometry.trace)) + 0.5
        if column_centre is None:
            column_centre = ncols / 2
        return (*_span(row_centre, nrows, self.zoom, 4), *_span(column_centre, ncols, self.column_zoom, 8))

    def caption(self, layer: str) -> str:
        window = self.window()
        if window is None:
            return ""
        r0, r1, c0, c1 = window
        return f"{layer} · rows {r0}-{r1 - 1} · cols {c0}-{c1 - 1} · {self.stretch_method}"

    def action_layer(self) -> None:
        names = (*LAYERS, *self.extra_layers)
        available = [name for name in names if layer_image(self.session, name, self.shows_raw) is not None]
        if available:
            index = available.index(self.view_layer) if self.view_layer in available else -1
            self.view_layer = available[(index + 1) % len(available)]
            self.update_from(self.session)

    def action_zoom(self, factor: float) -> None:
        self.zoom = float(min(max(self.zoom * factor, 1.0), 64.0))
        self.update_view()

    def action_zoom_columns(self, factor: float) -> None:
        self.column_zoom = float(min(max(self.column_zoom * factor, 1.0), 64.0))
        self.update_view()

    def action_pan(self, rows: int, columns: int) -> None:
        """Move the view by an eighth of what it shows (it stops at the frame's edges)."""
        window = self.window()
        if window is None:
            return
        r0, r1, c0, c1 = window
        nrows, ncols = self.shown_frame.shape
        row = (r0 + r1) / 2 + rows * max((r1 - r0) / 8, 1)
        column = (c0 + c1) / 2 + columns * max((c1 - c0) / 8, 1)
        half_rows, half_columns = (r1 - r0) / 2, (c1 - c0) / 2
        self.centre = [
            float(np.clip(row, half_rows, nrows - half_rows)),
            float(np.clip(column, half_columns, ncols - half_columns)),
        ]
        self.update_view()

    def action_reset_view(self) -> None:
        self.zoom, self.column_zoom, self.centre = 1.0, 1.0, [None, None]
        self.update_view()

    def update_view(self) -> None:
        """Redraw after a change of the view only (zoom, pan, layer, stretch): by default everything."""
        self.update_from(self.session)

    def action_stretch(self) -> None:
        self.stretch_method = "percentile" if self.stretch_method == "zscale" else "zscale"
        self.update_from(self.session)

    def action_yscale(self) -> None:
        self.yscale = {"asinh": "log", "log": "linear"}.get(self.yscale, "asinh")
        self.update_view()

    def action_focus_pane(self) -> None:
        self.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the view keys a screen has no use for (``v`` and ``z`` where there is no 2D view); in a
        text field the screen's keys (the field takes what they type: the footer showed "+- order"
        there); and Esc unless a form has the focus (the way back to the screen's keys, shown there)."""
        focused = self.screen.focused
        if action == "focus_pane":
            return focused is not self
        if isinstance(focused, (Input, OptionList)):  # a text field, an open menu: no screen keys
            return False
        if action in self.VIEW_ACTIONS:
            return action in self.view_actions
        return True

    def show_frame(self, view: FrameView, caption: Static, *, mask=None, protected=False) -> None:
        image = layer_image(self.session, self.view_layer, self.shows_raw)
        if image is None:
            self.view_layer, image = "SCI", layer_image(self.session, "SCI", self.shows_raw)
        frame = self.shown_frame
        kind = LAYER_KINDS.get(self.view_layer, "image")
        view.show(
            image,
            mask=mask if kind == "image" else None,
            overlays=overlays(self.session, protected) if self.show_regions else [],
            window=self.window(),
            stretch_method=self.stretch_method,
            kind=kind,
            wavelength=frame.wavelength if frame.calibrated else None,
        )
        caption.update(view.legend(self.view_layer))

    def watch_has_focus(self, _has_focus: bool) -> None:
        """Restyle the pane and its main panel, not every widget under it, when its focus changes.

        Textual restyles a widget and all its descendants on a focus change (some rule might select
        on an ancestor's focus); here only ``StepPane:focus > .main`` does (app.tcss). The pane's
        subtree, restyled twice per screen switch (the old pane's blur, the new one's focus), was
        about half of a switch's time in a profile of 30 switches on 3C 120.
        """
        self.app.stylesheet.update_nodes([self, *self.query_children(".main")], animate=True)

    def on_mount(self) -> None:
        # Titles on the two panels, so a user sees which one the keys go to (the CSS colours the
        # focused one): the screen's view (its own keys), and the form (e goes in, Esc comes out).
        for panel in self.query(".main"):
            panel.border_title = "view · ? keys"
        for panel in self.query(".side"):
            panel.border_title = "form · e"

    def compose(self):
        """The usual layout: a plot over the 2D view, the form and figures beside them."""
        with Vertical(classes="main"):
            yield PlotView(id=f"{self.step}-plot")
            yield FrameView(id=f"{self.step}-view")
            yield Shown(id=f"{self.step}-caption", classes="caption")
        with Vertical(classes="side"):
            yield self.form_for(self.step)
            yield Shown(id=f"{self.step}-figures", classes="figures")

    def form_for(self, step: str) -> ParamForm:
        return ParamForm(step, id=f"form-{step}")

    def update_form(self) -> None:
        if not self.step or not self.query(f"#form-{self.step}"):
            return
        form = self.query_one(f"#form-{self.step}", ParamForm)
        session = self.session
        form.set_method(session.methods(self.step), session.method(self.step), session.params(self.step))


def region_spans(session: Session) -> list[Span]:
    """The aperture and background rows (at the middle column) as shaded spans of a profile plot."""
    if session.reduction is None:
        return []
    geometry = session.reduction.geometry
    middle = len(geometry.trace) // 2
    selected = session.selected_region
    traced = session.regions() is None
    spans = []
    if geometry.apertures:  # several: each in its shade, the selected one highlighted
        chosen = session.aperture_index()
        for i, aperture in enumerate(geometry.apertures):
            spans.append(
                Span(
                    float(aperture.band.lower[middle]) + 0.5,
                    float(aperture.band.upper[middle]) + 0.5,
                    "",
                    SHADE_SELECTED
                    if selected == 0 and i == chosen
                    else APERTURE_SHADES[i % len(APERTURE_SHADES)],
                    "▒",
                )
            )
        for i, band in enumerate(geometry.background):
            spans.append(
                Span(
                    float(band.lower[middle]) + 0.5,
                    float(band.upper[middle]) + 0.5,
                    "background" if i == 0 else "",
                    SHADE_SELECTED if selected else SHADE_CYAN,
                    "░",
                )
            )
        return spans
    for i, band in enumerate((geometry.aperture, *geometry.background)):
        chosen = selected == i or (traced and selected and i)
        label = ("aperture" if i == 0 else "background") if i <= 1 else ""
        spans.append(
            Span(
                float(band.lower[middle]) + 0.5,
                float(band.upper[middle]) + 0.5,
                label,
                SHADE_SELECTED if chosen else (SHADE_GOLD if i == 0 else SHADE_CYAN),
                "▒" if i == 0 else "░",
            )
        )
    return spans


def _span(centre: float, size: int, zoom: float, least: int) -> tuple[int, int]:
    """``[start, stop)`` of ``size / zoom`` (at least ``least``) around ``centre``, inside ``[0, size)``."""
    half = max(size / zoom / 2, least / 2)
    start = round(max(0.0, min(centre - half, size - 2 * half)))
    return start, int(min(size, round(start + 2 * half)))


class KindPane(StepPane):
    """The screen of a step kind that has no screen of its own (a plugin's): its form, and what its
    product says of itself."""

    view_actions = frozenset()

    def compose(self):
        with Vertical(classes="main"):
            yield Shown(id=f"{self.step}-product", classes="figures")
        with Vertical(classes="side"):
            yield self.form_for(self.step)
            yield Shown(id=f"{self.step}-figures", classes="figures")

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
