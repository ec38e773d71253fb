"""The hooks a longslit plugin implements: one per step kind.

Each hook takes no arguments and returns an iterable of :class:`~longslit.plugins.records.Method`
records, the methods the plugin offers for that step kind. Built-in methods are registered through
these same hooks (see ``longslit.steps``). A plugin is any module or object with ``@hookimpl``
functions, found through the ``longslit`` entry-point group::

    # pyproject.toml of a plugin package
    [project.entry-points.longslit]
    mycosmic = "mycosmic.plugin"

    # mycosmic/plugin.py
    from longslit import Method, Param, CosmicResult, hookimpl

    def clip(frame, geometry, *, threshold):
        ...
        return CosmicResult(cleaned=cleaned_sci, mask=hits)

    @hookimpl
    def longslit_cosmic_methods():
        return [Method("cosmic", "clip", "Sigma clip against the column median.", clip,
                       (Param("threshold", "float", 5.0, "Clip level.", minimum=0, unit="sigma"),))]

What ``func`` receives and returns, per step kind (``**params`` are the declared parameters, already
validated):

- read: ``func(path: pathlib.Path, **params) -> Frame``
- calibrate: ``func(frame: Frame, **params) -> Calibration`` (its ``frame`` is what later steps take)
- locate: ``func(frame: Frame, **params) -> Geometry``
- wavelength: ``func(frame: Frame, geometry: Geometry, **params) -> WavelengthCalibration``
- cosmic: ``func(frame: Frame, geometry: Geometry, **params) -> CosmicResult``
- background: ``func(frame: Frame, geometry: Geometry, **params) -> BackgroundFit``
- extract: ``func(frame: Frame, geometry: Geometry, background: BackgroundFit, **params) -> Spectrum``
  where ``frame`` is already background-subtracted and ``background`` is the fit that was subtracted
  (so its uncertainty can be propagated).
- flux: ``func(spectrum: Spectrum, frame: Frame, reducer, **params) -> Spectrum``: the extracted
  spectrum (counts) becomes a calibrated one; ``reducer(path, before="flux")`` reduces another file (a
  standard star) with the same recipe through the kinds before flux and returns its ``Reduction``.
- write: ``func(reduction: Reduction, path: pathlib.Path, **params) -> None``; ``path`` is a temporary
  file that longslit renames into place only when ``func`` returns, so a failed write leaves nothing.

Methods must not modify their inputs; the pipeline keeps every product for the UI and the writer.
``docs/plugins.md`` is the guide: every hook with a working example, parameters, testing, publishing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

from .records import Method

if TYPE_CHECKING:
    from ..stepkinds import StepKind

hookspec = pluggy.HookspecMarker("longslit")
hookimpl = pluggy.HookimplMarker("longslit")


@hookspec
def longslit_read_methods() -> Iterable[Method]:
    """Return the methods this plugin offers to read a file into a ``Frame``.

    Example: an instrument plugin reading its own raw format::

        @hookimpl
        def longslit_read_methods():
            return [Method("read", "myinstrument", "Read MyInstrument raw files.", read_raw)]
    """


@hookspec
def longslit_calibrate_methods() -> Iterable[Method]:
    """Return the methods that calibrate the frame read: overscan, trim, bias, dark, flat.

    A method takes the ``Frame`` the reader made and returns a ``Calibration`` whose ``frame`` the
    later steps take (in electrons, with its variance and mask); ``paths`` parameters name the
    calibration frames. Example::

        @hookimpl
        def longslit_calibrate_methods():
            return [Method("calibrate", "mybias", "Subtract a constant.", subtract,
                           (Param("level", "float", 0.0, "Bias level.", unit="ADU"),))]
    """


@hookspec
def longslit_locate_methods() -> Iterable[Method]:
    """Return the methods that find the source: trace, aperture, background and protected regions.

    Example::

        @hookimpl
        def longslit_locate_methods():
            return [Method("locate", "brightest", "Aperture around the brightest row.", brightest,
                           (Param("half_width", "int", 5, "Rows each side.", minimum=1),))]
    """


@hookspec
def longslit_wavelength_methods() -> Iterable[Method]:
    """Return the methods that give each column its wavelength (after ``locate``).

    A method takes the ``Frame`` and the ``Geometry`` and returns a ``WavelengthCalibration`` whose
    ``frame`` (the same pixels, new ``wavelength``) the later steps take. Example::

        @hookimpl
        def longslit_wavelength_methods():
            return [Method("wavelength", "linear", "A linear solution.", linear,
                           (Param("start", "float", 4000.0, "First column.", unit="Angstrom"),))]
    """


@hookspec
def longslit_cosmic_methods() -> Iterable[Method]:
    """Return the methods that find and repair cosmic-ray hits.

    Example: see the module docstring (``clip``).
    """


@hookspec
def longslit_background_methods() -> Iterable[Method]:
    """Return the methods that model the sky/background under the source.

    Example::

        @hookimpl
        def longslit_background_methods():
            return [Method("background", "median", "Column median of the background rows.", sky)]
    """


@hookspec
def longslit_extract_methods() -> Iterable[Method]:
    """Return the methods that turn the background-subtracted frame into a 1D spectrum.

    Example::

        @hookimpl
        def longslit_extract_methods():
            return [Method("extract", "peak", "Flux of the trace's central row only.", peak_row)]
    """


@hookspec
def longslit_flux_methods() -> Iterable[Method]:
    """Return the methods that calibrate the extracted spectrum's flux.

    Example: a fixed conversion factor (a photometric zero point)::

        @declare(Param("factor", "float", 1.0, "erg/s/cm2/Angstrom per count/s/Angstrom.", minimum=0))
        def zero_point(spectrum, frame, reducer, *, factor):
            scale = factor / frame.header["EXPTIME"] / np.abs(np.gradient(spectrum.wavelength))
            return dataclasses.replace(spectrum, flux=spectrum.flux * scale,
                                       uncertainty=spectrum.uncertainty * scale,
                                       flux_unit="erg / (Angstrom s cm2)")

        @hookimpl
        def longslit_flux_methods():
            return [Method("flux", "zeropoint", "A fixed conversion factor.", zero_point)]
    """


@hookspec
def longslit_write_methods() -> Iterable[Method]:
    """Return the methods that write a reduction to a file (the output formats).

    Example::

        @hookimpl
        def longslit_write_methods():
            return [Method("write", "csv", "Plain CSV, no metadata.", write_csv)]
    """


@hookspec
def longslit_step_kinds() -> Iterable[StepKind]:
    """Return the step kinds this plugin adds to the pipeline (most plugins add none).

    A kind is a :class:`~longslit.stepkinds.StepKind` record naming its inputs (products of earlier
    kinds), the product it provides, its default method, the kind it runs after, and in ``spec`` the
    module or class holding its own ``@hookspec`` (``longslit_<name>_methods``). The kind then appears
    in recipes, ``--set``, ``longslit steps`` and the terminal UI like a built-in one::

        class ScaleSpec:
            @hookspec
            def longslit_scale_methods(self): ...

        @hookimpl
        def longslit_step_kinds():
            return [StepKind("scale", "Scale", "Scale the spectrum.", inputs=("spectrum",),
                             provides="spectrum", product=Spectrum, default_method="times",
                             after="extract", spec=ScaleSpec)]
    """


#: The hook of each built-in step kind, named from the hookspecs above (the step-kind table's
#: ``StepKind.hook``; ``tests/test_step_kinds.py`` checks that the two agree).
HOOK_NAMES = {
    name.removeprefix("longslit_").removesuffix("_methods"): name
    for name in list(globals())
    if name.startswith("longslit_") and name.endswith("_methods")
}
