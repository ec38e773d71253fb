"""longslit: reduce 2D long-slit spectra to 1D spectra, in the terminal or headless.

The public API::

    import longslit
    frame = longslit.read("frame.fits")
    result = longslit.reduce("frame.fits", "tutorial", cosmic={"threshold": 6.0})
    result.spectrum.flux, result.cosmic_mask, result.background_model, result.geometry
    result.write("spectrum.fits")
    for done in longslit.reduce_many("night1/", "tutorial", "spectra/", jobs=4):  # a batch
        done.input, done.status, done.error

Attributes are imported on first use (PEP 562), so ``import longslit`` and the command line's
``--help`` stay quick: numpy, astropy and pluggy load only when something needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from .frame import Frame
    from .pipeline import Reduction
    from .recipe import Recipe

_LAZY = {
    "Frame": "frame",
    "Band": "geometry",
    "Geometry": "geometry",
    "CosmicResult": "products",
    "BackgroundFit": "products",
    "Spectrum": "products",
    "Calibration": "products",
    "WavelengthCalibration": "products",
    "Recipe": "recipe",
    "Pipeline": "pipeline",
    "reduce_many": "batch",
    "Reduction": "pipeline",
    "Method": "plugins.records",
    "Param": "plugins.records",
    "declare": "plugins.records",
    "hookimpl": "plugins.hookspecs",
    "Registry": "plugins.manager",
    "get_registry": "plugins.manager",
    "LongslitError": "errors",
    "FrameError": "errors",
    "RecipeError": "errors",
    "IncompleteError": "errors",
    "PluginError": "errors",
    "InputError": "errors",
    "OutputError": "errors",
    "StepError": "errors",
    "LongslitWarning": "errors",
    "StepKind": "stepkinds",
    "call_method": "stepkinds",
    "summarize": "report",
}

__all__ = ["__version__", "read", "reduce", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'longslit' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"longslit.{module}"), name)
    globals()[name] = value
    return value


def read(path: str | Path, **params: Any) -> Frame:
    """Read a frame with the default reader (``fits``); ``params`` as the read step's."""
    return _run_step("read", path, params)


def reduce(
    source: str | Path | Frame,
    recipe: Recipe | str | Path | None = None,
    **overrides: dict[str, Any],
) -> Reduction:
    """Reduce a frame with a recipe.

    Parameters
    ----------
    source : path or Frame
        The frame, as a file or already read.
    recipe : Recipe, preset name or TOML path, optional
        Default: the ``auto`` preset (automatic trace, optimal extraction).
    **overrides : dict
        Per-step changes, e.g. ``cosmic={"threshold": 6.0}`` or ``extract={"method": "boxcar"}``.

    Returns
    -------
    Reduction
        ``.spectrum`` (wavelength, flux, uncertainty, mask) and every step's products.
    """
    from .pipeline import Pipeline
    from .recipe import Recipe

    chosen = Recipe.coerce(recipe)
    if overrides:
        chosen = chosen.with_overrides(overrides)
    return Pipeline().run(source, chosen)


def _run_step(step: str, source: Any, params: dict[str, Any]) -> Any:
    """Run the default method of one step on its own (used by :func:`read`)."""
    from .errors import RecipeError
    from .plugins.manager import get_registry
    from .stepkinds import call_method, get

    kind = get(step)
    method = get_registry().method(step, kind.default_method)
    try:
        resolved = method.resolve(params)
    except (KeyError, ValueError) as exc:
        raise RecipeError(f"{step}.{exc.args[0]}") from None
    return call_method(method, source, where=str(source), expect=kind.product, **resolved)
