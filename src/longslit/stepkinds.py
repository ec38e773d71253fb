"""The table of step kinds: what each kind's methods receive, return and depend on, in pipeline order.

A step kind is one :class:`StepKind` record. The pipeline runs the table as a loop (gather the inputs
from the products so far, call the recipe's method, check what it returned, keep it); the recipe, the
plugin registry, the command line and the terminal UI read their names, titles, order and default
methods from it. Adding a kind is one record here and one hookspec in ``plugins/hookspecs.py`` (plus
its built-in methods in a module of ``steps/``, named by the record); a plugin can bring a kind of its
own through the ``longslit_step_kinds`` hook, with its hookspec in :attr:`StepKind.spec`.

Products are named. A kind's :attr:`StepKind.inputs` are names of products made by earlier kinds (or
``source``, the file being reduced); its result is stored under :attr:`StepKind.provides` and may add
derived views (:attr:`StepKind.derive`): the cosmic step's result gives the ``cleaned`` frame, the
background's the ``subtracted`` one. A later kind that provides a name an earlier one did (a flux
calibration providing ``spectrum``, say) supersedes it for the kinds after it and for the writer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from .errors import FrameError, InputError, LongslitError, StepError
from .frame import Frame
from .geometry import Aperture, Band, Geometry
from .limits import check_frame
from .plugins.records import Method
from .products import BackgroundFit, Calibration, CosmicResult, Spectrum, WavelengthCalibration


@dataclass(frozen=True)
class Check:
    """What a post-condition check knows: the step, the method, the file, and the products so far."""

    step: str
    method: Method
    where: str
    products: Mapping[str, Any]
    #: The method's parameters, resolved (a kind's check may honour one it documents).
    params: Mapping[str, Any] = field(default_factory=dict)

    def fail(self, reason: str) -> NoReturn:
        """Raise the :class:`StepError` that names the step, the method and its package."""
        raise StepError(self.step, self.method.name, self.method.package or "?", reason, path=self.where)

    def shape(self, name: str, array: Any, shape: tuple, kinds: str = "fbiu") -> None:
        """A result array must have the shape the next steps need and a dtype of ``kinds``."""
        if not isinstance(array, np.ndarray) or array.shape != shape:
            got = getattr(array, "shape", type(array).__name__)
            self.fail(f"returned {name} of shape {got}, expected {shape}")
        if array.dtype.kind not in kinds:
            expected = "booleans" if kinds == "b" else "numbers"
            self.fail(f"returned {name} of dtype {array.dtype}, expected {expected}")

    def finite(self, name: str, array: np.ndarray, finite: np.ndarray) -> None:
        """NaN or inf where the input was finite would silently spoil the spectrum: name the method."""
        now = np.isfinite(array)
        if now.all():  # the usual case: one pass, no second full-frame temporary
            return
        bad = int((finite & ~now).sum())
        if bad:
            self.fail(f"returned {name} with {bad} non-finite values where its input was finite")


@dataclass(frozen=True)
class StepKind:
    """One kind of step: its place in the pipeline and the contract of its methods.

    Attributes
    ----------
    name : str
        The recipe's table name and ``--set NAME.param``; also the hook's middle word.
    title : str
        Shown by the faces (a TUI screen's title, ``longslit steps``).
    summary : str
        One line saying what the step does.
    inputs : tuple of str
        Product names the method receives, positionally, in this order (``source``: the file).
    provides : str or None
        The name its product is stored under (None: it makes no product, as ``write``).
    product : type or None
        The type a method must return (checked); None: anything.
    default_method : str
        The method a recipe that leaves the step out uses.
    check : callable, optional
        ``check(result, Check)``: the post-condition of a method's result, raising through
        ``Check.fail`` (a ``StepError``) or an ``InputError`` for a result that does not fit the frame.
    warn : callable, optional
        ``warn(result, Check) -> list of str``: what is suspicious about a result that is usable (a
        trace that scatters, a cosmic step that replaced much of the frame, a spectrum with no
        signal); each sentence reaches the user (stderr, ``--json``, the manifest, the TUI), and
        ``--strict`` turns them into a failure.
    derive : callable, optional
        ``derive(result, products) -> {name: value}``: views of the result later steps take as inputs.
    fingerprint : callable, optional
        ``fingerprint(result, uses) -> tuple``: what later steps' caching compares instead of this
        step's configuration (the geometry: moving the aperture reruns only what reads it). ``uses`` is
        the consuming method's :attr:`Method.uses`.
    runs : bool
        Whether :meth:`Pipeline.run` runs it (``write`` runs on request).
    module : str, optional
        The built-in module registering its methods (``longslit.steps.NAME``), if any.
    after : str, optional
        For a plugin's kind: the kind it runs after (default: the last computing kind).
    spec : object, optional
        For a plugin's kind: the module or class holding its ``@hookspec``.
    """

    name: str
    title: str
    summary: str
    inputs: tuple[str, ...]
    provides: str | None
    product: type | None
    default_method: str
    check: Callable[[Any, Check], None] | None = None
    warn: Callable[[Any, Check], list[str]] | None = None
    derive: Callable[[Any, Mapping[str, Any]], dict[str, Any]] | None = None
    fingerprint: Callable[[Any, tuple[str, ...] | None], tuple] | None = None
    runs: bool = True
    module: str | None = None
    after: str | None = None
    spec: Any = field(default=None, compare=False)

    @property
    def hook(self) -> str:
        """The hook that returns this kind's methods."""
        return f"longslit_{self.name}_methods"


# -- the built-in kinds' checks and views -----------------------------------------------------------
#: Science values beyond this magnitude cannot be reduced in float64: their squares (variances, sums of
#: squares in the fits) overflow at about 1.3e154.
MAX_MAGNITUDE = 1e150


def _check_frame(frame: Frame, check: Check) -> None:
    check_frame(frame.shape, check.where)
    sci = frame.sci
    largest = float(np.max(np.abs(sci), where=np.isfinite(sci), initial=0.0))
    if largest > MAX_MAGNITUDE:
        exponent = int(np.floor(np.log10(largest)))
        raise FrameError(
            f"the science values reach {largest:.1e} in magnitude, beyond what the reduction's "
            "arithmetic holds (squares overflow past about 1e154); scale the data down, e.g. divide by "
            f"1e{exponent - 2}, and reduce again",
            path=check.where,
        )
    if check.params.get("calibration_check", True):
        from .checks import looks_like_calibration

        looks = looks_like_calibration(frame, bias=False)  # arcs and flats: a faint target can look bias-like
        if looks is not None:
            raise FrameError(
                f"{looks} (to extract it as science anyway: --set read.calibration_check=false)",
                path=check.where,
            )


def _check_calibration(result: Calibration, check: Check) -> None:
    frame = result.frame
    if not isinstance(frame, Frame):
        check.fail(f"returned a Calibration whose frame is {type(frame).__name__}, expected Frame")
    check.shape("mask", frame.mask, frame.shape, kinds="b")
    check.shape("wavelength", np.asarray(frame.wavelength), (frame.shape[1],))
    if frame.variance is not None:
        check.shape("variance", frame.variance, frame.shape)
        negative = frame.variance < 0  # (no copy of the unmasked pixels: rarely any to look at)
        if negative.any() and (negative & ~frame.mask).any():
            check.fail("returned negative variances in unmasked pixels")
    finite = np.isfinite(frame.sci)
    if not finite.all() and (~finite & ~frame.mask).any():
        check.fail("returned non-finite values in unmasked pixels")


def _its_frame(result: Any, products: Mapping[str, Any]) -> dict[str, Any]:
    """The frame a calibration made (CCD, wavelength): the later steps take it as ``frame``."""
    return {"frame": result.frame}


def _check_wavelength(result: WavelengthCalibration, check: Check) -> None:
    frame = result.frame
    if not isinstance(frame, Frame):
        check.fail(f"returned a WavelengthCalibration whose frame is {type(frame).__name__}, expected Frame")
    if frame.shape != check.products["frame"].shape:
        check.fail(f"returned a frame of shape {frame.shape}, expected {check.products['frame'].shape}")
    wavelength = np.asarray(frame.wavelength)
    check.shape("wavelength", wavelength, (frame.shape[1],))
    if not np.isfinite(wavelength).all():
        check.fail("returned non-finite wavelengths")


#: An arc solution whose lines scatter by more than this many pixels is suspect.
WAVELENGTH_RMS_PIXEL = 0.1


def _warn_wavelength(result: WavelengthCalibration, check: Check) -> list[str]:
    solution = result.solution
    rms = getattr(solution, "rms_pixel", None)
    if isinstance(rms, float) and rms > WAVELENGTH_RMS_PIXEL:
        return [
            f"the arc lines scatter by {rms:.3f} pixels about the solution (more than "
            f"{WAVELENGTH_RMS_PIXEL:g}): check the lamps, the order or the lines used"
        ]
    return []


def _check_geometry(geometry: Geometry, check: Check) -> None:
    problems = geometry.problems(check.products["frame"].shape)
    if problems:
        raise InputError(
            f"locate method {check.method.name!r} gave an unusable geometry: {problems[0]}", path=check.where
        )


def _check_cosmic(result: CosmicResult, check: Check) -> None:
    frame = check.products["frame"]
    check.shape("cleaned", result.cleaned, frame.shape, kinds="fiu")
    check.shape("mask", result.mask, frame.shape, kinds="b")
    check.finite("cleaned", result.cleaned, np.isfinite(frame.sci))


def _check_background(fit: BackgroundFit, check: Check) -> None:
    cleaned = check.products["cleaned"]
    check.shape("model", fit.model, cleaned.shape)
    check.finite("model", fit.model, np.isfinite(cleaned.sci))
    # basis and covariance are used by the extraction; check them here, against their maker.
    nrows, ncols = cleaned.shape
    if fit.basis is not None:
        k = getattr(fit.basis, "shape", (0, 0))[-1]
        check.shape("basis", fit.basis, (nrows, k))
        if fit.factor is not None:
            check.shape("factor", fit.factor, cleaned.shape)
            k += int(fit.factor_terms)
        if fit.covariance is not None:
            check.shape("covariance", fit.covariance, (ncols, k, k))
    if fit.used is not None:
        check.shape("used", fit.used, cleaned.shape, kinds="b")


def _check_spectrum(spectrum: Spectrum, check: Check) -> None:
    ncols = check.products["frame"].shape[1]
    for each in spectrum.each():
        for name in ("flux", "uncertainty", "wavelength"):
            check.shape(name, getattr(each, name), (ncols,))
        check.shape("mask", each.mask, (ncols,), kinds="b")


#: A trace whose block centres scatter about the fit by more than this part of the FWHM is suspect.
TRACE_RMS_FWHM = 0.5
#: A cosmic-ray step that replaced more than this fraction of the frame's pixels is suspect (a long
#: exposure has a few percent of its pixels hit; the synthetic frames of the tests up to 7%)...
COSMIC_FRACTION = 0.10
#: ... and so is one that replaced this fraction of the rows of a column in more than a few columns:
#: cosmic rays fall at random, lines along the slit (sky, arc, extended emission) fill columns.
COSMIC_COLUMN_FRACTION = 0.25

#: A spectrum whose median S/N is below this carries little signal.
MIN_MEDIAN_SNR = 2.0


def _warn_geometry(geometry: Geometry, check: Check) -> list[str]:
    found = []
    nrows = check.products["frame"].shape[0]
    fwhm, rms = geometry.info.get("fwhm"), geometry.info.get("trace_rms")
    if isinstance(fwhm, float) and isinstance(rms, float) and fwhm > 0 and rms > TRACE_RMS_FWHM * fwhm:
        found.append(
            f"the trace scatters by {rms:.2f} rows about its fit, more than {TRACE_RMS_FWHM:g} of the "
            f"source's FWHM ({fwhm:.2f} rows): it may follow noise or jump between sources; check it "
            "on the Locate screen or give the rows (locate.method = rows)"
        )
    centres = np.asarray(geometry.info.get("block_centres", []), dtype=np.float64)
    if isinstance(fwhm, float) and centres.size > 2 and np.all(np.isfinite(centres)):
        jump = float(np.max(np.abs(np.diff(centres))))
        if jump > 3.0 * fwhm:
            found.append(
                f"the traced centres jump by {jump:.1f} rows between neighbouring blocks (FWHM "
                f"{fwhm:.2f}): there may be several sources or orders; check the trace"
            )
    trace = geometry.trace
    if trace.size and (trace.min() < 0 or trace.max() > nrows - 1):
        outside = int(((trace < 0) | (trace > nrows - 1)).sum())
        found.append(
            f"the trace leaves the frame in {outside} columns; the spectrum there is not of the source"
        )
    return found


def _warn_cosmic(result: CosmicResult, check: Check) -> list[str]:
    hits = result.mask
    if not hits.size:
        return []
    fraction = float(hits.mean())
    filled = int((hits.mean(axis=0) > COSMIC_COLUMN_FRACTION).sum())
    if filled > max(2, 0.01 * hits.shape[1]):
        return [
            f"the cosmic-ray step replaced over {100 * COSMIC_COLUMN_FRACTION:g}% of the rows in {filled} "
            "columns: cosmic rays do not line up along the slit, so it is cleaning lines (sky or arc lines, "
            "extended emission); raise cosmic.threshold, choose a method that keeps lines, or check the "
            "frame is a science exposure"
        ]
    if fraction > COSMIC_FRACTION:
        return [
            f"the cosmic-ray step replaced {100 * fraction:.1f}% of the pixels (more than "
            f"{100 * COSMIC_FRACTION:g}%): it is probably cleaning real features; raise cosmic.threshold "
            "or check the frame is a science exposure"
        ]
    return []


def _warn_spectrum(spectrum: Spectrum, check: Check) -> list[str]:
    snr = spectrum.median_snr()
    if snr is None:
        return []  # no uncertainty known: nothing to judge the signal by
    if snr < MIN_MEDIAN_SNR:
        return [
            f"the spectrum's median S/N is {snr:.2f}, below {MIN_MEDIAN_SNR:g}: there is little or no "
            "source in the aperture; check the aperture on the Locate screen"
        ]
    return []


def _warn_flux(spectrum: Spectrum, check: Check) -> list[str]:
    # The flux methods say what they had to assume (an airmass from the hour angle, a reference in the
    # other medium, columns outside the sensitivity's range) in the spectrum's info.
    return [str(text) for text in spectrum.info.get("flux_warnings", ())]


def _sensitivity(spectrum: Spectrum, products: Mapping[str, Any]) -> dict[str, Any]:
    return {"sensitivity": spectrum.info.get("sensitivity")}


def _cleaned(result: CosmicResult, products: Mapping[str, Any]) -> dict[str, Any]:
    return {"cleaned": products["frame"].with_sci(result.cleaned)}


def _spectra(spectrum: Spectrum, products: Mapping[str, Any]) -> dict[str, Any]:
    # Every aperture's spectrum, by name as a product: one for a one-aperture geometry.
    return {"spectra": spectrum.each()}


def _subtracted(fit: BackgroundFit, products: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = products["cleaned"]
    return {"subtracted": cleaned.with_sci(cleaned.sci - fit.model)}


#: The parts of a geometry a method can declare it reads (``Method.uses``).
GEOMETRY_PARTS = ("trace", "aperture", "background", "protected", "apertures")


def geometry_fingerprint(geometry: Geometry, uses: tuple[str, ...] | None) -> tuple:
    """The values of the geometry parts ``uses`` (None: all of them), as comparable bytes."""

    def value(part: Any) -> Any:
        if isinstance(part, np.ndarray):
            return part.tobytes()
        if isinstance(part, Band):
            return (part.lower.tobytes(), part.upper.tobytes())
        if isinstance(part, Aperture):
            return (part.name, value(part.trace), value(part.band))
        return tuple(value(p) for p in part)

    names = uses if uses is not None and set(uses) <= set(GEOMETRY_PARTS) else GEOMETRY_PARTS
    return tuple((name, value(getattr(geometry, name))) for name in names)


#: The built-in step kinds, in pipeline order.
BUILTIN_KINDS: tuple[StepKind, ...] = (
    StepKind(
        "read",
        "Frame",
        "Read a file into a Frame: science, variance, bad-pixel mask, header, wavelengths.",
        inputs=("source",),
        provides="frame",
        product=Frame,
        default_method="fits",
        check=_check_frame,
        module="longslit.steps.read",
    ),
    StepKind(
        "calibrate",
        "Calibrate",
        "CCD calibration: overscan and trim, master bias, dark and flat; the frame in electrons.",
        inputs=("frame",),
        provides="calibration",
        product=Calibration,
        default_method="ccd",
        check=_check_calibration,
        derive=_its_frame,
        module="longslit.steps.calibrate",
    ),
    StepKind(
        "locate",
        "Locate",
        "Find the source: trace, aperture, background and protected regions.",
        inputs=("frame",),
        provides="geometry",
        product=Geometry,
        default_method="rows",
        check=_check_geometry,
        warn=_warn_geometry,
        fingerprint=geometry_fingerprint,
        module="longslit.steps.locate",
    ),
    StepKind(
        "wavelength",
        "Wavelength",
        "Give each column its wavelength: from the header, or from arc lamp frames.",
        inputs=("frame", "geometry"),
        provides="wavelength",
        product=WavelengthCalibration,
        default_method="header",
        check=_check_wavelength,
        warn=_warn_wavelength,
        derive=_its_frame,
        module="longslit.steps.wavelength",
    ),
    StepKind(
        "cosmic",
        "Cosmic",
        "Find and repair cosmic-ray hits.",
        inputs=("frame", "geometry"),
        provides="cosmic",
        product=CosmicResult,
        default_method="median",
        check=_check_cosmic,
        warn=_warn_cosmic,
        derive=_cleaned,
        module="longslit.steps.cosmic",
    ),
    StepKind(
        "background",
        "Background",
        "Model the sky and background under the source.",
        inputs=("cleaned", "geometry"),
        provides="background",
        product=BackgroundFit,
        default_method="polynomial",
        check=_check_background,
        derive=_subtracted,
        module="longslit.steps.background",
    ),
    StepKind(
        "extract",
        "Extract",
        "Turn the background-subtracted frame into a 1D spectrum with uncertainties.",
        inputs=("subtracted", "geometry", "background"),
        provides="spectrum",
        product=Spectrum,
        default_method="boxcar",
        check=_check_spectrum,
        warn=_warn_spectrum,
        derive=_spectra,
        module="longslit.steps.extract",
    ),
    StepKind(
        "flux",
        "Flux",
        "Calibrate the spectrum's flux (erg/s/cm2/Angstrom): a standard star's sensitivity or the "
        "instrument's response.",
        # ``reducer`` reduces another file (the standard) with this recipe up to this step (the pipeline
        # provides it); a later kind that provides ``spectrum`` supersedes this one, as this one does
        # the extraction's.
        inputs=("spectrum", "frame", "reducer"),
        provides="spectrum",
        product=Spectrum,
        default_method="none",
        check=_check_spectrum,
        warn=_warn_flux,
        derive=_sensitivity,
        module="longslit.steps.flux",
    ),
    StepKind(
        "write",
        "Save",
        "Write a reduction to a file (the output formats).",
        inputs=("reduction", "path"),
        provides=None,
        product=None,
        default_method="fits",
        runs=False,
        module="longslit.steps.write",
    ),
)

_lock = threading.Lock()
_added: dict[str, StepKind] = {}


def add(kind: StepKind) -> None:
    """Add a plugin's step kind to the process-wide table (the registry does, when it loads the plugin).

    Adding the same record again does nothing; another record under a taken name is refused.
    """
    if not isinstance(kind, StepKind):
        raise TypeError(f"a step kind is a StepKind record, not {type(kind).__name__}")
    with _lock:
        taken = _builtin().get(kind.name) or _added.get(kind.name)
        if taken is not None and taken != kind:
            raise ValueError(f"the step kind name {kind.name!r} is taken")
        if kind.after is not None and kind.after not in _builtin() and kind.after not in _added:
            raise ValueError(f"step kind {kind.name!r} runs after {kind.after!r}, which is no step kind")
        _added[kind.name] = kind


def remove(name: str) -> None:
    """Take a plugin's kind out of the table again (tests)."""
    with _lock:
        _added.pop(name, None)


def _builtin() -> dict[str, StepKind]:
    return {kind.name: kind for kind in BUILTIN_KINDS}


def ordered(extra: Iterable[StepKind] = ()) -> tuple[StepKind, ...]:
    """The built-in kinds with ``extra`` ones placed after the kind each names (default: the last
    computing kind), in pipeline order."""
    kinds = list(BUILTIN_KINDS)
    for kind in extra:
        if any(k.name == kind.name for k in kinds):
            continue
        anchor = kind.after or [k for k in kinds if k.runs][-1].name
        index = next((i for i, k in enumerate(kinds) if k.name == anchor), len(kinds) - 1)
        # after the anchor and after any kinds already placed after it
        while index + 1 < len(kinds) and kinds[index + 1].after == anchor:
            index += 1
        kinds.insert(index + 1, kind)
    return tuple(kinds)


def kinds() -> tuple[StepKind, ...]:
    """Every step kind known in this process (built-in and plugins' so far), in pipeline order."""
    with _lock:
        extra = list(_added.values())
    return ordered(extra)


def names() -> tuple[str, ...]:
    """The names of :func:`kinds`."""
    return tuple(kind.name for kind in kinds())


def get(name: str) -> StepKind:
    """The kind called ``name`` (``KeyError`` if none)."""
    for kind in kinds():
        if kind.name == name:
            return kind
    raise KeyError(name)


def builtin_modules() -> tuple[str, ...]:
    """The modules that register the built-in methods, one per kind."""
    return tuple(kind.module for kind in BUILTIN_KINDS if kind.module)


# -- calling a method ------------------------------------------------------------------------------
def call_method(
    method: Method,
    *args: Any,
    step: str | None = None,
    where: str = "?",
    expect: type | None = None,
    passthrough: type[BaseException] | tuple = (),
    **params: Any,
) -> Any:
    """Call ``method.func(*args, **params)`` as the pipeline does, isolated (``longslit.isolation``).

    Any unexpected exception (and ``SystemExit``: a plugin calling ``sys.exit()`` must not end the
    program; a ``KeyboardInterrupt`` no Ctrl-C sent; in a child process, a crash, ``os._exit``), a
    call past the time limit and a cancelled call become a :class:`StepError` naming the step, the
    method and its package; a ``LongslitError`` passes with ``where`` as its path; a result that is
    not an ``expect`` is refused, and so is a :class:`Spectrum` with non-finite wavelengths, negative
    uncertainties or NaN flux left unmasked. Where the method runs (a child process for third-party
    methods, by default) and for how long is the :class:`~longslit.isolation.Policy` in force.

    Parameters
    ----------
    method : Method
        The method to call (``registry.method(step, name)``).
    *args
        The step kind's inputs, in order.
    step : str, optional
        The step's name for messages (default ``method.step``).
    where : str
        The file being reduced, for messages.
    expect : type, optional
        The type the result must have.
    passthrough : exception type(s)
        Exceptions to let through unchanged (the writer's ``OSError``: a full disk is the output's fault).
    **params
        The method's parameters, already resolved.
    """
    from . import isolation

    step = step or method.step
    sources = _sources(step, args)
    try:
        result = isolation.run(
            method.func,
            args,
            params,
            step=step,
            method=method.name,
            package=method.package,
            where=where,
            passthrough=passthrough,
        )
    except passthrough:
        raise
    except LongslitError as exc:
        if exc.path is None:
            exc.path = where
        raise
    except (Exception, SystemExit) as exc:
        raise StepError(step, method.name, method.package or "?", _reason(exc), path=where) from exc
    for path, before in sources:
        recent = len(before) > 5
        if recent:  # a writer may only have paused: wait until the file has been quiet RECENT_NS
            _settle(before)
        if _identity(path, content=recent) != before:
            raise FrameError(
                "changed while it was being read (another program writing it?); nothing was reduced: "
                "reduce it again once it is complete",
                path=where,
            )
    if expect is not None and not isinstance(result, expect):
        raise StepError(
            step,
            method.name,
            method.package or "?",
            f"returned {type(result).__name__}, expected {expect.__name__}",
            path=where,
        )
    if isinstance(result, Spectrum):
        problem = isolation.spectrum_problem(result)
        if problem is not None:
            raise StepError(step, method.name, method.package or "?", problem, path=where)
    return result


def _sources(step: str, args: tuple) -> list[tuple[Any, tuple]]:
    """The files a kind reads (its ``source`` inputs) with what identifies their content now."""
    try:
        inputs = get(step).inputs
    except KeyError:
        return []
    found = []
    for name, value in zip(inputs, args, strict=False):
        if name == "source" and isinstance(value, (str, os.PathLike)):
            identity = _identity(value)
            if identity is not None:
                found.append((value, identity))
    return found


#: A file modified this recently (ns) when its read began may be being written: the file system's
#: timestamps are coarse (a few ms), so a write within the same tick leaves them unchanged, and only the
#: content tells; and a writer that merely paused during the read leaves a file that is whole at rest
#: yet half of each version, so the read is accepted only once the file has stayed unchanged this long
#: after its last modification (found by test_a_file_rewritten_while_read_is_refused_or_one_whole_version:
#: 1 of 20 reads gave neither version when only the read itself was watched).
RECENT_NS = 100_000_000


def _settle(before: tuple) -> None:
    """Sleep until RECENT_NS has passed since the modification recorded in ``before``."""
    import time

    wait = max(before[3], before[4]) + RECENT_NS - time.time_ns()
    if wait > 0:
        time.sleep(wait / 1e9)


def _identity(path: Any, content: bool | None = None) -> tuple | None:
    """Inode, size, modification and change times: a file rewritten (in place or replaced) differs; for
    a file modified within :data:`RECENT_NS` (or when ``content``), its content's hash too."""
    import time

    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    if content is False or (
        content is None and time.time_ns() - max(info.st_mtime_ns, info.st_ctime_ns) > RECENT_NS
    ):
        return identity
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return (*identity, digest.hexdigest())


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
