"""The last screen, Save: write the spectrum and the recipe that replays this session headless."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from ..widgets.params import Tick
from ..widgets.strips import Shown
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


class SavePane(StepPane):
    """Write the spectrum and the recipe that reproduces this session headless."""

    screen_name = "save"
    #: No 2D view here: the view keys are neither shown nor active.
    view_actions = frozenset()
    BINDINGS = [
        Binding(
            "w", "save", "write files", tooltip="write the spectrum and the recipe (asks before replacing)"
        )
    ]

    @dataclass
    class Save(Message):
        """Write ``spectrum`` (write method ``fmt``) and ``recipe``; ask before replacing files."""

        spectrum: Path
        fmt: str
        products: bool
        recipe: Path

    def compose(self):
        formats = [(m.name, m.name) for m in self.session.methods("write")]
        with Vertical(classes="save-form"):
            yield Label("spectrum file")
            yield Input(id="save-spectrum", compact=True)
            with Horizontal(classes="param-row"):
                yield Label("format ", classes="param-name")
                yield Select(
                    formats,
                    value=self.session.recipe.config("write").method,
                    allow_blank=False,
                    compact=True,
                    id="save-format",
                )
                yield Tick("2D products", compact=True, id="save-products")
            yield Label("recipe file (TOML, replays this session: longslit reduce -r FILE)")
            yield Input(id="save-recipe", compact=True)
            yield Button("Write files [w]", id="save-button", compact=True)
            yield Shown(id="save-log", classes="figures", markup=False)

    def on_mount(self) -> None:
        self.name_targets()

    def name_targets(self) -> None:
        """Fill in the file names from the open frame's name (again after ``o`` opens another)."""
        spectrum, recipe = self.session.default_targets(str(self.query_one("#save-format", Select).value))
        self.query_one("#save-spectrum", Input).value = spectrum
        self.query_one("#save-recipe", Input).value = recipe

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "save-format":
            field = self.query_one("#save-spectrum", Input)
            field.value = self.session.renamed_for(field.value, str(event.value))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save-button":
            self.action_save()

    def targets(self) -> tuple[Path, str, bool, Path]:
        return (
            Path(self.query_one("#save-spectrum", Input).value.strip()),
            str(self.query_one("#save-format", Select).value),
            bool(self.query_one("#save-products", Checkbox).value),
            Path(self.query_one("#save-recipe", Input).value.strip()),
        )

    def action_save(self) -> None:
        self.post_message(self.Save(*self.targets()))

    def update_from(self, session: Session) -> None:
        log = "\n".join(f"wrote {path}" for path in session.saved_paths[-4:])
        state = "unsaved changes" if session.unsaved else "saved"
        self.query_one("#save-log", Static).update(f"{state}\n{log}" if session.reduction else "")

    def show_failure(self, text: str) -> None:
        """A save that failed: say so where the files are named (the earlier writes stay listed)."""
        earlier = "\n".join(f"earlier: wrote {path}" for path in self.session.saved_paths[-2:])
        self.query_one("#save-log", Static).update(f"NOT WRITTEN: {text}\n{earlier}".rstrip())
