"""The longslit terminal UI: walk through a reduction step by step, keyboard first, over SSH.

The app owns a :class:`~longslit.tui.session.Session` and a pane per step. Any change to the recipe
reruns the pipeline in a worker thread (the pipeline's cache recomputes only the changed step and the
ones after it), so the screen never freezes; a step that fails shows its message and the last good
result stays on screen.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, Static
from textual.worker import get_current_worker

from ..errors import LongslitError
from ..recipe import Recipe
from .keys import KeyFooter, binding_keys, key_text
from .panes import SavePane, StepPane, screens
from .screens import ConfirmScreen, HelpScreen, OpenScreen
from .session import Session
from .widgets import graphics
from .widgets.params import ParamForm
from .widgets.strips import Shown

#: Seconds a run may take before the message bar says "running …".
RUNNING_NOTICE_DELAY = 0.15


class LongslitApp(App):
    """Interactive long-slit reduction."""

    CSS_PATH = "app.tcss"
    TITLE = "longslit"
    #: Every action has a key (see the help screen); the palette's footer hint would cost room at 80x24.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("question_mark,f1", "help", "help", key_display="?", tooltip="this help"),
        Binding("q", "quit_app", "quit", tooltip="quit (asks first when the result is not saved)"),
        Binding("n", "step(1)", "next", tooltip="next screen"),
        Binding("p", "step(-1)", "prev", tooltip="previous screen"),
        Binding("e", "edit_form", "form", tooltip="into this screen's form (Esc comes back)"),
        Binding("o", "open", "open", show=False, tooltip="open another FITS file"),
        Binding("c", "cancel_run", "cancel run", show=False, tooltip="stop the step that is running"),
    ]

    def __init__(
        self, source: str | Path | None = None, recipe: Recipe | str | Path | None = None, *, registry=None
    ) -> None:
        super().__init__()
        extra = {"registry": registry} if registry is not None else {}
        self.session = Session(Recipe.coerce(recipe), source=source, **extra)
        #: The screens, in the order of the session's step kinds (a plugin's kind brings one too).
        self.step_screens = screens(self.session.kinds)
        self.screen_names = tuple(screen.name for screen in self.step_screens)
        for i, screen in enumerate(self.step_screens[:9], start=1):
            self.bind(str(i), f"goto('{screen.name}')", description=screen.title, show=False)
        self.current = "frame"
        self.load_error: str | None = None
        self._running_notice = None  # the timer that shows "running …" for a run that takes a while
        self._rerun_lock = threading.Lock()
        self._dirty = False  # an edit not yet run
        self._rerunning = False  # a rerun worker is going
        self._pending_save: tuple | None = None  # w pressed during a run: written when it is done

    # -- keys -----------------------------------------------------------------------------------
    async def on_event(self, event: events.Event) -> None:
        """Esc followed quickly by a key arrives as Alt+key: tmux waits ``escape-time`` (500 ms by
        default) after an Esc and sends what follows as one Alt combination, and a terminal that
        sends Alt as an Esc prefix does the same. No key of longslit's is an Alt combination, so an
        Alt+key is taken for what the user typed: Esc (out of the form, or the dialog closed), then
        the key. Without this, Esc then ``n`` in tmux typed an "n" into the form field instead."""
        alt = isinstance(event, events.Key) and not event.is_forwarded and event.key.startswith("alt+")
        if not alt or len(event.key) <= 4:
            await super().on_event(event)
            return
        event.stop()
        event.prevent_default()
        key = events.Key(event.key[4:], event.character)
        if len(self.screen_stack) > 1:  # a dialog: Esc closes it, then the key goes to what is below
            self.post_message(events.Key("escape", "\x1b"))
            self.call_after_refresh(self.post_message, key)
            return
        ancestors = self.focused.ancestors if self.focused is not None else []
        pane = next((node for node in ancestors if isinstance(node, StepPane)), None)
        if pane is not None:  # Esc from a form: back to the screen's keys, at once (focus() is deferred)
            self.screen.set_focus(pane)
        self.post_message(key)

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Shown(id="status", markup=False)
        yield Shown(id="steps")
        with ContentSwitcher(initial="frame", id="switcher"):
            for screen in self.step_screens:
                yield screen.pane(self.session)
            with Vertical(id="error-view"):
                yield Shown(id="error-text", markup=False)
        yield Shown(id="message", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._show_steps()
        self.query_one("#status", Static).update(f"longslit · opening {self._source_name()} …")
        self.query_one("#frame", StepPane).focus()
        problem = graphics.choice_problem()
        if problem is not None:
            self.notify(problem, severity="warning", timeout=10, markup=False)
        self.open_source()

    def _source_name(self) -> str:
        return "the built-in example" if self.session.source is None else Path(str(self.session.source)).name

    def _pane(self, name: str) -> StepPane:
        return self.query_one(f"#{name}", StepPane)

    def _show_steps(self) -> None:
        self.query_one("#steps", Static).update(self._steps_text(max(self.size.width, 40)))

    def _steps_text(self, width: int) -> str:
        """The screens' numbers and titles in ``width`` columns: full titles when they fit, else the
        current screen's in full and the others shortened (however many screens the kinds bring)."""

        def label(i: int, title: str) -> str:
            key = str(i) if i <= 9 else "·"
            return f" {key} {title} " if title else f" {key} "

        for size in (None, 3, 0):
            parts = []
            for i, screen in enumerate(self.step_screens, start=1):
                full = screen.name == self.current
                title = screen.title if full or size is None else screen.title[:size]
                text = label(i, title)
                parts.append(f"[reverse]{text}[/]" if full else text)
            if len(Text.from_markup("".join(parts))) <= width:
                break
        return "".join(parts)

    def on_resize(self) -> None:
        self._show_steps()

    def message(self, text: str, *, error: bool = False) -> None:
        bar = self.query_one("#message", Static)
        bar.set_class(error, "error")
        bar.update(text)

    # -- loading and running --------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="pipeline")
    def open_source(self) -> None:
        """Read the frame (the example is written to a temporary file first), then reduce it."""
        session = self.session
        try:
            if session.source is None:
                session.source = _example_path()
                session.example = True
            session.load()
        except LongslitError as exc:
            self.call_from_thread(self._load_failed, str(exc))
            return
        self.call_from_thread(self._loaded)
        self._run(session)

    def _loaded(self) -> None:
        frame = self.session.frame
        header = frame.header
        bits = [
            "built-in example" if self.session.example else Path(frame.source).name,
            str(header.get("TARGNAME", "")),
            str(header.get("INSTRUME", "")),
            str(header.get("OPT_ELEM", "")),
            f"{header['EXPTIME']:g}s" if isinstance(header.get("EXPTIME"), (int, float)) else "",
            f"{frame.shape[0]}x{frame.shape[1]}",
        ]
        if frame.calibrated:
            bits.append(f"{frame.wavelength.min():.0f}-{frame.wavelength.max():.0f} Å")
        self.query_one("#status", Static).update(" · ".join(b for b in bits if b))
        for note in frame.notes:
            self.notify(note, severity="warning", timeout=6, markup=False)
        self._pane("frame").update_from(self.session)
        self.query_one(SavePane).name_targets()  # the new frame's names, not the last one's

    def _load_failed(self, text: str) -> None:
        self.load_error = text
        self.query_one("#status", Static).update("longslit · no frame open")
        self.query_one("#error-text", Static).update(
            f"Cannot open this file:\n\n{text}\n\nPress o to open another file, q to quit."
        )
        self.query_one("#switcher", ContentSwitcher).current = "error-view"
        self.message(text, error=True)

    def rerun(self) -> None:
        """Run the pipeline on the current recipe in a worker, coalescing edits made meanwhile.

        "running …" shows only if the run is still going after a moment: an aperture nudge is done
        within a frame or two, and redrawing the message bar first would only delay its result. Keys
        pressed while a run is going mark the recipe dirty; the worker runs once more when it is done,
        on the newest recipe, and draws only that result (ten quick nudges cost two runs, not ten).
        """
        if self._running_notice is not None:
            self._running_notice.stop()
        notice = self._running_notice = self.set_timer(RUNNING_NOTICE_DELAY, lambda: self._notice(notice))
        with self._rerun_lock:
            self._dirty = True
            if self._rerunning:
                return
            self._rerunning = True
        self._rerun_worker()

    @work(thread=True, group="rerun")
    def _rerun_worker(self) -> None:
        while True:
            with self._rerun_lock:
                if not self._dirty:
                    self._rerunning = False
                    return
                self._dirty = False
            self._run(self.session)

    def _run(self, session: Session) -> None:
        worker = get_current_worker()
        try:
            session.run()
        except LongslitError as exc:
            self.call_from_thread(self._failed, exc.message)
            return
        except Exception as exc:  # a bug in a method or in longslit: report, never crash
            self.call_from_thread(self._failed, f"unexpected {type(exc).__name__}: {exc}")
            return
        if not worker.is_cancelled and not self._dirty:  # a newer edit waits: draw its result instead
            self.call_from_thread(self._ran)

    def _notice(self, timer) -> None:
        # A timer that fired just before the run ended may call this after the result was shown (its
        # callback was already queued when stop() came): only the current run's notice is shown, or
        # "running …" would stand over the result or the error for good. A save waiting for the run
        # keeps its own message (which says a run is going), or the user would not know w was taken.
        if timer is self._running_notice and self._pending_save is None:
            self.message("running …")

    def _stop_running_notice(self) -> None:
        if self._running_notice is not None:
            self._running_notice.stop()
            self._running_notice = None

    def _ran(self) -> None:
        self._stop_running_notice()
        session = self.session
        self.message(run_message(session.summary()["cosmic_rays_replaced"], session.computed))
        for warning in session.new_warnings():
            self.notify(warning, title="warning", severity="warning", timeout=10, markup=False)
        self._pane(self.current).update_from(session)
        self._save_pending()

    def _save_pending(self) -> None:
        """The save asked for during the run just done (unless another run is still to come)."""
        if self._pending_save is not None and not self._dirty:
            pending, self._pending_save = self._pending_save, None
            self.save(*pending, after_run=True)

    def _failed(self, text: str) -> None:
        self._stop_running_notice()
        self.clear_notifications()  # one error toast at a time: the newest replaces the last
        if self.session.incomplete is not None:  # a method chosen, its files still to name: the form waits
            self.message(f"{text}: fill it in the form (the last complete result is still shown)")
            self.notify(text, severity="warning", timeout=8, markup=False)
        else:
            self.message(f"{text} (the last good result is still shown)", error=True)
            self.notify(text, severity="error", timeout=8, markup=False)
        self._pane(self.current).update_form()  # the recipe went back to the last good result's
        self._pane(self.current).update_from(self.session)
        self._save_pending()  # it says why nothing could be written

    # -- changes from the panes -----------------------------------------------------------------
    def on_param_form_param_changed(self, event: ParamForm.ParamChanged) -> None:
        try:
            self.session.set_param(event.step, event.name, event.text)
        except (ValueError, LongslitError) as exc:
            self.message(f"{event.step}.{event.name} = {event.text!r} {exc}", error=True)
            for form in self.query(ParamForm):
                if form.step == event.step:
                    form.show_values()  # refused at the field: it shows the recipe's value again
            return
        self.rerun()

    def on_param_form_method_changed(self, event: ParamForm.MethodChanged) -> None:
        self.change_method(event.step, event.name)

    def on_step_pane_method_chosen(self, event: StepPane.MethodChosen) -> None:
        if event.name not in [m.name for m in self.session.methods(event.step)]:
            self.notify(f"no {event.step} method {event.name!r} is installed", severity="warning")
            return
        self.change_method(event.step, event.name)

    def change_method(self, step: str, name: str) -> None:
        self.session.set_method(step, name)
        self._pane(self.current).update_form()
        self.rerun()

    def on_step_pane_edit(self, event: StepPane.Edit) -> None:
        """A region edit from the locate keys: apply it to the session, then rerun from locate."""
        if self.session.frame is None:
            return
        try:
            said = event.change(self.session)
        except LongslitError as exc:
            self.message(exc.message, error=True)
            return
        if isinstance(said, str):  # what an edit did, in words (an aperture added or deleted)
            self.notify(said, timeout=4, markup=False)
        if event.rerun:  # the form shows the new numbers with the result (one redraw, not two)
            self.rerun()
        else:
            self._pane(self.current).update_from(self.session)

    # -- saving ---------------------------------------------------------------------------------
    def on_save_pane_save(self, event: SavePane.Save) -> None:
        self.save(event.spectrum, event.fmt, event.products, event.recipe)

    def save(
        self,
        spectrum: Path,
        fmt: str,
        products: bool,
        recipe_path: Path,
        *,
        overwrite: bool = False,
        after_run: bool = False,
    ) -> None:
        """Ask the session to write; ask the user first when a file would be replaced."""
        if self._rerunning and not after_run:
            # A run is going (an edit just made): write its result, not the one it replaces, and do
            # not fail on the recipe it is still completing. The Kast walk pressed w during the
            # flux rerun: the save failed and the run's own message then hid that it had.
            self._pending_save = (spectrum, fmt, products, recipe_path)
            self.message("a run is going: the files are written when it is done …")
            return
        if self.session.reduction is None:
            self.message("nothing to save yet", error=True)
            return
        existing = [p for p in (spectrum, recipe_path) if p.exists()]
        if existing and not overwrite:
            names = " and ".join(str(p) for p in existing)

            def answer(yes: bool | None) -> None:
                if yes:
                    self.save(spectrum, fmt, products, recipe_path, overwrite=True)
                else:
                    self.message("nothing written: the files exist already")

            self.push_screen(ConfirmScreen(f"{names} exist(s). Overwrite? (y/n)"), answer)
            return
        try:
            self.session.save(spectrum, fmt, products, recipe_path, overwrite=overwrite)
        except LongslitError as exc:
            self.message(str(exc), error=True)
            self.query_one(SavePane).show_failure(str(exc))  # not "saved" beside the form
            return
        self.message(f"wrote {spectrum} and {recipe_path}")
        self._pane("save").update_from(self.session)

    # -- navigation and app actions -------------------------------------------------------------
    def action_goto(self, name: str) -> None:
        if self.session.frame is None:
            return
        self.current = name
        self.query_one("#switcher", ContentSwitcher).current = name
        self._show_steps()
        pane = self._pane(name)
        pane.update_from(self.session)
        pane.focus()

    def action_step(self, delta: int) -> None:
        index = (self.screen_names.index(self.current) + delta) % len(self.screen_names)
        self.action_goto(self.screen_names[index])

    def get_key_display(self, binding: Binding) -> str:
        """Keys as typed everywhere, Textual's own too (its menus' "esc" reads Esc)."""
        return binding.key_display or key_text(binding.key.split(",")[0].strip())

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self._help_text()))

    def _help_text(self) -> str:
        """Every key, as typed, with what it does: this screen's own first (what a user looking for a
        key here wants, seen without scrolling), then the app's, the 2D view's and the other screens'."""

        def own_keys(number: int, screen) -> list[str]:
            own = [b for b in self._pane(screen.name).BINDINGS if b not in StepPane.BINDINGS]
            if not own:
                return []
            title = f"{screen.title} ({number})" if number <= 9 else screen.title
            return [title, *(f"  {binding_keys(b):12} {b.tooltip or b.description}" for b in own)]

        numbered = list(enumerate(self.step_screens, start=1))
        here = [(n, s) for n, s in numbered if s.name == self.current]
        lines = [line for n, s in here for line in own_keys(n, s)]
        if lines:
            lines[0] = f"This screen: {lines[0]}"
        lines.append("Every screen")
        lines += [f"  {binding_keys(b):12} {b.tooltip or b.description}" for b in self.BINDINGS]
        lines.append(f"  {'1-9':12} go to that screen")
        lines.append("2D view and plots (on screens that have them)")
        lines += [f"  {binding_keys(b):12} {b.tooltip or b.description}" for b in StepPane.BINDINGS]
        for number, screen in numbered:
            if screen.name != self.current:
                lines += own_keys(number, screen)
        lines.append("In a form: Tab and Shift+Tab move between fields, Enter applies a value,")
        lines.append("Esc returns to the screen's keys.")
        return "\n".join(lines)

    def action_edit_form(self) -> None:
        """Focus the first field of this screen's form (Tab moves on, Esc returns to the keys)."""
        forms = self._pane(self.current).query(ParamForm)
        if not forms:
            self.message("this screen has no parameters to edit")
            return
        fields = [w for w in forms.first().query("Input, Select, Checkbox") if w.focusable]
        if fields:
            # At once, not deferred as Widget.focus is: a Tab typed right after e must move on from it.
            self.screen.set_focus(fields[0])

    def action_open(self) -> None:
        if self.session.unsaved:
            self.push_screen(
                ConfirmScreen("The result is not saved. Open another file anyway? (y/n)"),
                lambda yes: self._ask_path() if yes else None,
            )
            return
        self._ask_path()

    def _ask_path(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.session = self.session.reopen(Path(path).expanduser())
                for pane in self.query(StepPane):
                    pane.session = self.session
                self.load_error = None
                self.current = "frame"
                self.query_one("#switcher", ContentSwitcher).current = "frame"
                self._show_steps()
                self.open_source()

        self.push_screen(OpenScreen(), chosen)

    def action_cancel_run(self) -> None:
        """Stop the step running now (a plugin's method that hangs): it fails as cancelled."""
        if not self.session.cancel():
            self.message("nothing is running")

    def action_quit_app(self) -> None:
        if not self.session.unsaved:
            self._quit()
            return
        self.push_screen(
            ConfirmScreen("The result is not saved. Quit anyway? (y/n)"),
            lambda yes: self._quit() if yes else None,
        )

    def _quit(self) -> None:
        self.session.cancel()  # a method still running would keep the app from ending
        self.exit(0)


def run_message(replaced: int, computed: list[str]) -> str:
    """The message bar after a run, short enough for 80 columns whatever steps reran."""
    if not computed:
        ran = "nothing rerun (cached)"
    elif len(computed) <= 2:
        ran = "reran " + ", ".join(computed)
    else:
        ran = f"reran {computed[0]} to {computed[-1]} ({len(computed)} steps)"
    return f"{replaced:,} cosmic-ray pixels replaced · {ran}"


def _example_path() -> Path:
    """The built-in example frame, written once to a temporary folder (read as a user file is)."""
    import tempfile

    from ..testing import make_frame

    path = Path(tempfile.mkdtemp(prefix="longslit-")) / "longslit_example.fits"
    make_frame(seed=0).write(path)
    return path


def run(source: str | Path | None = None, recipe: Recipe | str | Path | None = None) -> int:
    """Start the terminal UI; returns the exit status."""
    app = LongslitApp(source, recipe)
    result = app.run()
    return int(result or 0)
