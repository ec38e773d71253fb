"""Keys as a user types them, for the help screen and the footer; and a footer that keeps the essentials.

Textual names keys by their Unicode names (``plus``, ``question_mark``, ``full_stop``); a user reads
``+``, ``?`` and ``.``. The footer lists the keys every screen shares first (help, quit, next, previous,
form; in a form, Esc back to the screen's keys), then the screen's own as many as fit whole: at 80
columns a screen's own keys are the ones left out (the help screen lists them all), never the way out,
and no key is cut in the middle of its name.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.keys import format_key
from textual.widget import Widget

#: Names :func:`textual.keys.format_key` leaves as words, as keyboards label them.
_WORDS = {
    "delete": "Del",
    "escape": "Esc",
    "space": "Space",
    "tab": "Tab",
    "backspace": "Backspace",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "home": "Home",
    "end": "End",
    "enter": "Enter",
}
_MODIFIERS = {"shift": "Shift", "ctrl": "Ctrl", "alt": "Alt", "meta": "Meta"}

#: Actions the footer shows first, in this order, whatever the screen.
ESSENTIAL = ("help", "focus_pane", "quit_app", "step(1)", "step(-1)", "edit_form")


def key_text(key: str) -> str:
    """One key as typed: ``plus`` -> ``+``, ``shift+up`` -> ``Shift+↑``, ``f1`` -> ``F1``."""
    *modifiers, name = key.split("+") if key != "plus" else ["plus"]
    shown = _WORDS.get(name) or format_key(name)
    if len(shown) > 1 and shown[0] == "f" and shown[1:].isdigit():
        shown = shown.upper()
    return "+".join([*(_MODIFIERS.get(m, m) for m in modifiers), shown])


def binding_keys(binding: Binding) -> str:
    """Every key of ``binding`` as typed, separated by spaces (``+ = ]`` for ``plus,equals_sign,...``)."""
    return " ".join(key_text(k.strip()) for k in binding.key.split(","))


def fitting(items: list[tuple[str, str]], width: int) -> int:
    """How many of ``items`` (key as shown, description), in order, fit whole in ``width`` columns as
    the compact footer draws them: "key description", one column between items."""
    used = -1
    for count, (shown, description) in enumerate(items):
        used += 1 + cell_len(shown) + (1 + cell_len(description) if description else 0)
        if used > width:
            return count
    return len(items)


class FooterItem(NamedTuple):
    """One key as the footer draws it: what it runs and the columns ``start`` to ``end`` it covers
    (key and description, not the gap after them), so a click finds its key by its column."""

    key: str
    key_display: str
    description: str
    action: str
    enabled: bool
    tooltip: str
    start: int
    end: int


class KeyFooter(Widget, can_focus=False):
    """The keys of the screen on one line, the shared keys first and only whole keys, so a narrow
    terminal leaves out a screen's own keys, never the way out.

    One widget drawing one line of text, not Textual's footer (a widget per key, all recomposed,
    mounted and styled again whenever the bindings change): a screen switch spent its last
    milliseconds above issue 21's 150 ms there. A key runs on a click (its columns are kept), is
    lit under the mouse and shows its tooltip, as Textual's keys did.
    """

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"footer-key--key", "footer-key--description", "footer-key--hover"}
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        text-wrap: nowrap;
        color: $footer-foreground;
        background: $footer-background;
        & > .footer-key--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .footer-key--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .footer-key--hover {
            background: $block-hover-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._ready = False
        self._hover: int | None = None
        #: The keys as last drawn, for clicks, the mouse and the tests.
        self.items: list[FooterItem] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        # As Textual's footer: the first signal says the bindings can be read; while the app is not
        # focused the keys wait (the signal comes again when it is).
        self._ready = True
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self.refresh()

    def on_resize(self, event) -> None:
        self.refresh()

    def _layout(self, width: int) -> list[FooterItem]:
        """The keys to draw at ``width`` columns: one per action, the shared ones first, as many as
        fit whole (see :func:`fitting`)."""
        first: dict[str, tuple] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in first:
                first[binding.action] = (binding, enabled, tooltip)
        rank = {action: i for i, action in enumerate(ESSENTIAL)}
        ordered = sorted(first.values(), key=lambda item: rank.get(item[0].action, len(rank)))
        shown = [(self.app.get_key_display(b), b.description) for b, _, _ in ordered]
        items, x = [], 0
        for (binding, enabled, tooltip), (display, description) in zip(
            ordered[: fitting(shown, width)], shown, strict=False
        ):
            end = x + cell_len(display) + (1 + cell_len(description) if description else 0)
            items.append(
                FooterItem(binding.key, display, description, binding.action, enabled, tooltip, x, end)
            )
            x = end + 1
        return items

    def render(self) -> Text:
        if not self._ready:
            self.items = []
            return Text()
        self.items = self._layout(self.size.width or self.app.size.width)
        key_style = self.get_component_rich_style("footer-key--key")
        description_style = self.get_component_rich_style("footer-key--description")
        hover = self.get_component_rich_style("footer-key--hover") if self._hover is not None else None
        text = Text(no_wrap=True, end="")
        for index, item in enumerate(self.items):
            if index:
                text.append(" ")
            extra = Style(dim=True) if not item.enabled else Style()
            if hover is not None and index == self._hover:
                extra = Style(bgcolor=hover.bgcolor) + extra
            text.append(item.key_display, key_style + extra)
            if item.description:
                text.append(" " + item.description, description_style + extra)
        return text

    def _item_at(self, x: int) -> int | None:
        return next((i for i, item in enumerate(self.items) if item.start <= x < item.end), None)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        index = self._item_at(event.x)
        if index != self._hover:
            self._hover = index
            self.tooltip = (self.items[index].tooltip or None) if index is not None else None
            self.refresh()

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.tooltip = None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        index = self._item_at(event.x)
        if index is None:
            return
        item = self.items[index]
        if item.enabled:
            self.app.simulate_key(item.key)
        else:
            self.app.bell()
