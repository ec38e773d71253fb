"""Parameter declarations and recipes: validation, parsing, TOML round trips, error messages."""

from __future__ import annotations

import pytest

from longslit.errors import PluginError, RecipeError
from longslit.plugins.manager import Registry
from longslit.plugins.records import Method, Param
from longslit.recipe import Recipe, preset_names


@pytest.fixture
def registry():
    return Registry(entry_points=False)


def test_param_validates_numbers_with_bounds():
    threshold = Param("threshold", "float", 8.0, "clip", minimum=0.0)
    assert threshold.validate(3) == 3.0 and isinstance(threshold.validate(3), float)
    with pytest.raises(ValueError, match="out of range; allowed: a number >= 0"):
        threshold.validate(-1)
    with pytest.raises(ValueError, match="is not a number"):
        threshold.validate("high")
    with pytest.raises(ValueError, match="not finite"):
        threshold.validate(float("nan"))
    order = Param("order", "int", 2, "order", minimum=0, maximum=9)
    assert order.validate(3.0) == 3
    with pytest.raises(ValueError, match="integer from 0 to 9"):
        order.validate(2.5)
    with pytest.raises(ValueError):
        order.validate(True)  # a bool is not a number here, though Python says it is an int


def test_param_parses_command_line_text():
    rows = Param("aperture", "rows", None, "rows", required=True)
    assert rows.parse("250:260") == [250, 260]
    assert rows.parse("[250, 260]") == [250, 260]
    with pytest.raises(ValueError, match="row range"):
        rows.parse("260:250")
    regions = Param("background", "rows_list", None, "rows", required=True)
    assert regions.parse("10:200,300:480") == [[10, 200], [300, 480]]
    assert regions.parse("[[10, 200]]") == [[10, 200]]
    flag = Param("use_mask", "bool", True, "mask")
    assert flag.parse("no") is False and flag.parse("TRUE") is True
    with pytest.raises(ValueError, match="true or false"):
        flag.parse("maybe")
    sigma = Param("sigma", "float", None, "noise", nullable=True)
    assert sigma.parse("auto") is None and sigma.parse("2.5") == 2.5
    mode = Param("mode", "str", "a", "mode", choices=("a", "b"))
    with pytest.raises(ValueError, match="one of a, b"):
        mode.parse("c")


def test_param_declaration_errors_are_caught_early():
    with pytest.raises(ValueError, match="kind"):
        Param("x", "complex", 1, "x")
    with pytest.raises(ValueError, match="default None"):
        Param("x", "int", None, "x")
    with pytest.raises(ValueError, match="out of range"):
        Param("x", "int", -1, "x", minimum=0)


def test_method_resolve_fills_defaults_and_rejects_unknown_keys():
    method = Method(
        "cosmic", "m", "s", lambda f, g, **k: None, (Param("a", "int", 1, "a"), Param("b", "float", 2.0, "b"))
    )
    assert method.resolve({"b": 3}) == {"a": 1, "b": 3.0}
    with pytest.raises(KeyError, match=r"unknown parameter 'c'.*known: a, b"):
        method.resolve({"c": 1})


def test_tutorial_preset_has_the_tutorial_parameters(registry):
    recipe = Recipe.preset("tutorial").resolve(registry)
    assert "tutorial" in preset_names()
    locate = recipe.steps["locate"].params
    assert locate["aperture"] == [250, 260]
    assert locate["background"] == [[10, 200], [300, 480]]
    assert locate["protected"] == [[230, 280]]
    assert recipe.steps["cosmic"].params == {
        "size": 5,
        "threshold": 8.0,
        "sigma": None,
        "model": "square",
        "noise": "frame",
    }
    assert recipe.steps["background"].params["order"] == 2
    assert recipe.steps["background"].params["clip_iterations"] == 0


def test_recipe_toml_round_trip_keeps_every_value(registry):
    recipe = Recipe.preset("tutorial").with_overrides({"cosmic": {"threshold": 6.5}}).resolve(registry)
    text = recipe.to_toml(registry)
    assert "# sigma = auto" in text and "Allowed:" in text  # commented, ready to edit
    again = Recipe.from_toml(text, source="x.toml").resolve(registry)
    assert again.to_dict() == recipe.to_dict()
    assert again.digest() == recipe.digest()
    assert recipe.digest() != Recipe.preset("tutorial").resolve(registry).digest()


