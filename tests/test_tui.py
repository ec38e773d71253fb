"""The terminal UI driven by keys through Textual's Pilot, at 80x24, on real and synthetic frames."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from pilot import key, run, settle

import longslit
from longslit import CosmicResult, Method, Param, Recipe
from longslit.plugins.manager import Registry
from longslit.testing import make_frame
from longslit.tui.app import LongslitApp
from longslit.tui.screens import ConfirmScreen, OpenScreen
from longslit.tui.widgets.frame_view import RAMP, FrameView

SIZE = (80, 24)


def image_cells(view: FrameView) -> str:
    """The image part of a 2D view's render: without the row axis, the region ticks, the column axis."""
    lines = str(view.render()).split("\n")[:-1]
    return "\n".join(line[view.margin : -1] for line in lines)


async def type_into(pilot, widget_id: str, text: str) -> None:
    """Replace an input's text by keys: focus it, clear it, type, Enter."""
    pilot.app.query_one(f"#{widget_id}").focus()
    await pilot.pause()
    await pilot.press("end", "ctrl+u", *list(text), "enter")
    await settle(pilot)


async def save_by_keys(pilot, spectrum: str, recipe: str) -> None:
    """Save as a user does: the Save screen, both file names typed, Esc then w."""
    await pilot.press(key(pilot.app, "save"))
    await settle(pilot)
    await type_into(pilot, "save-spectrum", spectrum)
    await type_into(pilot, "save-recipe", recipe)
    await pilot.press("escape", "w")
    await settle(pilot)


def form_id(app, step: str, name: str) -> str:
    form = app.query_one(f"#form-{step}")
    return form._field_id(name)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return make_frame(seed=0).write(tmp_path_factory.mktemp("tui") / "example.fits")


def test_full_reduction_of_3c120_by_keys_matches_headless(real_frame_path, tmp_path, monkeypatch):
    """Open the real frame with another recipe, set the tutorial's choices by keys, save, compare."""
    monkeypatch.chdir(tmp_path)
    start = Recipe.preset("tutorial").with_overrides(
        {
            "locate": {"aperture": [240, 248], "background": [[20, 100]], "protected": [[200, 300]]},
            "cosmic": {"threshold": 5.0},
            "background": {"order": 1, "use_mask": True},
        }
    )

    async def scenario():
        app = LongslitApp(str(real_frame_path), start)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "locate"))  # locate: the tutorial's rows, typed into the form
            await settle(pilot)
            await type_into(pilot, form_id(app, "locate", "aperture"), "250:260")
            await type_into(pilot, form_id(app, "locate", "background"), "10:200,300:480")
            await type_into(pilot, form_id(app, "locate", "protected"), "230:280")
            await pilot.press("escape", key(pilot.app, "cosmic"))  # clean: threshold 8
            await settle(pilot)
            await type_into(pilot, form_id(app, "cosmic", "threshold"), "8")
            await pilot.press("escape", key(pilot.app, "background"))  # fit: quadratic, every pixel
            await settle(pilot)
            await type_into(pilot, form_id(app, "background", "order"), "2")
            app.query_one(f"#{form_id(app, 'background', 'use_mask')}").focus()
            await pilot.press("space")
            await settle(pilot)
            await pilot.press("escape", key(pilot.app, "extract"))  # extract
            await settle(pilot)
            assert app.session.error is None
            await pilot.press(key(pilot.app, "save"))
            await settle(pilot)
            await type_into(pilot, "save-spectrum", "by_keys.fits")
            await type_into(pilot, "save-recipe", "by_keys.toml")
            await pilot.press("escape", "w")
            await settle(pilot)
            assert not app.session.unsaved
            return app.session.reduction

    result = run(scenario())
    headless = longslit.reduce(real_frame_path, "tutorial")
    assert result.cosmic.n_replaced == 2068
    saved = fits.getdata(tmp_path / "by_keys.fits", "SPECTRUM")
    np.testing.assert_array_equal(saved["FLUX"], headless.spectrum.flux)
    replayed = longslit.reduce(real_frame_path, str(tmp_path / "by_keys.toml"))
    np.testing.assert_array_equal(replayed.spectrum.flux, headless.spectrum.flux)


