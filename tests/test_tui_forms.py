"""The terminal UI's forms and questions, by keys (issue 21's form items), at 80x24."""

from __future__ import annotations

import pytest
from pilot import key, run, screen_lines, settle
from test_tui import type_into
from textual.widgets import Input, Static

from longslit.testing import make_frame
from longslit.tui.app import LongslitApp
from longslit.tui.screens import ConfirmScreen, OpenScreen
from longslit.tui.widgets.params import ParamForm

SIZE = (80, 24)


def field(app, step: str, name: str):
    form = app.query_one(f"#form-{step}", ParamForm)
    return app.query_one(f"#{form._field_id(name)}")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return make_frame(seed=0).write(tmp_path_factory.mktemp("forms") / "example.fits")


def test_every_form_is_reached_by_a_key_and_tab_walks_it(example):
    async def scenario():
        app = LongslitApp(str(example), "auto")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            for step in ("calibrate", "locate", "cosmic", "background", "extract"):
                await pilot.press(key(pilot.app, step))
                await settle(pilot)
                await pilot.press("e")
                await pilot.pause()
                form = app.query_one(f"#form-{step}", ParamForm)
                first = app.focused
                assert first is not None and form in first.ancestors, step
                await pilot.press("tab")
                await pilot.pause()
                assert app.focused is not first and form in app.focused.ancestors, step  # Tab moves on
                await pilot.press("escape")
                await pilot.pause()
                assert app.focused is app.query_one(f"#{step}"), step  # back to the screen's keys
            await pilot.press(key(pilot.app, "frame"), "e")  # the frame screen has no form: said, not silent
            await pilot.pause()
            assert "no parameters" in str(app.query_one("#message", Static).render())

    run(scenario())


def test_numbers_show_six_digits_while_the_recipe_keeps_every_one(example):
    curvature = -1.9545780891047328e-08
    locate = {"method": "trace", "centre": 254.5, "curvature": curvature}

    async def scenario():
        app = LongslitApp(str(example), "auto")
        app.session.recipe = app.session.recipe.with_overrides({"locate": locate})
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "locate"))
            await settle(pilot)
            shown = field(app, "locate", "curvature")
            assert shown.value == "-1.95458e-08"  # the exponent kept, not "-1.95457808910473"
            shown.focus()
            await pilot.press("enter")  # submitting the shown text changes nothing
            await settle(pilot)
            assert app.session.params("locate")["curvature"] == curvature
            # The name that does not fit is cut with an ellipsis; the help line names it in full.
            inner = field(app, "locate", "background_inner")
            inner.focus()
            await pilot.pause()
            form = app.query_one("#form-locate", ParamForm)
            help_text = str(app.query_one(f"#{form._field_id('help')}", Static).render())
            assert help_text.startswith("background_inner [rows]: Background starts")
            labels = [str(label.render()) for label in form.query(".param-name")]
            assert "background_i…" in labels

    run(scenario())


def test_an_invalid_value_is_refused_at_the_field_and_typing_replaces_the_text(example):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "cosmic"), "e")
            await pilot.pause()
            threshold = field(app, "cosmic", "threshold")
            threshold.focus()
            await pilot.pause()
            await pilot.press("5", "enter")  # selected on focus: "5" replaces "8.0"
            await settle(pilot)
            assert app.session.params("cosmic")["threshold"] == 5.0
            threshold.focus()
            await pilot.pause()
            await pilot.press(*"-3", "enter")  # out of range: refused at the field
            await settle(pilot)
            assert app.session.params("cosmic")["threshold"] == 5.0
            assert threshold.value == "5"
            assert "out of range" in str(app.query_one("#message", Static).render())

    run(scenario())


