"""Issue 21's layout, 2D view and plots: what a user sees at 80x24, checked on seeded synthetic frames."""

from __future__ import annotations

import numpy as np
import pytest
from pilot import key, run, screen_lines, settle

from longslit.testing import make_frame
from longslit.tui.app import LongslitApp
from longslit.tui.keys import KeyFooter, key_text
from longslit.tui.widgets.frame_view import FLAG_COLOURS, FrameView
from longslit.tui.widgets.plot import CYAN, GOLD, Figure, Series, Span, render_figure
from longslit.tui.widgets.ticks import labels, nice_ticks

SIZE = (80, 24)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    # A bad column (DQ 4) at 100, 300 cosmic rays: something for the DQ and hits layers to show.
    return make_frame(seed=0, bad_columns=(100,)).write(tmp_path_factory.mktemp("view") / "example.fits")


def visible_footer_keys(app) -> list[str]:
    """The footer's keys whose cells lie inside the terminal's width."""
    footer = app.query_one(KeyFooter)
    width = footer.region.width
    return [item.key_display for item in footer.items if item.end <= width]


def test_ticks_are_round_and_labelled_with_the_digits_they_need():
    assert list(nice_ticks(0, 511, 5)) == [0, 100, 200, 300, 400, 500]
    assert labels(nice_ticks(2884.7, 5685.6, 3)) == ["3000", "4000", "5000"]
    assert labels(nice_ticks(-59288, 3112725, 4)) == ["0", "1e6", "2e6", "3e6"]
    assert labels(nice_ticks(0.0012, 0.0043, 4)) == ["0.002", "0.003", "0.004"]
    # A flux-calibrated axis (Kast b27 in erg/s/cm2/Å): its zero was "0.0000000000000000".
    assert labels(nice_ticks(-3e-17, 2.6e-16, 3)) == ["0", "1e-16", "2e-16"]
    assert labels(nice_ticks(-0.7, 0.7, 3)) == ["-0.5", "0", "0.5"]
    for low, high in [(190, 317), (-14.3, 57.0), (3.1e-17, 9.8e-16)]:
        ticks = nice_ticks(low, high, 5)
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** np.floor(np.log10(step))
        assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-9  # 1, 2 or 5 x 10^n
        assert low <= ticks[0] and ticks[-1] <= high


def test_a_plot_has_round_ticks_a_legend_and_distinct_markers_without_colour():
    x = np.arange(512.0)
    y = 1e4 * np.exp(-0.5 * ((x - 254) / 2) ** 2) + 50
    figure = Figure(
        [Series(x, y, "data", GOLD), Series(x, np.full_like(x, 50.0), "fit", CYAN, marker="x")],
        spans=[Span(150, 220, "background")],
        title="profile",
        xlabel="row",
    )
    plain = render_figure(figure, 70, 12, colour=False).plain
    lines = plain.split("\n")
    assert lines[0].startswith("profile") and "data" in lines[0] and "x fit" in lines[0]
    assert "░ background" in lines[0]
    assert "╵100" in lines[-1] and "╵200" in lines[-1] and lines[-1].rstrip().endswith("row")
    values = [float(line.split("┤")[0]) for line in lines[1:-1] if "┤" in line]
    assert len(values) >= 3 and 0.0 in values
    step = values[0] - values[1]
    assert step in (1000.0, 2000.0, 5000.0) and all(v % step == 0 for v in values)
    assert "x" * 20 in plain  # the fit drawn with its own marker, not braille like the data
    assert "░" in "".join(lines[1:-1])  # the background rows shaded
    coloured = render_figure(figure, 70, 12, colour=True)
    styles = {str(span.style) for span in coloured.spans}
    assert any(GOLD in s for s in styles) and any(CYAN in s for s in styles)


def test_asinh_and_log_scales_show_the_wings_a_linear_scale_flattens():
    x = np.arange(200.0)
    y = 1e4 * np.exp(-0.5 * ((x - 100) / 2) ** 2) + 30 * np.exp(-np.abs(x - 100) / 30) + 1.0

    def rows_reached(scale: str) -> int:
        lines = render_figure(Figure([Series(x, y)], yscale=scale), 60, 14, colour=False).plain.split("\n")
        body = [line.split("│", 1)[-1].split("┤", 1)[-1] for line in lines[1:-1]]
        wing = [line[15:23] for line in body]  # columns around x = 55-80: only the wings
        return sum(any(ch != " " for ch in part) for part in wing)

    assert rows_reached("linear") <= 1
    assert rows_reached("asinh") >= 2
    assert rows_reached("log") >= 3
    log_labels = render_figure(Figure([Series(x, y)], yscale="log"), 60, 14, colour=False).plain
    assert "1000┤" in log_labels and "10┤" in log_labels