def test_moving_the_aperture_reruns_from_locate_and_changes_the_spectrum(example):
    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            before = app.session.reduction.spectrum.flux.copy()
            await pilot.press(key(pilot.app, "locate"), "up")
            await settle(pilot)
            assert app.session.params("locate")["aperture"] == [251, 261]
            assert app.session.params("locate")["protected"] == [[230, 280]]  # still covers it
            field = app.query_one(f"#{form_id(app, 'locate', 'aperture')}")
            assert field.value == "251:261"  # the form shows it too
            # The cleaning and the background read no aperture: they come from the cache.
            assert app.session.computed == ["locate", "extract", "flux"]
            after = app.session.reduction.spectrum.flux
            assert not np.allclose(before, after)
            for _ in range(25):  # out of the protected rows: they travel along
                await pilot.press("up")
            await settle(pilot)
            assert app.session.params("locate")["aperture"] == [276, 286]
            assert app.session.params("locate")["protected"] == [[236, 286]]
            assert app.session.computed == ["locate", "cosmic", "background", "extract", "flux"]
            for _ in range(25):
                await pilot.press("down")
            await settle(pilot)
            assert app.session.params("locate")["aperture"] == [251, 261]
            await pilot.press("plus")  # wider by one row each side
            await settle(pilot)
            assert app.session.params("locate")["aperture"] == [250, 262]
            await pilot.press("full_stop", "down", "down")  # select background 1, move it
            await settle(pilot)
            assert app.session.params("locate")["background"][0] == [8, 198]
            await pilot.press("b")  # add a region, then delete it
            await settle(pilot)
            assert len(app.session.params("locate")["background"]) == 3
            await pilot.press("x")
            await settle(pilot)
            assert len(app.session.params("locate")["background"]) == 2
            await pilot.press(key(pilot.app, "background"))  # a change after locate reruns only from there
            await settle(pilot)
            await type_into(pilot, form_id(app, "background", "order"), "1")
            assert app.session.computed == ["background", "extract", "flux"]

    run(scenario())


def _fill(frame, geometry, *, fill: float = 0.0):
    hits = np.zeros(frame.shape, dtype=bool)
    hits[0, :4] = True
    return CosmicResult(cleaned=np.where(hits, fill, frame.sci), mask=hits)


def _slow(frame, geometry, *, seconds: float = 0.6):
    import time

    time.sleep(seconds)
    return CosmicResult(cleaned=frame.sci.copy(), mask=np.zeros(frame.shape, dtype=bool))


def test_running_shows_only_for_a_run_that_takes_a_while(example):
    registry = Registry(entry_points=False)
    registry._add(
        Method(
            "cosmic",
            "slow",
            "Takes its time.",
            _slow,
            (Param("seconds", "float", 0.6, "How long.", unit="s"),),
            package="longslit-testplugin",
            version="1.0",
        )
    )

    async def scenario():
        app = LongslitApp(str(example), "tutorial", registry=registry)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            shown: list[str] = []
            message = app.message
            app.message = lambda text, **kw: (shown.append(text), message(text, **kw))[1]
            await pilot.press(key(pilot.app, "locate"), "up")  # a nudge: done before the notice is due
            await settle(pilot)
            assert app.session.computed == ["locate", "extract", "flux"]
            assert shown and not any("running" in text for text in shown)
            app.change_method("cosmic", "slow")
            await pilot.pause(0.4)
            assert "running" in str(app.query_one("#message").render())
            await settle(pilot)
            assert "reran cosmic" in str(app.query_one("#message").render())

    run(scenario())