def test_a_key_edit_that_fails_leaves_form_result_and_saved_recipe_agreeing(example, tmp_path):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "locate"))
            await settle(pilot)
            for _ in range(60):  # widen the aperture until it runs into the background rows
                await pilot.press("plus")
            await settle(pilot)
            made = app.session.reduction.recipe.steps["locate"].params["aperture"]
            assert app.session.params("locate")["aperture"] == made  # no drift past the last good
            assert field(app, "locate", "aperture").value == f"{made[0]}:{made[1]}"
            assert "overlap the aperture" in str(app.query_one("#message", Static).render())
            assert len(app._notifications) == 1  # one toast, the newest, not one per key
            app.session.save(tmp_path / "s.fits", "fits", False, tmp_path / "r.toml", overwrite=False)
            saved = (tmp_path / "r.toml").read_text()
            assert f"aperture = [{made[0]}, {made[1]}]" in saved

    run(scenario())


def test_open_asks_when_unsaved_and_save_names_follow_the_new_frame(example, tmp_path):
    other = make_frame(seed=2).write(tmp_path / "night2_0042.fits")

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "save"))
            await pilot.pause()
            assert app.query_one("#save-spectrum", Input).value == "example_spectrum.fits"
            await pilot.press("o")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)  # unsaved result: asks first
            await pilot.press("enter")  # Enter is not yes
            await pilot.pause()
            assert not isinstance(app.screen, (ConfirmScreen, OpenScreen))
            await pilot.press("o")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert isinstance(app.screen, OpenScreen)
            app.screen.query_one(Input).value = str(other)
            await pilot.press("enter")
            await settle(pilot)
            await settle(pilot)
            assert app.session.frame.source == str(other)
            assert app.query_one("#save-spectrum", Input).value == "night2_0042_spectrum.fits"
            assert app.query_one("#save-recipe", Input).value == "night2_0042_recipe.toml"

    run(scenario())


def test_file_names_with_markup_are_shown_as_text_and_never_break_the_app(example, tmp_path, monkeypatch):
    # Issue 23 item 9: "[on]d.fits" was logged as "d.fits", "[@click=app.quit]" made the log quit on a
    # click, and a "[/]" in a path crashed the app with a MarkupError after the files were written.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "[").mkdir()  # so that "[/]r.toml" is a path: folder "[", file "]r.toml"

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "save"))
            await pilot.pause()
            app.query_one("#save-spectrum", Input).value = "[on]d_[@click=app.quit]x.fits"
            app.query_one("#save-recipe", Input).value = "[/]r.toml"
            app.query_one("#save").focus()
            await pilot.press("w")
            await settle(pilot)
            assert app.is_running
            log = str(app.query_one("#save-log", Static).render())
            assert "wrote [on]d_[@click=app.quit]x.fits" in log and "wrote [/]r.toml" in log
            assert "wrote [on]d_[@click=app.quit]x.fits and [/]r.toml" in str(
                app.query_one("#message", Static).render()
            )

    run(scenario())
    assert (tmp_path / "[on]d_[@click=app.quit]x.fits").read_bytes()[:6] == b"SIMPLE"
    assert (tmp_path / "[" / "]r.toml").is_file()


def test_esc_then_a_key_read_as_alt_leaves_the_form_and_does_the_key(example):
    """tmux (escape-time) and Esc-prefix terminals deliver Esc followed quickly by ``n`` as Alt+n: it
    must leave the form and go to the next screen, not stay in the field (the keys-only walk of
    docs/usability.md stuck at the Cosmic form this way)."""

    async def scenario():
        app = LongslitApp(str(example), "auto")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "cosmic"))
            await settle(pilot)
            await pilot.press("e", "tab")
            await pilot.pause()
            form = app.query_one("#form-cosmic", ParamForm)
            assert form in app.focused.ancestors
            values = {f.id: f.value for f in form.query(Input)}
            await pilot.press("alt+n")
            await settle(pilot)
            assert app.current == "background"
            assert app.focused is app.query_one("#background")
            assert {f.id: f.value for f in form.query(Input)} == values  # nothing typed into the field
            await pilot.press("alt+p")  # from the screen's keys too: Esc does nothing there, p goes back
            await settle(pilot)
            assert app.current == "cosmic"
            await pilot.press("question_mark")  # a dialog: Esc closes it, then the key acts below it
            await pilot.pause()
            assert len(app.screen_stack) == 2
            await pilot.press("alt+n")
            await settle(pilot)
            await pilot.pause(0.1)
            assert len(app.screen_stack) == 1 and app.current == "background"

    run(scenario())