LOCATE = "[locate]\naperture = [250, 260]\nbackground = [[10, 200]]\n"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[cosmic]\nmethod = "nope"\n',
            r"r\.toml: cosmic\.method = 'nope' is not an installed method; "
            r"available: median",
        ),
        (
            "[cosmic]\nthreshhold = 3\n",
            r"r\.toml: \[cosmic\] unknown parameter 'threshhold'.*"
            r"known: size, threshold, sigma",
        ),
        (
            "[cosmic]\nthreshold = -1\n",
            r"r\.toml: cosmic\.threshold = -1 is out of range; "
            r"allowed: a number >= 0",
        ),
        ("[locate]\naperture = [260, 250]\n", r"r\.toml: locate\.aperture = \[260, 250\].*row range"),
        (
            "[flatfield]\nmethod = 'x'\n",
            r"r\.toml: unknown key 'flatfield'; allowed: name, description, read",
        ),
        ("[cosmic\n", r"r\.toml: is not valid TOML"),
        ("[locate]\naperture = [250, 260]\n", r"r\.toml: locate\.background is required"),
    ],
)
def test_recipe_errors_name_file_key_and_what_is_allowed(registry, tmp_path, toml, expected):
    path = tmp_path / "r.toml"
    if "[locate]" not in toml:
        toml = LOCATE + toml
    path.write_text(toml)
    with pytest.raises(RecipeError, match=expected):
        Recipe.load(path).resolve(registry)


def test_missing_recipe_file_and_unknown_preset():
    with pytest.raises(RecipeError, match="recipe file not found"):
        Recipe.coerce("/nonexistent/recipe.toml")
    listed = "auto, gtc-osiris, jwst-miri-lrs, kast-blue, tutorial"
    with pytest.raises(RecipeError, match=f"no preset or recipe file named 'fancy'; presets: {listed}"):
        Recipe.coerce("fancy")


def test_command_line_assignments(registry):
    recipe = Recipe.preset("tutorial").with_assignments(
        ["cosmic.threshold=5", "locate.aperture=249:261", "background.use_mask=yes"], registry
    )
    resolved = recipe.resolve(registry)
    assert resolved.steps["cosmic"].params["threshold"] == 5.0
    assert resolved.steps["locate"].params["aperture"] == [249, 261]
    assert resolved.steps["background"].params["use_mask"] is True
    with pytest.raises(
        RecipeError, match=r"--set: cosmic\.threshold = '-2' is out of range; allowed: a number >= 0"
    ):
        Recipe.preset("tutorial").with_assignments(["cosmic.threshold=-2"], registry)
    with pytest.raises(RecipeError, match=r"unknown parameter cosmic\.foo of method 'median'"):
        Recipe.preset("tutorial").with_assignments(["cosmic.foo=1"], registry)
    with pytest.raises(RecipeError, match=r"must look like step\.param=value"):
        Recipe.preset("tutorial").with_assignments(["threshold"], registry)


def test_changing_a_method_drops_the_old_methods_parameters(registry):
    extra = Method("cosmic", "none", "Leave the data alone.", lambda frame, geometry: None)
    registry._add(extra)
    recipe = Recipe.preset("tutorial").with_assignments(["cosmic.method=none"], registry)
    assert recipe.resolve(registry).steps["cosmic"] == type(recipe.steps["cosmic"])("none", {})


def test_duplicate_method_is_an_error_naming_both_packages(registry):
    registry._add(Method("cosmic", "median", "mine", print, package="longslit-fake", version="9.9"))
    with pytest.raises(PluginError, match=r"offered by both longslit 0\.1\.0 and longslit-fake 9\.9"):
        Recipe.preset("tutorial").resolve(registry)
    assert any("longslit-fake" in problem.reason for problem in registry.problems)


def test_a_recipe_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path):
    with pytest.raises(RecipeError, match="is not a regular file"):
        Recipe.load("/dev/zero")  # would read forever
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(RecipeError, match="over 1 MB"):
        Recipe.load(big)
