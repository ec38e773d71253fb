"""Built-in wavelength methods: ``header`` (the wavelengths the reader found) and ``arc`` (arc lamps).

``arc`` reads the arc frames the recipe names, brings them to the science frame's pixels (the same
overscan and trim from their headers, or the reader's section, and the same orientation), takes the arc
spectrum along the science trace, finds and identifies its lines against the shipped lists of the
lamps named (no guess needed; ``longslit.numerics.arcs``), fits a clipped Chebyshev or Legendre
polynomial, and gives each column of the frame its wavelength. With ``two_d`` the lines are also
measured in bands along the slit (IRAF fitcoords): the wavelength then follows the trace across the
tilted lines, and the solution's tilt is in the product.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import FrameError, InputError
from ..frame import Frame
from ..geometry import Geometry
from ..paths import expand_paths
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare
from ..products import WavelengthCalibration


def wavelength_header(frame: Frame, geometry: Geometry) -> WavelengthCalibration:
    """The wavelengths the reader found (the header's WCS, or column numbers)."""
    return WavelengthCalibration(frame, method="header")


def _arc_pixels(path: str, frame: Frame, hdu: str) -> np.ndarray:
    """The arc frame at ``path`` on the science frame's pixels: overscan off, trimmed, turned."""
    from ..calibration import CCDParams, overscan_correct, read_raw
    from ..calibration.ccd import amplifiers

    try:
        raw = read_raw(path, int(hdu) if hdu.isdigit() else hdu) if hdu != "auto" else read_raw(path, 0)
    except FrameError:
        if hdu != "auto":
            raise
        raw = read_raw(path, 1)
    data = raw.data
    try:
        amps, _ = amplifiers(raw, CCDParams())
    except InputError:
        amps = []
    if frame.section is not None:  # the reader cut a section: cut the same one (FITS x1, x2, y1, y2)
        x1, x2, y1, y2 = frame.section
        y0 = min((a.data.y0 for a in amps), default=-1)
        box = (min((a.data.x0 for a in amps), default=-1) + 1, max((a.data.x1 for a in amps), default=0))
        box += (y0 + 1, max((a.data.y1 for a in amps), default=0))
        if any(a.overscan is not None for a in amps) and frame.section == box:  # the calibrate step's trim
            params = CCDParams(gain=1.0, read_noise=1.0)
            data = overscan_correct(raw, params).data  # the same overscan and trim as the science
        else:
            data = data[y1 - 1 : y2, x1 - 1 : x2]
    image = np.ascontiguousarray(data.T if frame.dispersion_axis != 1 else data)
    if image.shape != frame.shape:
        raise InputError(
            f"the arc {path} is {image.shape[1]} x {image.shape[0]} pixels on the science frame's axes, the "
            f"science frame {frame.shape[1]} x {frame.shape[0]}; give arcs taken with the same setup"
        )
    return image


def _lamp_lists(lamps: str, n_arcs: int, medium: str, line_list: list[str]):
    from ..numerics.linelists import load_lines, read_line_file

    if line_list:
        user = [read_line_file(p, medium="vacuum") for p in line_list]
        total = user[0]
        for more in user[1:]:
            total = total + more
        return [total.to_medium(medium)] * n_arcs
    if not lamps.strip():
        raise InputError(
            "wavelength.lamps: name the arc lamps (e.g. HgI,CdI,HeI) or give wavelength.line_list"
        )
    groups = [g for g in lamps.split(";") if g.strip()]
    if len(groups) == 1:
        groups = groups * n_arcs  # one set of lamps for every arc frame
    if len(groups) != n_arcs:
        raise InputError(
            f"wavelength.lamps gives {len(groups)} lamp groups (separated by ';') for {n_arcs} arc frames; "
            "give one group per arc, in order, or one for all"
        )
    return [load_lines(group, medium=medium) for group in groups]


def excluded_lines(text: str) -> list[float]:
    """The wavelengths of ``wavelength.exclude`` ("4046.56, 5085.82"), or an ``InputError``."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise InputError(
                f"wavelength.exclude: {part!r} is not a wavelength; give numbers in Angstrom"
            ) from None
    return values


def _without(lines, excluded: list[float], tolerance: float = 0.05):
    """``lines`` without the catalogue lines within ``tolerance`` Angstrom of an excluded wavelength."""
    if not excluded:
        return lines
    from ..numerics.linelists import LineList

    keep = np.ones(len(lines), bool)
    for value in excluded:
        keep &= np.abs(lines.wavelength - value) > tolerance
    return LineList(
        lines.wavelength[keep], lines.amplitude[keep], lines.ion[keep], lines.medium, lines.source
    )


@declare(
    Param("arcs", "paths", [], "Arc lamp frames (paths or globs) taken with the science setup."),
    Param(
        "lamps",
        "str",
        "",
        "Lamps lit in the arcs: HgI,CdI,HeI for all, or one group per arc separated by ';'.",
    ),
    Param(
        "line_list", "paths", [], "Your own line list files (vacuum Angstrom) instead of the shipped lists."
    ),
    Param(
        "medium",
        "str",
        "vacuum",
        "Wavelengths in vacuum or air (the output records which).",
        choices=("vacuum", "air"),
    ),
    Param("order", "int", 5, "Order of the polynomial in pixels.", minimum=1, maximum=9),
    Param("function", "str", "chebyshev", "Polynomial family.", choices=("chebyshev", "legendre")),
    Param(
        "centre",
        "float",
        None,
        "Rough central wavelength (auto: the lines' pattern alone decides).",
        minimum=100.0,
        unit="Angstrom",
        nullable=True,
    ),
    Param(
        "dispersion",
        "float",
        None,
        "Rough dispersion (auto: the lines' pattern alone decides; give it with centre).",
        minimum=1e-4,
        unit="Angstrom/pixel",
        nullable=True,
    ),
    Param("half_width", "int", 5, "Rows either side of the trace the arc spectrum averages.", minimum=0),
    Param("threshold", "float", 5.0, "Detection threshold of arc lines.", minimum=1.0, unit="sigma"),
    Param(
        "exclude",
        "str",
        "",
        "Catalogue lines left out of the identification and fit: wavelengths, comma-separated.",
        unit="Angstrom",
    ),
    Param("two_d", "bool", False, "Fit the lines' tilt along the slit too (2D solution, IRAF fitcoords)."),
    Param(
        "sky_shift",
        "bool",
        False,
        "Move the zero point onto the science frame's sky lines ([O I], OH, Hg I): flexure.",
    ),
    Param("hdu", "str", "auto", "HDU of the arc frames (auto: the primary, else the first one)."),
)
def wavelength_arc(
    frame: Frame,
    geometry: Geometry,
    *,
    arcs: list[str],
    lamps: str,
    line_list: list[str],
    medium: str,
    order: int,
    function: str,
    centre: float | None,
    dispersion: float | None,
    half_width: int,
    threshold: float,
    exclude: str,
    two_d: bool,
    sky_shift: bool,
    hdu: str,
) -> WavelengthCalibration:
    """Wavelengths from arc lamps: lines found along the trace, identified, fitted; per column."""
    from ..numerics import arcs as arclib

    files = expand_paths(arcs, "wavelength.arcs")
    if not files:
        raise InputError("wavelength.method = arc needs wavelength.arcs: the arc lamp frames")
    if (centre is None) != (dispersion is None):
        raise InputError("give wavelength.centre and wavelength.dispersion together, or neither")
    lists = [
        _without(ll, excluded_lines(exclude)) for ll in _lamp_lists(lamps, len(files), medium, line_list)
    ]
    images = [_arc_pixels(path, frame, hdu) for path in files]
    trace = np.clip(geometry.trace, half_width, frame.shape[0] - 1 - half_width)
    spectra, variances = [], []
    for image in images:
        flux, variance, _ = arclib.extract_arc(image, trace=trace, half_width=half_width)
        spectra.append(flux)
        variances.append(variance)
    guess = None if centre is None else (float(centre), float(dispersion))
    solution = arclib.solve_arc(spectra, lists, guess=guess, order=order, kind=function, threshold=threshold)
    columns = np.arange(frame.shape[1], dtype=np.float64)
    wavelength = solution(columns)
    solution_2d = None
    if two_d:
        middle = round(float(np.median(geometry.trace)))
        band = (max(middle - half_width, 0), min(middle + half_width + 1, frame.shape[0]))
        cols, rows, waves = arclib.measure_lines_2d(images, solution, band)
        solution_2d = arclib.fit_solution_2d(cols, rows, waves, shape=frame.shape, order_x=order, order_y=2)
        wavelength = solution_2d(columns, geometry.trace)
    shift, shift_notes = None, ()
    if sky_shift:  # flexure: the zero point moved onto the science frame's own sky lines
        from .sky_shift import refine_on_sky, shift_note

        shift, wavelength, solution_2d = refine_on_sky(
            frame, geometry, spectra, solution, solution_2d, medium
        )
        shift_notes = () if shift is None else (shift_note(shift),)
    if not np.all(np.isfinite(wavelength)) or not (
        np.all(np.diff(wavelength) > 0) or np.all(np.diff(wavelength) < 0)
    ):
        raise InputError(
            "the arc solution is not monotonic over the frame's columns; lower wavelength.order or check "
            "the lamps"
        )
    calibrated = dataclasses.replace(
        frame,
        wavelength=wavelength,
        wavelength_unit="Angstrom",
        wavelength_medium=medium,
        wavelength_2d=solution_2d,
        notes=(
            *frame.notes,
            f"wavelengths from {len(files)} arc(s): {solution.n_used} lines, rms {solution.rms_angstrom:.3f} "
            f"Angstrom ({solution.rms_pixel:.3f} px), {medium}",
            *shift_notes,
        ),
    )
    return WavelengthCalibration(
        calibrated,
        method="arc",
        solution=solution,
        solution_2d=solution_2d,
        files=files,
        spectra=spectra,
        sky_shift=shift,
    )


@hookimpl
def longslit_wavelength_methods() -> list[Method]:
    return [
        Method(
            "wavelength",
            "header",
            "The wavelengths the reader found: the header's WCS, or column numbers.",
            wavelength_header,
            uses=(),
        ),
        Method(
            "wavelength",
            "arc",
            "From arc lamp frames: lines found along the trace, identified with no guess, fitted.",
            wavelength_arc,
            uses=("trace",),
        ),
    ]
