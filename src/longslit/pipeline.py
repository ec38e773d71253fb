"""Run a recipe on a frame, step by step, keeping every product.

:class:`Pipeline` runs the step-kind table (``longslit.stepkinds``) as a loop and caches each step's
product under a key made of its own configuration and the keys of its inputs, so changing one step's
parameters reruns that step and the ones that depend on it only (the terminal UI relies on this).
Methods are called through :func:`~longslit.stepkinds.call_method`, which turns an unexpected exception
into a :class:`StepError` naming the step, the method and its package; each kind's check then makes
sure that what a method returned has the type and shape the next steps need.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, PluginError
from .frame import Frame
from .geometry import Geometry
from .limits import limited
from .numerics.threads import single_threaded_blas
from .plugins.manager import Registry, get_registry
from .plugins.records import Method
from .products import BackgroundFit, CosmicResult, Spectrum
from .recipe import Recipe
from .stepkinds import Check, StepKind, call_method


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

    Every product is in :attr:`products` under the name its step kind provides (``frame``,
    ``geometry``, ``cosmic``, ``cleaned``, ``background``, ``subtracted``, ``spectrum``, and those of
    plugins' kinds), and is also an attribute: ``reduction.spectrum``.

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
        The 1D spectrum (the last step that provides one: extraction, or a later calibration).
    """

    recipe: Recipe
    products: dict[str, Any]
    records: list[StepRecord] = field(default_factory=list)
    registry: Registry | None = None
    #: What the steps found suspicious in results they could still use, one sentence each, with the
    #: step's name first ("locate: the trace scatters ..."); ``--strict`` fails a reduction that has any.
    warnings: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not attributes: the products, by name.
        products = self.__dict__.get("products")
        if products is not None and name in products:
            return products[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute or product {name!r}")

    # The built-in products, typed (``__getattr__`` serves these too; these say what they are).
    @property
    def frame(self) -> Frame:
        return self.products["frame"]

    @property
    def geometry(self) -> Geometry:
        return self.products["geometry"]

    @property
    def cosmic(self) -> CosmicResult:
        return self.products["cosmic"]

    @property
    def cleaned(self) -> Frame:
        return self.products["cleaned"]

    @property
    def background(self) -> BackgroundFit:
        return self.products["background"]

    @property
    def subtracted(self) -> Frame:
        return self.products["subtracted"]

    @property
    def spectrum(self) -> Spectrum:
        return self.products["spectrum"]

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

    def for_aperture(self, name: str) -> Reduction:
        """This reduction with the spectrum of aperture ``name`` alone (to write one file per aperture).

        Raises
        ------
        InputError
            If no aperture has that name.
        """
        for spectrum in self.spectrum.each():
            if spectrum.aperture == name:
                from dataclasses import replace

                products = {**self.products, "spectrum": replace(spectrum, apertures=())}
                return Reduction(self.recipe, products, self.records, self.registry, self.warnings)
        names = ", ".join(str(s.aperture) for s in self.spectrum.each())
        raise InputError(f"there is no aperture {name!r}; the apertures are {names}")

    def write_masters(self, folder: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
        """Write the master calibration frames the calibrate step used to ``folder``, as FITS.

        One file per master, ``master_<kind>_<key>.fits`` (the first 12 characters of its key: the
        content of its frames and the parameters), with SCI, VAR, MASK and its provenance. Returns the
        paths by kind; {} when no masters were used.
        """
        from .calibration import write_master

        calibration = self.products.get("calibration")
        written = {}
        for kind, master in (getattr(calibration, "masters", None) or {}).items():
            path = Path(folder) / f"master_{kind}_{master.key[:12]}.fits"
            written[kind] = write_master(master, path, overwrite=overwrite)
        return written

    def write_wavelength_solution(self, folder: str | Path, *, overwrite: bool = False) -> Path | None:
        """Write the arc solution of the wavelength step (method ``arc``) to ``folder`` as FITS.

        The file is ``arc_solution_<key>.fits`` (the first 12 characters of the key of its arcs' content
        and parameters); ``wavelength.method = solution`` reads it. Returns None when no arcs were solved.
        """
        made = self.products.get("wavelength")
        if getattr(made, "method", None) != "arc" or made.solution is None:
            return None
        from .steps.wavelength import write_solution_of

        key = made.solution.meta.get("provenance", {}).get("cache_key", "")[:12]
        return write_solution_of(made, Path(folder) / f"arc_solution_{key}.fits", overwrite=overwrite)

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
        config = self.recipe.config("write")
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
            call_method(method, self, temporary, where=self.frame.source, passthrough=OSError, **resolved)

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
        self._cache: dict[str, tuple[Any, Any, StepRecord, list[str]]] = {}
        #: Steps actually computed (not taken from the cache) by the last run.
        self.computed: list[str] = []
        #: Derived views (the cleaned and subtracted frames), by the key of what they derive from: a
        #: frame-sized subtraction that later steps, the Reduction and the UI would otherwise each redo.
        self._views: dict[str, tuple[Any, dict[str, Any]]] = {}
        #: Pipelines of other files reduced with the same recipe (standard stars), by path.
        self._children: dict[str, Pipeline] = {}

    def run(
        self,
        source: str | Path | Frame,
        recipe: Recipe | str | Path | None = None,
        *,
        until: str | None = None,
    ) -> Reduction:
        """Reduce ``source`` (a path or a Frame) with ``recipe`` (default: the default preset).

        Runs the registry's step kinds in order: each gathers its inputs from the products so far,
        calls the recipe's method, checks what it returned and keeps it, unless its key (its method,
        parameters and what its inputs depend on) is the one of the last run, when the cached product
        is used. ``until`` names the last kind to run (``"calibrate"``: the masters, nothing after).
        """
        recipe = Recipe.coerce(recipe)
        if until is not None and until not in [kind.name for kind in self.registry.kinds]:
            raise InputError(f"until = {until!r} is no step kind")
        if not recipe.resolved:
            recipe = recipe.resolve(self.registry)
        where = source.source if isinstance(source, Frame) else str(source)
        self.computed = []
        records: list[StepRecord] = []
        warnings: list[str] = []
        #: product name -> (value, the key later steps compare, the kind that made it)
        made: dict[str, tuple[Any, Any, StepKind | None]] = {"source": (source, _source_key(source), None)}
        # Another file reduced with this recipe (the flux step's standard star): its key is the recipe's
        # digest (every step but write), so a step reading it reruns when any step changes (never
        # stale; the standard's own reduction is cached by its sub-pipeline, the sensitivity by content).
        reducer = Reducer(self, recipe)
        made["reducer"] = (reducer, ("reducer", recipe.digest()), None)
        for kind in self.registry.kinds:
            if not kind.runs:
                continue
            config = recipe.config(kind.name)
            method = self.registry.method(kind.name, config.method, source=recipe.source)
            # A step's key holds what its result depends on: its method and parameters and the keys
            # of its inputs; an input whose kind has a fingerprint (the geometry) counts by the parts
            # the method reads, not by the parameters that made it. Moving the aperture then reruns
            # only the extraction.
            key = (kind.name, config.method, _freeze(config.params))
            for name in kind.inputs:
                if name not in made:
                    raise PluginError(
                        f"step kind {kind.name!r} takes {name!r}, which no step before it provides "
                        f"(there are: {', '.join(made)}); its plugin must place it after the step that does"
                    )
                value, input_key, maker = made[name]
                if maker is not None and maker.fingerprint is not None:
                    input_key = maker.fingerprint(value, method.uses)
                key = (*key, (name, input_key))
            cached = self._cache.get(kind.name)
            if cached is not None and cached[0] == key:
                product, record, found = cached[1], cached[2], cached[3]
            else:
                started = time.perf_counter()
                product, found = self._step(kind, method, config.params, made, where)
                record = StepRecord(
                    kind.name,
                    method.name,
                    method.package,
                    method.version,
                    dict(config.params),
                    time.perf_counter() - started,
                )
                self._cache[kind.name] = (key, product, record, found)
                self.computed.append(kind.name)
            records.append(record)
            warnings += [f"{kind.name}: {text}" for text in found]
            if kind.provides is not None:
                made[kind.provides] = (product, key, kind)
            if kind.derive is not None:
                for name, value in self._derive(kind, product, key, made).items():
                    made[name] = (value, key, None)
            if kind.name == until:
                break
        return Reduction(
            recipe=recipe,
            products={name: value for name, (value, _, _) in made.items() if name not in _INTERNAL},
            records=records,
            registry=self.registry,
            warnings=warnings,
        )

    def _step(
        self, kind: StepKind, method: Method, params: dict, made: dict, where: str
    ) -> tuple[Any, list[str]]:
        products = {name: value for name, (value, _, _) in made.items()}
        source = products["source"]
        reads = "source" in kind.inputs
        # The budget is checked before a step allocates anything frame-sized (the built-in reader
        # checks it from the header, before reading the data; the read kind's check, of every frame).
        budget = limited(self.memory_limit) if reads and self.memory_limit is not None else nullcontext()
        # One BLAS thread in the steps: their products are small, and more threads fight for the cores.
        with budget, single_threaded_blas():
            if reads and isinstance(source, Frame):
                result = source  # a frame read already: the read step has nothing to do
            else:
                args = [Path(source) if name == "source" else products[name] for name in kind.inputs]
                result = call_method(
                    method, *args, step=kind.name, where=where, expect=kind.product, **params
                )
            check = Check(kind.name, method, where, products, params)
            if kind.check is not None:
                kind.check(result, check)
            found = list(kind.warn(result, check)) if kind.warn is not None else []
        return result, found

    def _derive(self, kind: StepKind, product: Any, key: Any, made: dict) -> dict[str, Any]:
        remembered = self._views.get(kind.name)
        if remembered is not None and remembered[0] == key:
            return remembered[1]
        views = kind.derive(product, {name: value for name, (value, _, _) in made.items()})
        self._views[kind.name] = (key, views)
        return views


#: Inputs the pipeline offers that are not products of a reduction.
_INTERNAL = ("source", "reducer")


class Reducer:
    """Reduces another file with a run's recipe, up to a given step: what a flux step's standard needs.

    ``reducer(path, before="flux")`` returns the other file's :class:`Reduction`, made by the kinds
    before ``flux``. Each file keeps a
    pipeline of its own in the parent pipeline, so rerunning (the terminal UI changing one step) reruns
    only the standard's steps that changed.
    """

    def __init__(self, pipeline: Pipeline, recipe: Recipe) -> None:
        self._pipeline = pipeline
        self.recipe = recipe

    def __call__(self, source: str | Path, *, before: str) -> Reduction:
        path = Path(source)
        key = str(path.resolve()) if path.exists() else str(path)
        children = self._pipeline._children
        child = children.get(key)
        if child is None:
            parent = self._pipeline
            child = children[key] = Pipeline(parent.registry, memory_limit=parent.memory_limit)
        return child.run(path, self.recipe, until=self._kinds_before(before)[-1])

    def _kinds_before(self, before: str) -> list[str]:
        names = [kind.name for kind in self._pipeline.registry.kinds if kind.runs]
        if before not in names or names.index(before) == 0:
            raise InputError(f"reducer: {before!r} is no step kind with kinds before it")
        return names[: names.index(before)]

    def digest(self, before: str) -> str:
        """A hash of the recipe's steps before ``before`` (what the other file's reduction depends on)."""
        import hashlib
        import json

        data = {name: self.recipe.to_dict().get(name) for name in self._kinds_before(before)}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
