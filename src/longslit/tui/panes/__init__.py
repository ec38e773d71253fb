"""The screens of the terminal UI: one module per screen, and the table that orders them.

Each step kind with a screen of its own maps to its pane class here; a kind without one (a plugin's)
gets a :class:`~.base.KindPane` with its form and a summary of its product, so it appears in the UI
with no UI code. The order is the step-kind table's (``longslit.stepkinds``); Save comes last.
Adding a screen is one module and one entry in :data:`PANES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...stepkinds import StepKind
from .background import BackgroundPane
from .base import KindPane, StepPane
from .calibrate import CalibratePane
from .cosmic import CosmicPane
from .extract import ExtractPane
from .flux import FluxPane
from .frame import FramePane
from .locate import LocatePane
from .save import SavePane
from .wavelength import WavelengthPane

#: The screen of each step kind that has one of its own.
PANES: dict[str, type[StepPane]] = {
    "read": FramePane,
    "calibrate": CalibratePane,
    "locate": LocatePane,
    "wavelength": WavelengthPane,
    "flux": FluxPane,
    "cosmic": CosmicPane,
    "background": BackgroundPane,
    "extract": ExtractPane,
    "write": SavePane,
}


@dataclass(frozen=True)
class Screen:
    """One screen: its name (id and ``goto`` argument), its title, and the pane class that draws it."""

    name: str
    title: str
    pane: type[StepPane]


def screens(kinds: Iterable[StepKind]) -> tuple[Screen, ...]:
    """The screens for ``kinds``, in pipeline order, each kind's title from the table."""
    found = []
    for kind in kinds:
        pane = PANES.get(kind.name)
        if pane is None:
            pane = type(
                f"{kind.name.title()}Pane", (KindPane,), {"screen_name": kind.name, "kind": kind.name}
            )
        found.append(Screen(pane.screen_name, kind.title, pane))
    return tuple(found)


__all__ = ["PANES", "Screen", "StepPane", "screens"]