def test_a_method_chosen_before_its_files_waits_for_them_in_the_form(tmp_path, monkeypatch):
    """Choosing flux.method = standard (or wavelength.method = arc) before naming its files used to
    fail at once and put the old method back, so the fields for those files never showed: the recipe
    could not be completed from the form. Now it waits, saving is refused until it runs, and naming
    the files runs it."""
    from longslit.testing import make_flux_set

    monkeypatch.chdir(tmp_path)
    paths = make_flux_set(seed=1).write(tmp_path)

    async def scenario():
        app = LongslitApp(str(paths["science"]), "auto")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.session.reduction.spectrum.flux_unit != "erg / (Angstrom s cm2)"
            await pilot.press(key(pilot.app, "flux"))
            await settle(pilot)
            await pilot.press("e", "enter")  # the method menu
            await pilot.pause()
            options = [m.name for m in app.session.methods("flux")]
            for _ in range(options.index("standard") - options.index("none")):
                await pilot.press("down")
            await pilot.press("enter")
            await settle(pilot)
            assert app.session.recipe.config("flux").method == "standard"  # kept, not put back
            assert "standard is required" in app.session.incomplete
            message = str(app.query_one("#message", Static).render())
            assert "fill it in the form" in message
            form = app.query_one("#form-flux", ParamForm)
            assert form.query(f"#{form._field_id('standard')}")  # the field to fill is there
            await pilot.press(key(pilot.app, "save"))
            await settle(pilot)
            await pilot.press("w")
            await settle(pilot)
            assert "not saved" in str(app.query_one("#message", Static).render())
            assert not list(tmp_path.glob("*_spectrum*"))
            await pilot.press(key(pilot.app, "flux"))
            await settle(pilot)
            await type_into(pilot, form._field_id("standard"), str(paths["standard"]))
            await type_into(pilot, form._field_id("extinction"), "no-such-curve")  # wrong: refused alone
            flux = app.session.recipe.config("flux")
            assert flux.method == "standard" and flux.params["standard"] == [str(paths["standard"])]
            assert "no-such-curve" in str(app.query_one("#message", Static).render())
            for name in ("reference", "extinction"):
                await type_into(pilot, form._field_id(name), str(paths[name]))
            assert app.session.incomplete is None and app.session.error is None
            return app.session.reduction

    result = run(scenario())
    assert result.spectrum.flux_unit == "erg / (Angstrom s cm2)"


def test_a_method_picked_from_the_menu_keeps_the_focus_in_the_form(example):
    """After a method is picked by keys, Tab goes on to its fields (the rebuilt form used to drop the
    focus, and the letters of a file name typed next went to the screen's keys)."""

    async def scenario():
        app = LongslitApp(str(example), "auto")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "background"), "e")
            await settle(pilot)
            options = [m.name for m in app.session.methods("background")]
            current = app.session.recipe.resolve(app.session.registry).config("background").method
            target = options[(options.index(current) + 1) % len(options)]
            await pilot.press("enter")
            await pilot.pause()
            for _ in range((options.index(target) - options.index(current)) % len(options)):
                await pilot.press("down")
            await pilot.press("enter")
            await settle(pilot)
            assert app.session.recipe.config("background").method == target
            form = app.query_one("#form-background", ParamForm)
            assert app.focused is not None and form in app.focused.ancestors
            assert app.focused.id == form._field_id("method")
            await pilot.press("tab")
            await pilot.pause()
            first = app.session.method("background").params[0].name
            assert app.focused.id == form._field_id(first)

    run(scenario())