def _explode(frame, geometry, *, when: str = "now"):
    raise RuntimeError("deliberate failure")


def test_a_plugin_method_appears_in_the_picker_with_its_form_and_a_failing_one_is_shown(example):
    registry = Registry(entry_points=False)
    registry._add(
        Method(
            "cosmic",
            "fill",
            "Fill four pixels.",
            _fill,
            (Param("fill", "float", 0.0, "Replacement value.", unit="counts"),),
            package="longslit-testplugin",
            version="1.0",
        )
    )
    registry._add(
        Method(
            "cosmic",
            "explode",
            "Always fails.",
            _explode,
            (Param("when", "str", "now", "When.", choices=("now", "later")),),
            package="longslit-bad",
            version="0.1",
        )
    )

    async def scenario():
        app = LongslitApp(str(example), "tutorial", registry=registry)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "cosmic"))
            await settle(pilot)
            picker = app.query_one(f"#{form_id(app, 'cosmic', 'method')}")
            assert [str(option[0]) for option in picker._options] == ["median", "fill", "explode"]
            picker.focus()
            await pilot.press("enter", "down", "enter")  # open the list, pick "fill"
            await settle(pilot)
            assert app.session.recipe.steps["cosmic"].method == "fill"
            await type_into(pilot, form_id(app, "cosmic", "fill"), "-7")
            assert app.session.reduction.cosmic.n_replaced == 4
            assert np.all(app.session.reduction.cleaned.sci[0, :4] == -7)
            good = app.session.reduction
            picker = app.query_one(f"#{form_id(app, 'cosmic', 'method')}")
            picker.focus()
            await pilot.press("enter", "down", "enter")  # "explode": fails in its worker
            await settle(pilot)
            message = str(app.query_one("#message").render())
            assert "method 'explode' from longslit-bad failed: RuntimeError: deliberate failure" in message
            assert app.session.reduction is good  # the last good result stays
            assert app.is_running
            await pilot.press(key(pilot.app, "extract"))  # the app is still usable
            await settle(pilot)
            assert app.current == "extract"

    run(scenario())


