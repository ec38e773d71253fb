"""Run a recipe on a frame, step by step, keeping every product.

:class:`Pipeline` caches each step's product under a key made of its own configuration and the keys
of the steps before it, so changing one step's parameters reruns that step and the ones after it
only (the terminal UI relies on this). Methods are called through :meth:`Pipeline._call`, which turns
an unexpected exception into a :class:`StepError` naming the step, the method and its package, and
checks that what a method returns has the type and shape the next steps need.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, LongslitError, StepError
from .frame import Frame
from .geometry import Band, Geometry
from .limits import check_frame, limited
from .plugins.manager import Registry, get_registry
from .plugins.records import Method
from .products import BackgroundFit, CosmicResult, Spectrum
from .recipe import Recipe

#: The steps that compute, in order; ``write`` runs on request (``Reduction.write``).
COMPUTE_STEPS = ("read", "locate", "cosmic", "background", "extract")


@dataclass(frozen=True)
class StepRecord:
    """Provenance of one step: which method from which package, with which parameters, how long."""

    step: str
    method: str
    package: str
    version: str
    params: dict[str, Any]
    seconds: float


@dataclass(eq=False)
class Reduction:
    """Everything a reduction produced, step by step.

    Attributes
    ----------
    frame : Frame
        The frame as read.
    geometry : Geometry
        Trace, aperture, background and protected regions (locate).
    cosmic : CosmicResult
        Cleaned data and the mask of replaced pixels.
    cleaned : Frame
        The frame with cosmic rays replaced.
    background : BackgroundFit
        The background model and its uncertainty.
    subtracted : Frame
        The cleaned frame minus the background model.
    spectrum : Spectrum
        The extracted 1D spectrum.
    """

    recipe: Recipe
    frame: Frame
    geometry: Geometry
    cosmic: CosmicResult
    cleaned: Frame
    background: BackgroundFit
    subtracted: Frame
    spectrum: Spectrum
    records: list[StepRecord] = field(default_factory=list)
    registry: Registry | None = None

    @property
    def cosmic_mask(self) -> np.ndarray:
        """Pixels replaced by the cosmic-ray step."""
        return self.cosmic.mask

    @property
    def background_model(self) -> np.ndarray:
        """The background subtracted from the cleaned frame."""
        return self.background.model

    @property
    def aperture(self):
        """The aperture band (per-column edges)."""
        return self.geometry.aperture

    def write(
        self,
        path: str | Path,
        format: str | None = None,
        *,
        overwrite: bool = False,
        **params: Any,
    ) -> Path:
        """Write the spectrum (and provenance) to ``path``, atomically.

        Parameters
        ----------
        format : str, optional
            A write method ("fits", "ecsv", or a plugin's); default the recipe's ``write`` step.
        overwrite : bool
            Replace an existing file (otherwise it is kept and ``OutputError`` raised).
        **params
            Parameters of the write method (e.g. ``products=True`` for the 2D products).
        """
        from .output import write_atomic

        registry = self.registry or get_registry()
        config = self.recipe.steps["write"]
        format = format or config.method
        method = registry.method("write", format)
        given = dict(config.params) if format == config.method else {}
        given.update(params)
        try:
            resolved = method.resolve(given)
        except (KeyError, ValueError) as exc:
            raise InputError(f"write.{exc.args[0]}") from None

        def produce(temporary: Path) -> None:
            # OSError (disk full, permissions) is the output's problem, not the method's: let
            # write_atomic report it as an OutputError.
            Pipeline._call(
                method, "write", self.frame.source, self, temporary, passthrough=OSError, **resolved
            )

        return write_atomic(Path(path), produce, overwrite=overwrite, inputs=[self.frame.source])


class Pipeline:
    """Runs recipes, remembering each step's last product to rerun only what changed.

    Parameters
    ----------
    registry : Registry, optional
        The methods to use; default the process-wide registry (built-ins and installed plugins).
    memory_limit : str or int, optional
        Refuse frames whose reduction would need more memory than this (``"4G"``, bytes, ``"none"``);
        default ``$LONGSLIT_MEMORY_LIMIT``, else 3/4 of the physical memory (see ``longslit.limits``).
    """

    def __init__(self, registry: Registry | None = None, *, memory_limit: str | int | None = None) -> None:
        self.registry = registry or get_registry()
        self.memory_limit = memory_limit
        self._cache: dict[str, tuple[Any, Any, StepRecord]] = {}
        #: Steps actually computed (not taken from the cache) by the last run.
        self.computed: list[str] = []
        self._derived_from: tuple = ()
        self._derived: tuple = ()

    def _derive(self, frame: Frame, cosmic: CosmicResult, background: BackgroundFit | None):
        """:func:`_derived`, remembered for the last inputs (by identity): the subtracted frame is a
        frame-sized subtraction that the extraction and the Reduction would otherwise each redo."""
        inputs = (frame, cosmic, background)
        previous = self._derived_from
        if len(previous) == 3 and all(a is b for a, b in zip(inputs, previous, strict=True)):
            return self._derived
        self._derived_from, self._derived = inputs, _derived(frame, cosmic, background)
        return self._derived

    def run(self, source: str | Path | Frame, recipe: Recipe | str | Path | None = None) -> Reduction:
        """Reduce ``source`` (a path or a Frame) with ``recipe`` (default: the default preset)."""
        recipe = Recipe.coerce(recipe)
        if not recipe.resolved:
            recipe = recipe.resolve(self.registry)
        where = source.source if isinstance(source, Frame) else str(source)
        self.computed = []
        records: list[StepRecord] = []
        keys: dict[str, tuple] = {}
        products: dict[str, Any] = {}
        for step in COMPUTE_STEPS:
            config = recipe.steps[step]
            method = self.registry.method(step, config.method, source=recipe.source)
            # A step's key holds what its result depends on: its method and parameters, the key of
            # the step whose product it takes, and (after locate) the geometry it reads, not the
            # locate parameters that made it. Moving the aperture then reruns only the extraction.
            upstream = keys[_UPSTREAM[step]] if step in _UPSTREAM else (_source_key(source),)
            key = (upstream, step, config.method, _freeze(config.params))
            if step in _UPSTREAM and step != "locate":
                uses = None if step == "extract" else method.uses
                key = (*key, _geometry_key(products["locate"], uses))
            keys[step] = key
            cached = self._cache.get(step)
            if cached is not None and cached[0] == key:
                products[step], record = cached[1], cached[2]
            else:
                started = time.perf_counter()
                products[step] = self._step(step, method, config.params, source, products, where)
                record = StepRecord(
                    step,
                    method.name,
                    method.package,
                    method.version,
                    dict(config.params),
                    time.perf_counter() - started,
                )
                self._cache[step] = (key, products[step], record)
                self.computed.append(step)
            records.append(record)
        frame: Frame = products["read"]
        cosmic: CosmicResult = products["cosmic"]
        background: BackgroundFit = products["background"]
        cleaned, subtracted = self._derive(frame, cosmic, background)
        return Reduction(
            recipe=recipe,
            frame=frame,
            geometry=products["locate"],
            cosmic=cosmic,
            cleaned=cleaned,
            background=background,
            subtracted=subtracted,
            spectrum=products["extract"],
            records=records,
            registry=self.registry,
        )

    def _step(self, step: str, method: Method, params: dict, source: Any, products: dict, where: str) -> Any:
        if step == "read":
            # The budget is checked before a step allocates anything frame-sized (the built-in reader
            # checks it from the header, before reading the data).
            with limited(self.memory_limit) if self.memory_limit is not None else nullcontext():
                if isinstance(source, Frame):
                    frame = source
                else:
                    frame = self._call(method, step, where, Path(source), expect=Frame, **params)
                check_frame(frame.shape, where)
            return frame
        frame: Frame = products["read"]
        if step == "locate":
            geometry = self._call(method, step, where, frame, expect=Geometry, **params)
            problems = geometry.problems(frame.shape)
            if problems:
                raise InputError(
                    f"locate method {method.name!r} gave an unusable geometry: {problems[0]}",
                    path=where,
                )
            return geometry
        geometry: Geometry = products["locate"]
        if step == "cosmic":
            result = self._call(method, step, where, frame, geometry, expect=CosmicResult, **params)
            _check_shape(method, step, where, "cleaned", result.cleaned, frame.shape, kinds="fiu")
            _check_shape(method, step, where, "mask", result.mask, frame.shape, kinds="b")
            _check_finite(method, step, where, "cleaned", result.cleaned, np.isfinite(frame.sci))
            return result
        cleaned, _ = self._derive(frame, products["cosmic"], None)
        if step == "background":
            fit = self._call(method, step, where, cleaned, geometry, expect=BackgroundFit, **params)
            _check_shape(method, step, where, "model", fit.model, frame.shape)
            _check_finite(method, step, where, "model", fit.model, np.isfinite(cleaned.sci))
            # basis and covariance are used by the extraction; check them here, against their maker.
            nrows, ncols = frame.shape
            if fit.basis is not None:
                k = getattr(fit.basis, "shape", (0, 0))[-1]
                _check_shape(method, step, where, "basis", fit.basis, (nrows, k))
                if fit.covariance is not None:
                    _check_shape(method, step, where, "covariance", fit.covariance, (ncols, k, k))
            if fit.used is not None:
                _check_shape(method, step, where, "used", fit.used, frame.shape, kinds="b")
            return fit
        _, subtracted = self._derive(frame, products["cosmic"], products["background"])
        spectrum = self._call(
            method,
            step,
            where,
            subtracted,
            geometry,
            products["background"],
            expect=Spectrum,
            **params,
        )
        for name in ("flux", "uncertainty", "wavelength"):
            _check_shape(method, step, where, name, getattr(spectrum, name), (frame.shape[1],))
        _check_shape(method, step, where, "mask", spectrum.mask, (frame.shape[1],), kinds="b")
        return spectrum

    @staticmethod
    def _call(
        method: Method,
        step: str,
        where: str,
        *args: Any,
        expect: type | None = None,
        passthrough: type[BaseException] | tuple = (),
        **params: Any,
    ) -> Any:
        try:
            result = method.func(*args, **params)
        except passthrough:
            raise
        except LongslitError as exc:
            if exc.path is None:
                exc.path = where
            raise
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not end the program
            raise StepError(step, method.name, method.package or "?", _reason(exc), path=where) from exc
        if expect is not None and not isinstance(result, expect):
            raise StepError(
                step,
                method.name,
                method.package or "?",
                f"returned {type(result).__name__}, expected {expect.__name__}",
                path=where,
            )
        return result


#: The step whose product each step takes (besides the geometry).
_UPSTREAM = {"locate": "read", "cosmic": "read", "background": "cosmic", "extract": "background"}


def _geometry_key(geometry: Geometry, uses: tuple[str, ...] | None) -> tuple:
    """The values of the geometry parts ``uses`` (None: all of them), as comparable bytes."""

    def value(part: Any) -> Any:
        if isinstance(part, np.ndarray):
            return part.tobytes()
        if isinstance(part, Band):
            return (part.lower.tobytes(), part.upper.tobytes())
        return tuple(value(p) for p in part)

    every = ("trace", "aperture", "background", "protected")
    names = uses if uses is not None and set(uses) <= set(every) else every  # unknown names: all
    return tuple((name, value(getattr(geometry, name))) for name in names)


def _derived(frame: Frame, cosmic: CosmicResult, background: BackgroundFit | None):
    """The cleaned frame and (given a background) the subtracted frame."""
    cleaned = frame.with_sci(cosmic.cleaned)
    if background is None:
        return cleaned, None
    return cleaned, frame.with_sci(cleaned.sci - background.model)


def _check_shape(
    method: Method, step: str, where: str, name: str, array: Any, shape: tuple, kinds: str = "fbiu"
) -> None:
    """A method's result array must have the shape the next steps need and a dtype of ``kinds``."""
    if not isinstance(array, np.ndarray) or array.shape != shape:
        got = getattr(array, "shape", type(array).__name__)
        raise StepError(
            step,
            method.name,
            method.package or "?",
            f"returned {name} of shape {got}, expected {shape}",
            path=where,
        )
    if array.dtype.kind not in kinds:
        expected = "booleans" if kinds == "b" else "numbers"
        raise StepError(
            step,
            method.name,
            method.package or "?",
            f"returned {name} of dtype {array.dtype}, expected {expected}",
            path=where,
        )


def _check_finite(method: Method, step: str, where: str, name: str, array: Any, finite: np.ndarray) -> None:
    """NaN or inf where the input was finite would silently spoil the spectrum: name the method."""
    bad = int((finite & ~np.isfinite(array)).sum())
    if bad:
        raise StepError(
            step,
            method.name,
            method.package or "?",
            f"returned {name} with {bad} non-finite values where its input was finite",
            path=where,
        )


def _source_key(source: Any) -> tuple:
    if isinstance(source, Frame):
        return ("frame", id(source))
    path = Path(source)
    try:
        stat = path.stat()
        return ("file", str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return ("file", str(path))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
