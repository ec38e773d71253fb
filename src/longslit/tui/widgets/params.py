"""A form generated from a method's declared parameters: one compact line per parameter.

The same :class:`~longslit.plugins.records.Param` declarations that validate recipes and parse
``--set`` build this form, so a plugin's method gets a form with no UI code of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select, Static

from ...plugins.records import Method, Param


def format_value(param: Param, value: Any) -> str:
    """The text a user edits for ``value`` (the inverse of ``Param.parse``, up to rounding).

    Numbers show six significant digits (``%.6g``): a trace curvature of -1.9545780891047328e-08 reads
    ``-1.95458e-08``, not a 16-digit string cut at the field's edge. The recipe keeps the exact value:
    submitting the text unchanged changes nothing (see :meth:`ParamForm.on_input_submitted`).
    """
    if value is None:
        return "auto"
    if param.kind == "rows":
        return f"{value[0]}:{value[1]}"
    if param.kind == "rows_list":
        return ",".join(f"{a}:{b}" for a, b in value)
    if param.kind == "numbers_list":  # in full: editing one number must not round the others
        import json

        return json.dumps(value)
    if param.kind == "paths":  # a recipe not yet resolved may hold one path as a string
        return value if isinstance(value, str) else ",".join(value)
    if param.kind == "float" and isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class Tick(Checkbox):
    """A checkbox whose mark says its state without colour: ``▐X▌`` when on, ``▐ ▌`` when off.

    Textual's draws an X either way and tells them apart by colour only, the same in NO_COLOR; and with
    no label it drew its two padding cells into the three it asked for, so a form showed "▐X…".
    """

    @property
    def BUTTON_INNER(self) -> str:
        return "X" if self.value else " "

    def render(self):
        return super().render() if self.label else self._button


class PathInput(Input):
    """A field of paths that shows their end when it is not being edited: the file name, which tells
    frames apart, not the middle of a long resolved directory (``/tmp/.../calib/b``). The value, and
    so the recipe, keeps the whole path; editing starts with all of it selected, as in other fields."""

    def _show_end(self) -> None:
        if self.is_attached and not self.has_focus:
            self.cursor_position = len(self.value)
            self.scroll_to(x=self.max_scroll_x, animate=False, force=True, immediate=True)

    def on_mount(self) -> None:
        self.call_after_refresh(self._show_end)

    def on_resize(self) -> None:
        self.call_after_refresh(self._show_end)

    def watch_value(self) -> None:
        self.call_after_refresh(self._show_end)

    def _on_blur(self, event) -> None:
        super()._on_blur(event)
        self.call_after_refresh(self._show_end)


#: Width of the parameter names in the form; longer names end in an ellipsis, in full in the help line.
NAME_WIDTH = 13


def short_name(name: str) -> str:
    """``name`` to fit :data:`NAME_WIDTH` columns, an ellipsis marking a cut."""
    return name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"


def help_line(param: Param) -> str:
    """What the help line under the form says of the focused field: full name, help, unit, allowed."""
    unit = f" [{param.unit}]" if param.unit else ""
    return f"{param.name}{unit}: {param.help} Allowed: {param.allowed()}."


class ParamForm(Vertical):
    """Method picker plus one input per declared parameter of the chosen method."""

    DEFAULT_CSS = """
    ParamForm { height: auto; }
    ParamForm .param-row { height: 1; }
    ParamForm .param-name { width: 14; }
    ParamForm Input { width: 1fr; }
    ParamForm Select { width: 1fr; }
    ParamForm .method-row { height: 1; margin-bottom: 1; }
    ParamForm .param-help { height: auto; color: $text-muted; margin-top: 1; }
    """

    @dataclass
    class ParamChanged(Message):
        step: str
        name: str
        text: str

    @dataclass
    class MethodChanged(Message):
        step: str
        name: str

    def __init__(self, step: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.step = step
        self._signature: tuple | None = None
        # The current form's fields by parameter name: updating them after every run must not walk
        # the DOM (a query per field cost 7 ms a run, a seventh of an aperture move's budget).
        self._fields: dict[str, Any] = {}
        #: The values the form was last given (the recipe's), by parameter name.
        self._values: dict[str, Any] = {}
        self._params: dict[str, Param] = {}
        # Removal of old children completes later; fresh ids per rebuild never collide with them.
        self._generation = 0

    def set_method(self, methods: list[Method], current: Method, values: dict[str, Any]) -> None:
        """Show ``current`` among ``methods`` with ``values``; rebuilds only when the method changed."""
        signature = (current.name, tuple(m.name for m in methods))
        self._values = dict(values)
        self._params = {param.name: param for param in current.params}
        if signature == self._signature:
            self._update_values(current, values)
            return
        self._signature = signature
        self._generation += 1
        self._fields = {}
        focused = self.app.focused
        # A method picked from the form's menu: the focus stays in the form, on the new menu, so Tab
        # goes on to the new method's fields (the old widgets go, and the focus with them).
        refocus = focused is not None and self in focused.ancestors
        self.remove_children()
        picker = Select(
            [(m.name, m.name) for m in methods],
            value=current.name,
            allow_blank=False,
            compact=True,
            id=self._field_id("method"),
        )
        picker.tooltip = current.summary
        rows = [Horizontal(Label("method", classes="param-name"), picker, classes="method-row")]
        for param in current.params:
            rows.append(
                Horizontal(
                    Label(short_name(param.name), classes="param-name"),
                    self._field(param, values.get(param.name)),
                    classes="param-row",
                )
            )
        # The fields scroll (Tab scrolls to the focused one); the help line stays under them in view.
        fields = VerticalScroll(*rows, classes="param-fields")
        self.mount(
            fields, Static(current.summary, classes="param-help", id=self._field_id("help"), markup=False)
        )
        if refocus:  # at once: a deferred focus could land after the next keys (a Tab, a file name)
            self.screen.set_focus(picker, scroll_visible=False)

    def _field(self, param: Param, value: Any):
        name = self._field_id(param.name)
        tip = f"{param.help} Allowed: {param.allowed()}" + (f" [{param.unit}]" if param.unit else "")
        if param.kind == "bool":
            widget = Tick("", bool(value), compact=True, id=name)
        elif param.kind == "str" and param.choices:
            widget = Select(
                [(c, c) for c in param.choices], value=value, allow_blank=False, compact=True, id=name
            )
        else:
            # Selected on focus, so typing replaces the value ("5" into "8.0" gives 5, not 8.05).
            kind = PathInput if param.kind == "paths" else Input
            widget = kind(format_value(param, value), compact=True, id=name, select_on_focus=True)
        widget.tooltip = tip
        self._fields[param.name] = widget
        return widget

    def _update_values(self, method: Method, values: dict[str, Any]) -> None:
        for param in method.params:
            widget = self._fields.get(param.name)
            if widget is None or not widget.is_attached:
                continue
            value = values.get(param.name)
            if isinstance(widget, Input) and not widget.has_focus:
                text = format_value(param, value)
                if widget.value != text:
                    widget.value = text
            elif isinstance(widget, Checkbox) and widget.value != bool(value):
                with widget.prevent(Checkbox.Changed):
                    widget.value = bool(value)

    def _field_id(self, name: str) -> str:
        return f"{self.step}-{self._generation}-{name}"

    def _param_name(self, widget_id: str | None) -> str | None:
        prefix = f"{self.step}-{self._generation}-"
        if widget_id and widget_id.startswith(prefix):
            return widget_id[len(prefix) :]
        return None

    def show_values(self) -> None:
        """Put the recipe's values back in every field (after an edit was refused)."""
        for name, widget in self._fields.items():
            param = self._params.get(name)
            if param is None or not widget.is_attached:
                continue
            value = self._values.get(name)
            if isinstance(widget, Input):
                widget.value = format_value(param, value)
            elif isinstance(widget, Checkbox) and widget.value != bool(value):
                with widget.prevent(Checkbox.Changed):
                    widget.value = bool(value)
            elif isinstance(widget, Select) and value is not None and widget.value != value:
                with widget.prevent(Select.Changed):
                    widget.value = value

    def on_descendant_focus(self, event) -> None:
        name = self._param_name(getattr(event.widget, "id", None))
        param = self._params.get(name or "")
        if param is not None and self.query(f"#{self._field_id('help')}"):
            self.query_one(f"#{self._field_id('help')}", Static).update(help_line(param))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = self._param_name(event.input.id)
        if not name:
            return
        event.input.select_all()  # the next value typed replaces this one, as on focus
        param = self._params.get(name)
        if param is not None and event.value.strip() == format_value(param, self._values.get(name)):
            return  # the shown (rounded) text of the recipe's value: keep the exact value
        self.post_message(self.ParamChanged(self.step, name, event.value))

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        name = self._param_name(event.checkbox.id)
        if name:
            self.post_message(self.ParamChanged(self.step, name, "true" if event.value else "false"))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        name = self._param_name(event.select.id)
        if name == "method":
            if event.value != (self._signature or ("",))[0]:
                self.post_message(self.MethodChanged(self.step, str(event.value)))
        elif name:
            self.post_message(self.ParamChanged(self.step, name, str(event.value)))
