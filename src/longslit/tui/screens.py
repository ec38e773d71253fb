"""Modal screens: help, a yes/no question, and opening another file."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class HelpScreen(ModalScreen[None]):
    """Every key, per step."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    #: In the box's top border, seen at once at any size (the list itself scrolls at 80x24).
    TITLE = "keys · Esc, q or ? closes"
    SUBTITLE = "↑↓ PgUp PgDn scroll"

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as box:
            box.border_title = self.TITLE
            box.border_subtitle = self.SUBTITLE
            yield Static(self.text, markup=False)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: y answers yes; n, Esc or Enter answer no (a stray Enter never overwrites)."""

    BINDINGS = [Binding("y", "answer(True)", "yes"), Binding("n,escape,enter", "answer(False)", "no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(self.question, markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class OpenScreen(ModalScreen[str | None]):
    """Ask for the path of another frame."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="open"):
            yield Label("Open FITS file (Enter to open, Esc to cancel):")
            yield Input(placeholder="path/to/frame.fits", id="open-path")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
