"""Keys as a user types them, for the help screen and the footer; and a footer that keeps the essentials.

Textual names keys by their Unicode names (``plus``, ``question_mark``, ``full_stop``); a user reads
``+``, ``?`` and ``.``. The footer lists the keys every screen shares first (help, quit, next, previous,
form; in a form, Esc back to the screen's keys), then the screen's own as many as fit whole: at 80
columns a screen's own keys are the ones left out (the help screen lists them all), never the way out,
and no key is cut in the middle of its name.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.binding import Binding
from textual.keys import format_key
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

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


class KeyFooter(Footer):
    """Textual's footer, with the shared keys first and only whole keys, so a narrow terminal leaves
    out a screen's own keys, never the way out."""

    _fitted_width = 0

    def on_resize(self, event) -> None:
        if event.size.width != self._fitted_width and self._bindings_ready:
            self.call_later(self.recompose)

    def compose(self):
        if not self._bindings_ready:
            return
        first: dict[str, tuple] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in first:
                first[binding.action] = (binding, enabled, tooltip)
        rank = {action: i for i, action in enumerate(ESSENTIAL)}
        ordered = sorted(first.values(), key=lambda item: rank.get(item[0].action, len(rank)))
        width = self.size.width or self.app.size.width
        self._fitted_width = width
        shown = [(self.app.get_key_display(b), b.description) for b, _, _ in ordered]
        ordered = ordered[: fitting(shown, width)]
        self.styles.grid_size_columns = len(ordered)
        for binding, enabled, tooltip in ordered:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