def test_a_corrupt_file_opens_an_error_view_and_the_app_stays_usable(tmp_path, example):
    broken = tmp_path / "broken.fits"
    broken.write_bytes(b"SIMPLE  = not really" * 50)

    async def scenario():
        app = LongslitApp(str(broken), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.query_one("#switcher").current == "error-view"
            assert "cannot be read as FITS" in str(app.query_one("#error-text").render())
            await pilot.press("o")
            await pilot.pause()
            assert isinstance(app.screen, OpenScreen)
            await pilot.press(*list(str(example)), "enter")
            await settle(pilot)
            assert app.query_one("#switcher").current == "frame"
            assert app.session.reduction is not None

    run(scenario())


def test_quit_asks_when_results_are_unsaved_and_save_never_overwrites_silently(
    example, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.fits").write_bytes(b"precious")

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            await pilot.pause()
            assert app.is_running
            await pilot.press(key(pilot.app, "save"))
            await settle(pilot)
            await type_into(pilot, "save-spectrum", "mine.fits")
            await pilot.press("escape", "w")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)  # exists: asks
            await pilot.press("n")
            await pilot.pause()
            assert (tmp_path / "mine.fits").read_bytes() == b"precious"
            await pilot.press("w")
            await pilot.pause()
            await pilot.press("y")
            await settle(pilot)
            assert (tmp_path / "mine.fits").read_bytes()[:6] == b"SIMPLE"
            await pilot.press("q")  # saved: quits at once
            await pilot.pause()
        return app.return_code

    assert run(scenario()) == 0


def test_no_color_falls_back_to_a_character_ramp_and_resizes_cleanly(example, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            view = app.query_one("#frame-view", FrameView)
            text = image_cells(view)
            assert "▀" not in text and set(text) - {"\n"} <= set(RAMP)
            await pilot.press(key(pilot.app, "locate"))
            await settle(pilot)
            locate = image_cells(app.query_one("#locate-view", FrameView))
            assert "=" in locate and "~" in locate  # aperture and protected edges as characters
            await pilot.resize_terminal(120, 40)
            await settle(pilot)
            assert app.query_one("#locate-view", FrameView).size.width > 60
            await pilot.resize_terminal(*SIZE)
            await settle(pilot)
            assert app.query_one("#locate-view", FrameView).size.width < 50

    run(scenario())


def test_sixteen_colours_use_the_ramp_and_truecolor_the_half_blocks(example, monkeypatch):
    import textual.constants

    async def frame_text(system: str) -> str:
        monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", system)
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            return image_cells(app.query_one("#frame-view", FrameView))

    assert "▀" not in run(frame_text("standard"))
    assert set(run(frame_text("truecolor"))) == {"▀", "\n"}


def test_help_lists_every_key_as_typed(example):
    from longslit.tui.keys import binding_keys

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            text = app._help_text()
            for screen in app.step_screens:
                for binding in app.query_one(f"#{screen.name}").BINDINGS:
                    assert binding_keys(binding) in text, binding
            for binding in app.BINDINGS:
                assert binding_keys(binding) in text
            assert "+ =" in text and "[" in text and "Shift+↑" in text and ". " in text
            for internal in (
                "plus",
                "equals_sign",
                "question_mark",
                "full_stop",
                "square_bracket",
                "resize(",
            ):
                assert internal not in text, internal
            await pilot.press("question_mark")
            await pilot.pause()
            assert app.screen.__class__.__name__ == "HelpScreen"

    run(scenario())


def test_keys_on_an_automatic_tilted_trace_keep_the_tilt(tmp_path):
    source = make_frame(seed=5, tilt=0.03, n_cosmics=50).write(tmp_path / "tilted.fits")

    async def scenario():
        app = LongslitApp(str(source))  # the default preset: auto
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.session.recipe.steps["locate"].method == "auto"
            before = app.session.reduction
            await pilot.press(key(pilot.app, "locate"), "up")
            await settle(pilot)
            params = app.session.params("locate")
            assert app.session.recipe.steps["locate"].method == "trace"  # auto frozen into numbers
            assert params["slope"] == pytest.approx(0.03, abs=0.002)
            # The aperture moved one row up along the trace; the trace, the background and the
            # protected band stayed, so only the extraction reran (issue 'speed', goal 4).
            geometry = app.session.reduction.geometry
            np.testing.assert_array_equal(geometry.trace, before.geometry.trace)
            np.testing.assert_allclose(geometry.aperture.lower, before.geometry.aperture.lower + 1)
            np.testing.assert_allclose(geometry.aperture.upper, before.geometry.aperture.upper + 1)
            for moved, kept in zip(geometry.background, before.geometry.background, strict=True):
                np.testing.assert_array_equal(moved.lower, kept.lower)
            assert app.session.computed == ["locate", "extract", "flux"]
            assert app.session.reduction.cosmic is before.cosmic
            await pilot.press("plus", "full_stop", "plus")  # wider aperture, then a wider background
            await settle(pilot)
            after = app.session.params("locate")
            assert after["aperture_below"] == params["aperture_below"] + 1
            assert after["background_outer"] == params["background_outer"] + 1
            assert after["background_inner"] == params["background_inner"] - 1
            assert app.session.error is None

    run(scenario())


def test_an_installed_plugin_method_is_offered_with_its_parameters(example):
    """Issue 'plugins': the lacosmic package, installed, appears in the cosmic picker with its form."""
    import os

    registry = Registry()
    if "lacosmic" not in [m.name for m in registry.methods("cosmic")]:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("under CI the example plugin longslit-lacosmic must be installed")
        pytest.skip("longslit-lacosmic is not installed")

    async def scenario():
        app = LongslitApp(str(example), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "cosmic"))
            await settle(pilot)
            picker = app.query_one(f"#{form_id(app, 'cosmic', 'method')}")
            names = [str(option[0]) for option in picker._options]
            assert "lacosmic" in names
            app.change_method("cosmic", "lacosmic")
            await settle(pilot)
            for name in ("sigclip", "objlim", "gain", "readnoise", "niter"):
                assert app.query(f"#{form_id(app, 'cosmic', name)}"), name
            assert app.session.error is None
            cosmic = next(r for r in app.session.reduction.records if r.step == "cosmic")
            assert cosmic.package == "longslit-lacosmic"

    run(scenario())


def test_every_pane_draws_on_the_real_frame_with_the_default_preset(real_frame_path):
    """3C 120's first columns have no usable background pixel: the panes must still draw."""
    from longslit.tui.widgets.plot import PlotView

    async def scenario():
        app = LongslitApp(str(real_frame_path))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            for key in "12345":
                await pilot.press(key)
                await settle(pilot)
                for plot in app.query_one(f"#{app.current}").query(PlotView):
                    text = str(plot.render())
                    assert text.strip() and "cannot draw" not in text, (app.current, text[:80])

    run(scenario())


def test_a_traced_aperture_moves_along_the_trace_and_takes_the_protected_band_when_it_leaves_it(tmp_path):
    """Keys on an automatic geometry: the aperture moves, the rest stays until the aperture leaves it."""
    from longslit.tui.session import Session

    synthetic = make_frame((200, 300), seed=12, tilt=0.02, n_cosmics=100, trace_center=100.0)
    frame = longslit.read(synthetic.write(tmp_path / "tilted.fits"))
    session = Session(Recipe.coerce("auto"), source=frame)
    session.load()
    first = session.run()
    protected = first.geometry.protected[0]
    session.shift_region(2)
    frozen = session.params("locate")
    session.run()
    assert session.computed == ["locate", "extract", "flux"]
    np.testing.assert_array_equal(session.reduction.geometry.trace, first.geometry.trace)
    np.testing.assert_allclose(session.reduction.geometry.aperture.upper, first.geometry.aperture.upper + 2)
    # Up and past the protected band (the background pair moved out of the way first, or the run
    # would say the aperture overlaps it): the band grows by as much as the aperture went past it.
    margin = frozen["protect"] - frozen["aperture_above"]
    steps = int(np.ceil(margin)) + 3
    assert session.select_region(1) == 1
    session.shift_region(steps + 10)
    assert session.params("locate")["background_inner"] == frozen["background_inner"] + steps + 10
    assert session.select_region(1) == 0
    session.shift_region(steps)
    moved = session.params("locate")
    assert moved["aperture_above"] == frozen["aperture_above"] + steps
    assert moved["protect"] == pytest.approx(moved["aperture_above"] + margin)
    session.run()
    assert "cosmic" in session.computed
    band = session.reduction.geometry.protected[0]
    assert np.all(band.upper >= session.reduction.geometry.aperture.upper)
    assert np.all(band.upper > protected.upper)
    # The aperture may leave the trace altogether (an off-nuclear region) ...
    session.shift_region(int(np.ceil(frozen["aperture_below"])) + 2)
    assert session.params("locate")["aperture_below"] < 0
    result = session.run()
    assert np.all(result.geometry.aperture.lower > result.geometry.trace)
    assert np.isfinite(result.spectrum.flux).all()
    # ... but keeps a width of one row at least, and a recipe with none is refused in one sentence.
    for _ in range(20):
        session.resize_region(-1)
    width = session.params("locate")["aperture_below"] + session.params("locate")["aperture_above"]
    assert 1.0 <= width < 3.0
    session.recipe = session.recipe.with_step("locate", "trace", aperture_below=-3.0, aperture_above=2.0)
    with pytest.raises(longslit.errors.InputError, match="needs a positive width"):
        session.run()
    assert session.reduction is result