def test_the_footer_keeps_the_shared_keys_and_the_steps_bar_fits_at_80_columns(example):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            for number in range(1, len(app.step_screens) + 1):
                await pilot.press(str(number))
                await settle(pilot)
                shown = visible_footer_keys(app)
                for key in ("?", "q", "n", "p", "e"):
                    assert key in shown, (app.current, shown)
                steps = str(app.query_one("#steps").render())
                assert len(steps) <= SIZE[0] and app.step_screens[number - 1].title in steps
                message = str(app.query_one("#message").render())
                assert len(message.rstrip()) <= SIZE[0], message
            # Nine screens (the lead's coming kinds) still fit: the others are shortened.
            many = app.step_screens * 2
            app.step_screens = many[:9]
            text = app._steps_text(80)
            from rich.text import Text

            assert len(Text.from_markup(text)) <= 80 and "9" in text

    run(scenario())


ESSENTIALS = ("? help", "q quit", "n next", "p prev", "e form")


def test_the_rendered_footer_shows_the_way_out_on_every_screen_and_only_whole_keys(example):
    """Read off the screen's last line as the terminal draws it (not the bindings): at 80x24 and 120x40
    the shared keys on every screen, no key cut in the middle, no view keys where there is no 2D view;
    in a form, Esc (the way back) instead of the letters the field takes."""

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            for size in (SIZE, (120, 40)):
                await pilot.resize_terminal(*size)
                await settle(pilot)
                for number, screen in enumerate(app.step_screens, start=1):
                    await pilot.press(str(number))
                    await settle(pilot)
                    footer = screen_lines(app)[-1].rstrip()
                    assert footer.startswith(" ".join(ESSENTIALS)), (screen.name, footer)
                    assert len(footer) <= size[0]
                    items = app.query_one(KeyFooter).items
                    drawn = " ".join(f"{k.key_display} {k.description}" for k in items)
                    assert footer == drawn, (screen.name, footer, drawn)  # whole keys only
                    view = bool(app.query_one(f"#{screen.name}").query(FrameView))
                    assert ("v layer" in footer) == view, (screen.name, footer)
                    assert "Esc keys" not in footer
                    # The walks needed the help screen for r at 80 columns (plain rows, residuals).
                    wanted = {"locate": "r rows", "wavelength": "r residuals"}.get(screen.name)
                    assert wanted is None or wanted in footer, (screen.name, footer)
            await pilot.resize_terminal(*SIZE)
            await pilot.press(key(app, "locate"), "e")
            await settle(pilot)
            footer = screen_lines(app)[-1]
            assert footer.startswith("? help Esc keys q quit"), footer  # the method menu: letters are keys
            await pilot.press("enter")  # the menu open: Textual's own key reads as typed too
            await pilot.pause()
            footer = screen_lines(app)[-1]
            assert footer.startswith("? help Esc Dismiss menu") and "esc" not in footer, footer
            assert "zoom" not in footer and "move" not in footer  # the screen's keys wait
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("tab")  # a text field: letters are typed, Esc is the way back
            await settle(pilot)
            footer = screen_lines(app)[-1]
            assert footer.rstrip() == "? help Esc keys", footer  # the field takes letters and + - [ ]
            await pilot.press("escape")
            await settle(pilot)
            assert screen_lines(app)[-1].startswith(" ".join(ESSENTIALS))

    run(scenario())


def test_the_help_says_how_to_close_it_where_it_is_seen_and_shows_keys_as_typed(example):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "locate"), "question_mark")
            await pilot.pause()
            lines = screen_lines(app)
            top = next(i for i, line in enumerate(lines) if "╭" in line)
            assert "Esc, q or ? closes" in lines[top]  # in the box's top border, not below the fold
            text = "\n".join(lines)
            assert "This screen: Locate" in lines[top + 1]  # this screen's keys first, no scrolling
            assert "+ =" in text and "↑ k" in text and "PgUp" in text  # as typed
            for internal in ("equals_sign", "question_mark", "full_stop", "square_bracket", "plus "):
                assert internal not in text, internal
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen.__class__.__name__ != "HelpScreen"

    run(scenario())


def test_focus_shows_in_the_panel_titles(example):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "locate"))
            await settle(pilot)
            pane = app.query_one("#locate")
            main, side = pane.query_one(".main"), pane.query_one(".side")
            assert main.border_title and side.border_title
            keys_colour = main.styles.border_top[1]
            await pilot.press("e")
            await pilot.pause()
            assert side.styles.border_top[1] == keys_colour  # the form's border now has the accent
            assert main.styles.border_top[1] != keys_colour

    run(scenario())