def test_open_expands_the_home_folder_and_a_failed_open_names_nothing_after_it(
    example, tmp_path, monkeypatch
):
    """Issue 21's smaller items: the open dialog did not expand ``~``; a failed open named the save
    files after the file that failed ("README.md_spectrum.fits")."""
    monkeypatch.setenv("HOME", str(tmp_path))
    make_frame(seed=3).write(tmp_path / "night3.fits")
    (tmp_path / "README.md").write_text("not a FITS file\n")

    async def opened(app, pilot, text: str) -> None:
        await pilot.press("o")
        await pilot.pause()
        if isinstance(app.screen, ConfirmScreen):
            await pilot.press("y")
            await pilot.pause()
        assert isinstance(app.screen, OpenScreen)
        await pilot.press(*text, "enter")
        await settle(pilot)
        await settle(pilot)

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await opened(app, pilot, "~/README.md")
            assert app.load_error is not None and app.query_one("#switcher").current == "error-view"
            assert "README" not in app.query_one("#save-spectrum", Input).value
            await opened(app, pilot, "~/night3.fits")
            assert app.load_error is None and app.session.frame.source == str(tmp_path / "night3.fits")
            await pilot.press(key(app, "save"))
            await pilot.pause()
            assert app.query_one("#save-spectrum", Input).value == "night3_spectrum.fits"

    run(scenario())


def test_a_failed_save_says_not_written_on_the_save_screen(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "save"))
            await pilot.pause()
            await pilot.press("w")  # a first save, that works
            await settle(pilot)
            log = app.query_one("#save-log", Static)
            assert str(log.render()).startswith("saved")
            app.query_one("#save-spectrum", Input).value = "no_such_folder/s.fits"
            app.query_one("#save-recipe", Input).value = "second_recipe.toml"
            app.query_one("#save").focus()
            await pilot.press("w")
            await settle(pilot)
            shown = str(log.render())
            assert shown.startswith("NOT WRITTEN") and "saved\n" not in shown, shown
            assert not (tmp_path / "no_such_folder").exists()

    run(scenario())


def test_checkboxes_read_on_and_off_without_colour(example, monkeypatch):
    from pilot import screen_lines

    monkeypatch.setenv("NO_COLOR", "1")

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "save"))
            await pilot.pause()
            row = next(line for line in screen_lines(app) if "2D products" in line)
            assert "▐ ▌ 2D products" in row, row  # off: an empty box
            app.query_one("#save-products").focus()
            await pilot.press("space")
            await pilot.pause()
            row = next(line for line in screen_lines(app) if "2D products" in line)
            assert "▐X▌ 2D products" in row, row
            await pilot.press("escape", key(app, "calibrate"), "e")  # in the form: all its fields
            await settle(pilot)
            row = next(line for line in screen_lines(app) if "illumination" in line)
            box = row.split("illumination", 1)[1].lstrip()[:4]  # (a scrollbar may follow)
            assert box in ("▐X▌ ", "▐ ▌ "), row  # whole, not cut to "▐X…"
            box = box[:3]
            expected = "▐X▌" if app.session.params("calibrate").get("illumination") else "▐ ▌"
            assert box == expected

    run(scenario())


def test_at_80x24_every_field_tab_reaches_is_on_screen_with_its_help_line(example):
    """The Calibrate form has 17 lines: at 80x24 its last fields and the focused field's help line
    (name, help, unit, allowed values) were below the terminal. The fields now scroll to the focus
    and the help line stays under them; the figures make room while the form has the focus."""
    from pilot import screen_lines

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "calibrate"), "e")
            await settle(pilot)
            form = app.query_one("#form-calibrate", ParamForm)
            names = list(form._params)
            seen = set()
            for _ in range(len(names)):
                await pilot.press("tab")
                await settle(pilot)
                focused = app.focused
                name = next((n for n in names if focused.id == form._field_id(n)), None)
                if name is None:
                    break
                seen.add(name)
                lines = screen_lines(app)
                y = focused.region.y
                assert 0 < y < SIZE[1] - 2 and focused.region.height == 1, (name, focused.region)
                assert lines[y][47:].lstrip("│ ").startswith(name[:12]), (name, lines[y])
                side = "\n".join(line[47:] for line in lines[y + 1 : SIZE[1] - 2])
                assert f"{name}" in side.replace("\n│ ", ""), (name, side)  # its help line, below it
            assert seen == set(names)

    run(scenario())


