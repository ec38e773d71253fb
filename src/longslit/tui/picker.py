"""Choose calibration frames from a file picker: bias, dark, flat and more exposures of the target.

A modal screen over a :class:`~textual.widgets.DirectoryTree` that shows folders and FITS files only,
driven by keys alone: up and down move, Enter opens a folder, space marks the highlighted file for the
kind being chosen (b bias, d dark, f flat, e exposures, or Tab for the next), x clears that kind,
Backspace climbs to the parent folder, Enter on a file applies, Esc cancels. The screen returns the
kinds that were changed, each with its files (absolute paths), or None.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Static
from textual.widgets.tree import TreeNode

#: The ``calibrate`` parameters the picker sets, in the order Tab visits them, with their keys.
KINDS = (("bias", "b"), ("dark", "d"), ("flat", "f"), ("exposures", "e"))
#: What counts as a FITS file.
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fits.bz2")


def is_fits(path: Path) -> bool:
    return path.name.lower().endswith(FITS_SUFFIXES)


def shorten(names: Iterable[str], room: int = 3) -> str:
    """``a.fits, b.fits, c.fits +2``: file names, the first ``room`` of them."""
    names = [Path(n).name for n in names]
    if not names:
        return "none"
    return ", ".join(names[:room]) + (f" +{len(names) - room}" if len(names) > room else "")


class FitsTree(DirectoryTree):
    """Folders and FITS files (hidden ones left out); the files marked for the current kind show [x]."""

    ICON_NODE = "+ "
    ICON_NODE_EXPANDED = "- "
    ICON_FILE = ""
    BINDINGS = [
        Binding("space", "mark", "select", show=False),
        Binding("backspace", "parent", "parent folder", show=False),
    ]

    def __init__(self, path: str | Path, *, id: str | None = None) -> None:
        super().__init__(path, id=id)
        #: The files marked (absolute paths); the screen keeps one such set per kind and swaps it in.
        self.marked: set[str] = set()

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or is_fits(p))]

    def render_label(self, node: TreeNode, base_style: Style, style: Style) -> Text:
        text = super().render_label(node, base_style, style)
        entry = node.data
        if entry is None or node.allow_expand:
            return text
        box = "[x] " if os.path.abspath(entry.path) in self.marked else "[ ] "
        return Text.assemble((box, base_style), text)

    def action_mark(self) -> None:
        """Space: mark or unmark the highlighted file (on a folder: open or close it)."""
        node = self.cursor_node
        if node is None or node.data is None:
            return
        if node.allow_expand:
            node.toggle()
            return
        path = os.path.abspath(node.data.path)
        self.marked.symmetric_difference_update({path})
        node.refresh()
        self.post_message(FramePicker.Marked())

    def action_parent(self) -> None:
        """Backspace: show the parent folder (the tree starts at the science frame's)."""
        parent = Path(self.path).resolve().parent
        if parent != Path(self.path).resolve():
            self.path = parent


class FramePicker(ModalScreen[dict[str, list[str]] | None]):
    """Pick the bias, dark, flat and exposure files; returns ``{kind: [paths]}`` for the kinds changed."""

    DEFAULT_CSS = """
    FramePicker { align: center middle; }
    #picker { width: 100%; height: 100%; max-width: 100; border: round $accent; padding: 0 1;
              background: $surface; }
    #picker-kinds { height: 1; }
    #picker-tree { height: 1fr; }
    #picker-chosen { height: 2; }
    #picker-help { height: 2; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("tab", "next_kind", "next kind", show=False),
        *(Binding(k, f"kind('{kind}')", kind, show=False) for kind, k in KINDS),
        Binding("x", "clear", "clear", show=False),
    ]

    class Marked(Message):
        """A file was marked or unmarked in the tree."""

    def __init__(self, folder: str | Path, chosen: dict[str, list[str]], kind: str = "bias") -> None:
        super().__init__()
        self.folder = Path(folder)
        #: The files per kind, absolute paths (what the recipe names now, its globs expanded).
        self.chosen = {name: {os.path.abspath(p) for p in chosen.get(name, [])} for name, _ in KINDS}
        self.changed: set[str] = set()
        self.kind = kind

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static(id="picker-kinds")
            yield FitsTree(self.folder, id="picker-tree")
            yield Static(id="picker-chosen", markup=False)
            yield Static(
                "space select · Enter open folder / apply · b d f e kind (Tab next) · x clear · "
                "Backspace parent folder · Esc cancel",
                id="picker-help",
                markup=False,
            )

    def on_mount(self) -> None:
        tree = self.query_one(FitsTree)
        tree.marked = self.chosen[self.kind]
        tree.focus()
        self._show()

    def _show(self) -> None:
        parts = []
        for name, key in KINDS:
            label = f" {key} {name} ({len(self.chosen[name])}) "
            parts.append(f"[reverse]{label}[/]" if name == self.kind else label)
        self.query_one("#picker-kinds", Static).update("Calibration frames:" + "".join(parts))
        chosen = shorten(sorted(self.chosen[self.kind]))
        self.query_one("#picker-chosen", Static).update(f"{self.kind}: {chosen}")

    def on_frame_picker_marked(self, event: FramePicker.Marked) -> None:
        self.changed.add(self.kind)
        self._show()

    def action_kind(self, kind: str) -> None:
        self.kind = kind
        tree = self.query_one(FitsTree)
        tree.marked = self.chosen[kind]
        tree._refresh_node(tree.root)  # every line's box for the new kind
        tree.refresh()
        self._show()

    def action_next_kind(self) -> None:
        names = [name for name, _ in KINDS]
        self.action_kind(names[(names.index(self.kind) + 1) % len(names)])

    def action_clear(self) -> None:
        self.chosen[self.kind].clear()
        self.changed.add(self.kind)
        self.action_kind(self.kind)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        """Enter on a file applies; with nothing marked for this kind, that file is the choice."""
        event.stop()
        if not self.chosen[self.kind]:
            self.chosen[self.kind].add(os.path.abspath(event.path))
            self.changed.add(self.kind)
        self.dismiss({name: sorted(self.chosen[name]) for name, _ in KINDS if name in self.changed})

    def action_cancel(self) -> None:
        self.dismiss(None)