def test_the_2d_view_has_axes_margin_ticks_and_a_colour_bar_with_values(example):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "locate"))
            await settle(pilot)
            view = app.query_one("#locate-view", FrameView)
            lines = str(view.render()).split("\n")
            r0, r1, _, _ = app.query_one("#locate").window()
            row_labels = [line[: view.margin - 2].strip() for line in lines[:-1]]
            numbers = [int(x) for x in row_labels if x]
            assert len(numbers) >= 2 and all(r0 <= n < r1 for n in numbers)
            assert numbers == sorted(numbers, reverse=True)  # row 0 at the bottom
            assert lines[-1].lstrip().startswith("Å") and "╵4000" in lines[-1]  # wavelength axis
            ticks = {line[view.margin - 1] for line in lines[:-1]} | {line[-1] for line in lines[:-1]}
            assert {"▸", "◂"} <= ticks  # region edges marked in the margins
            legend = str(app.query_one("#locate-caption").render())
            low, high = view.limits
            assert f"{low:.4g}" in legend and f"{high:.4g}" in legend and "zscale" in legend
            # The aperture is outlined one column in four, not painted over the source.
            image = [view.render().split("\n")[i] for i in range(len(lines) - 1)]
            aperture = [
                span
                for line in image
                for span in line.spans
                if "255,0,255" in str(span.style).split(" on ")[0]
            ]
            assert aperture and all(span.end - span.start == 1 for span in aperture)

    run(scenario())


def test_zoom_pan_and_reset_move_the_window(example):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            pane = app.query_one("#frame")
            assert pane.window() == (0, 512, 0, 511)
            await pilot.press("z", "z")
            r0, r1, c0, c1 = pane.window()
            assert r1 - r0 == 128 and r0 <= 254 < r1
            await pilot.press("shift+up")
            assert pane.window()[0] == r0 + 16
            await pilot.press("greater_than_sign", "shift+right")
            _, _, c0, c1 = pane.window()
            assert c1 - c0 == 256 and c0 > 127
            await pilot.press("0")
            assert pane.window() == (0, 512, 0, 511)

    run(scenario())


def test_dq_shows_flag_categories_and_hits_a_count_per_cell(example):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "cosmic"))
            await settle(pilot)
            pane = app.query_one("#cosmic")
            view = app.query_one("#cosmic-view", FrameView)
            # At 80x24 a cell holds ~100 pixels: hits are not painted over the cleaned frame ...
            text = view.render()
            assert not any("255,40,40" in str(s.style) for s in text.spans)
            for _ in range(8):  # ... the hits layer counts them per cell
                if pane.view_layer == "hits":
                    break
                await pilot.press("v")
            assert pane.view_layer == "hits" and view.kind == "count"
            total = int(app.session.reduction.cosmic.mask.sum())
            assert 0 < view.limits[1] <= total
            assert "hits/cell" in str(app.query_one("#cosmic-caption").render())
            while pane.view_layer != "DQ":
                await pilot.press("v")
            assert view.kind == "flags" and list(view.bits) == [4]
            legend = app.query_one("#cosmic-caption").render()
            assert "flag" in str(legend) and "4" in str(legend)
            assert any(FLAG_COLOURS[0] in str(s.style) for s in view.render().spans)

    run(scenario())


def test_the_spectrum_zooms_pans_and_reads_out_at_its_cursor(example):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "extract"))
            await settle(pilot)
            pane = app.query_one("#extract")
            spectrum = app.session.reduction.spectrum
            await pilot.press("right")
            await settle(pilot)
            c = pane.cursor
            assert c == len(spectrum.flux) // 2 + 1
            readout = str(app.query_one("#extract-cursor").render())
            assert f"{spectrum.wavelength[c]:.2f} Å" in readout and f"column {c}" in readout
            assert f"{spectrum.flux[c]:.6g}" in readout and f"{spectrum.uncertainty[c]:.6g}" in readout
            await pilot.press("z", "z")
            await settle(pilot)
            x0, x1 = pane.columns()
            assert x1 - x0 == 128 and x0 <= c < x1
            await pilot.press("shift+right")
            await settle(pilot)
            assert pane.columns()[0] == x0 + 16
            figure = app.query_one("#extract-final").figure
            assert figure.bands and figure.cursor == pytest.approx(spectrum.wavelength[c])
            band = figure.bands[0]
            np.testing.assert_allclose(band.high - band.low, 2 * spectrum.uncertainty)

    run(scenario())