def test_w_pressed_during_a_run_writes_that_runs_result_when_it_is_done(example, tmp_path, monkeypatch):
    """The Kast b27 walk pressed w while the flux step reran after its last file was named: the save
    failed (the recipe still incomplete) and the run's message then hid it. Now the save waits."""
    import threading

    monkeypatch.chdir(tmp_path)

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "save"))
            await pilot.pause()
            gate = threading.Event()
            run_now = app.session.run
            monkeypatch.setattr(app.session, "run", lambda: (gate.wait(20), run_now())[1])
            app.session.set_param("cosmic", "threshold", "6")  # an edit: a rerun is going
            app.rerun()
            await pilot.pause()
            await pilot.press("w")
            await pilot.pause()
            assert not (tmp_path / "example_spectrum.fits").exists()
            assert "written when it is done" in str(app.query_one("#message", Static).render())
            # The run's "running …" notice, due after a moment, must not hide it (it did, when its
            # timer fired after w: the test failed under load).
            assert app._running_notice is not None
            app._notice(app._running_notice)
            await pilot.pause()
            assert "written when it is done" in str(app.query_one("#message", Static).render())
            gate.set()
            await settle(pilot)
            await settle(pilot)
            assert (tmp_path / "example_spectrum.fits").is_file()
            assert "threshold = 6" in (tmp_path / "example_recipe.toml").read_text()
            assert "wrote example_spectrum.fits" in str(app.query_one("#message", Static).render())
            assert not app.session.unsaved

    run(scenario())


@pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")
def test_a_long_path_field_shows_the_file_name_and_the_recipe_keeps_the_whole_path(tmp_path):
    """At 80x24 the side column leaves a path field some fifteen columns: a path from the recipe showed
    its start there (or the middle, once the field had been tabbed through), never the file name that
    tells frames apart."""
    from conftest import DATA_DIR, _need

    from longslit import Recipe

    kast = DATA_DIR / "real" / "lick_kast"
    science = _need(kast / "pypeit_kast_b27.fits.gz")
    folder = tmp_path / "a_long_folder_of_calibration_frames" / "lick_kast_night_2026_12_03"
    folder.mkdir(parents=True)
    bias = folder / "b21.fits.gz"
    bias.symlink_to(_need(kast / "pypeit_kast_b21.fits.gz"))
    start = Recipe.preset("kast-blue").with_step("calibrate", "ccd", bias=[str(bias)])

    def bias_row(app, form) -> str:
        widget = form._fields["bias"]
        assert 0 < widget.region.width < len(str(bias))
        return screen_lines(app)[widget.region.y][widget.region.x : widget.region.right]

    async def scenario():
        app = LongslitApp(str(science), start)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "calibrate"))
            await settle(pilot)
            form = app.query_one("#form-calibrate", ParamForm)
            for _ in range(50):  # the form is built once the screen's result is in
                if form._fields.get("bias") is not None and form._fields["bias"].is_attached:
                    break
                await pilot.pause(0.05)
            await settle(pilot)
            assert bias_row(app, form).rstrip().endswith("b21.fits.gz"), bias_row(app, form)
            form._fields["bias"].focus()
            await pilot.press("tab")  # tabbed through: the file name again, not the middle
            await settle(pilot)
            assert bias_row(app, form).rstrip().endswith("b21.fits.gz"), bias_row(app, form)
            app.session.save(tmp_path / "s.fits", "fits", False, tmp_path / "r.toml", overwrite=False)
            assert str(bias) in (tmp_path / "r.toml").read_text()

    run(scenario())