def test_key_text_reads_like_the_keyboard():
    assert [key_text(k) for k in ("plus", "question_mark", "shift+up", "f1", "delete", "comma")] == [
        "+",
        "?",
        "Shift+↑",
        "F1",
        "Del",
        ",",
    ]
    assert [key_text(k) for k in ("pageup", "pagedown", "greater_than_sign", "escape")] == [
        "PgUp",
        "PgDn",
        ">",
        "Esc",
    ]


@pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")  # raw: no WCS, no gain
def test_every_screen_draws_a_raw_frame_whose_calibration_trims_it(tmp_path):
    """A raw frame with overscan columns: the calibrate step trims it, so the frame the later steps
    work on is narrower than the one read. The 2D views after Frame show that calibrated frame (the
    regions are on its pixels); they used to take their window from the raw frame and the app ended
    with an IndexError on the Flux screen of Kast b27."""
    from longslit.testing import make_raw_set

    raws = make_raw_set(seed=3, n_bias=0, n_dark=0, n_flat=0, n_science=1)
    path = raws.science[0].write(tmp_path / "raw.fits")

    async def scenario():
        app = LongslitApp(str(path), "auto")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            raw_shape = app.session.frame.shape
            shape = app.session.reduction.frame.shape
            assert shape[1] < raw_shape[1]  # trimmed: the overscan columns are gone
            for name in app.screen_names:
                await pilot.press(key(pilot.app, name))
                await settle(pilot)
                assert app.is_running, name
                for view in app.query_one(f"#{name}").query(FrameView):
                    if view.image is None:
                        continue
                    assert view.image.shape == (raw_shape if name == "frame" else shape), name
                    r0, r1, c0, c1 = view.window
                    assert 0 <= r0 < r1 <= view.image.shape[0] and 0 <= c0 < c1 <= view.image.shape[1]
                    assert "cannot draw" not in view.render().plain, name
                await pilot.press("z", "shift+right", "shift+right")  # zoom and pan to the edge
                await settle(pilot)
                assert app.is_running, name

    run(scenario())


def test_a_view_that_fails_to_draw_says_so_and_the_app_stays_up(example):
    async def scenario():
        app = LongslitApp(str(example), "auto")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            view = app.query_one("#frame-view", FrameView)

            def broken():
                raise IndexError("index 2061 is out of bounds for axis 1 with size 2049")

            view.lines = broken
            view.changed()
            await pilot.pause()
            assert app.is_running
            strip = view.render_line(0)
            assert "cannot draw this view: IndexError: index 2061" in strip.text
            await pilot.press(key(pilot.app, "locate"))
            await settle(pilot)
            assert app.is_running

    run(scenario())


@pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")  # raw: no WCS
def test_the_calibrate_screen_shows_the_masters_in_2d(tmp_path):
    from longslit import Recipe
    from longslit.testing import make_raw_set

    raws = make_raw_set(seed=5, n_bias=3, n_dark=0, n_flat=2, n_science=1)
    bias = [frame.write(tmp_path / f"bias{i}.fits") for i, frame in enumerate(raws.bias)]
    flat = [frame.write(tmp_path / f"flat{i}.fits") for i, frame in enumerate(raws.flat)]
    science = raws.science[0].write(tmp_path / "sci.fits")
    recipe = Recipe.preset("auto").with_step("calibrate", "ccd", bias=[str(p) for p in bias],
                                             flat=[str(p) for p in flat])  # fmt: skip

    async def scenario():
        app = LongslitApp(str(science), recipe)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "calibrate"))
            await settle(pilot)
            pane = app.query_one("#calibrate")
            view = app.query_one("#calibrate-view", FrameView)
            masters = app.session.reduction.calibration.masters
            seen = {}
            for _ in range(12):  # v cycles through every layer, the masters among them
                await pilot.press("v")
                await settle(pilot)
                seen[pane.view_layer] = view.image
            assert seen["master bias"] is masters["bias"].data
            assert seen["master flat"] is masters["flat"].data
            assert "master dark" not in seen  # no dark given: not offered
            assert view.image.shape == app.session.reduction.frame.shape
            await pilot.press(key(pilot.app, "locate"), "v", "v", "v", "v", "v", "v", "v", "v")
            await settle(pilot)
            assert not app.query_one("#locate").view_layer.startswith("master")  # the Calibrate screen's

    run(scenario())


@pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")  # the NaN column is masked
def test_the_background_screen_opens_on_a_column_whose_fit_used_pixels(tmp_path):
    """Issue 21: it opened on column 10, whose background pixels on 3C 120 are all flagged (a plot of
    rejections only). Here column 10 holds no values: the screen opens on the nearest usable one."""
    frame = make_frame(seed=0)
    frame.hdul["SCI"].data[:, 10] = np.nan  # nothing to fit in column 10
    path = frame.write(tmp_path / "bad10.fits")

    async def scenario():
        app = LongslitApp(str(path), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            used = app.session.reduction.background.used
            assert not used[:, 10].any()  # the tutorial's column: nothing used
            await pilot.press(key(app, "background"))
            await settle(pilot)
            pane = app.query_one("#background")
            assert pane.column != 10 and used[:, pane.column].any()
            assert abs(pane.column - 10) == 1  # the nearest usable one
            figures = str(app.query_one("#background-figures").render())
            assert figures.startswith(f"column {pane.column}\n") and "\n0 pixels used" not in figures

    run(scenario())


def test_the_footer_is_one_widget_and_a_screen_switch_mounts_nothing_in_it(example):
    """The footer is a single widget drawing one line: a screen switch changes its text, never its
    children (a widget per key, recomposed on every switch, was what kept a switch above 150 ms);
    a click on a key runs it, found by its column."""

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            footers = list(app.query(KeyFooter))
            assert len(footers) == 1
            footer = footers[0]
            mounted, unmounted = [], []
            seen = set(app.query("*"))
            lines = set()
            for name in ("locate", "cosmic", "frame", "locate"):
                await pilot.press(key(app, name))
                await settle(pilot)
                assert not footer.children and footer.is_attached and app.query_one(KeyFooter) is footer
                lines.add(screen_lines(app)[-1].rstrip())
                now = set(app.query("*"))
                mounted += [w for w in now - seen if footer in w.ancestors]
                unmounted += [w for w in seen - now if w is footer]
            assert not mounted and not unmounted
            assert len(lines) >= 2  # the text did follow the screens' keys
            # A click on "? help" opens the help; the columns are the drawn ones.
            help_key = next(item for item in footer.items if item.action == "help")
            assert screen_lines(app)[-1][help_key.start : help_key.end] == "? help"
            await pilot.click(KeyFooter, offset=(help_key.start + 2, 0))
            await settle(pilot)
            assert type(app.screen).__name__ == "HelpScreen"

    run(scenario())


def test_a_disabled_key_is_drawn_dim_and_a_click_on_it_only_rings_the_bell():
    """No longslit screen disables a key today (they hide the keys that do nothing); a binding whose
    check says "not now" (None) stays in the footer, dimmed, as in Textual's footer."""
    from typing import ClassVar

    from textual.app import App

    class Keys(App):
        BINDINGS: ClassVar = [("?", "help", "help"), ("x", "wait", "later"), ("y", "go", "now")]
        went = 0

        def compose(self):
            yield KeyFooter()

        def check_action(self, action, parameters):
            return None if action == "wait" else True

        def action_go(self) -> None:
            self.went += 1

        def action_wait(self) -> None:
            raise AssertionError("a disabled key ran")

    async def scenario():
        app = Keys()
        async with app.run_test(size=(40, 3)) as pilot:
            await pilot.pause()
            footer = app.query_one(KeyFooter)
            by_action = {item.action: item for item in footer.items}
            assert not by_action["wait"].enabled and by_action["go"].enabled
            text = footer.render()
            assert text.plain == "? help x later y now"
            dim = {text.plain[s.start : s.end] for s in text.spans if s.style.dim}
            assert dim == {"x", " later"}
            await pilot.click(KeyFooter, offset=(by_action["wait"].start + 1, 0))
            await pilot.click(KeyFooter, offset=(by_action["go"].end - 1, 0))
            await pilot.pause()
            assert app.went == 1

    run(scenario())


def test_the_only_rule_on_a_panes_focus_is_its_main_panel():
    """StepPane.watch_has_focus restyles the pane and its ``.main`` children only, not the whole
    subtree Textual would: right only while no other rule selects on the pane's focus."""
    import re
    from pathlib import Path

    import longslit.tui

    css = (Path(longslit.tui.__file__).parent / "app.tcss").read_text()
    rules = re.findall(r"([^{}]*)\{", re.sub(r"/\*.*?\*/", "", css, flags=re.S))
    selectors = [s for rule in rules for s in rule.split(",") if re.search(r"StepPane[\w.#-]*:focus", s)]
    assert [" ".join(s.split()) for s in selectors] == ["StepPane:focus > .main"]
