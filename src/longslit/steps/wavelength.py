"""Built-in wavelength methods: ``header`` (the wavelengths the reader found) and ``arc`` (arc lamps).

``arc`` reads the arc frames the recipe names, brings them to the science frame's pixels (the same
overscan and trim from their headers, or the reader's section, and the same orientation), takes the arc
spectrum along the science trace, finds and identifies its lines against the shipped lists of the
lamps named (no guess needed; ``longslit.numerics.arcs``), fits a clipped Chebyshev or Legendre
polynomial, and gives each column of the frame its wavelength. With ``two_d`` the lines are also
measured in bands along the slit (IRAF fitcoords): the wavelength then follows the trace across the
tilted lines, and the solution's tilt is in the product. ``identify`` adds identifications made by hand
(the Identify screen's ``m`` key), ``save`` writes the solution as FITS (``longslit.numerics.arcfile``).

``solution`` gives a frame the wavelengths of a solution written before (``wavelength.save`` or
``longslit calibrate``), without the arcs, once its width and binning are checked against the frame's.

Solutions are kept by the content of the arc (and line list) files, the parameters and the rows the arc
spectrum is taken from (:func:`solution_cache`): a batch of frames of one setup solves the arcs once, and
its processes share the solution through the batch's master folder (``LONGSLIT_MASTER_CACHE``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..errors import FrameError, IncompleteError, InputError, LongslitError
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
        raise IncompleteError(
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


def catalogue(lamps: str, medium: str, line_list: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The catalogue lines (wavelength, ion) of every lamp named, or of the user's line lists."""
    from ..numerics.linelists import load_lines, read_line_file

    if line_list:
        lists = [read_line_file(p, medium="vacuum").to_medium(medium) for p in expand_paths(line_list, "")]
    else:
        lists = [load_lines(group, medium=medium) for group in lamps.split(";") if group.strip()]
    if not lists:
        return np.zeros(0), np.zeros(0, str)
    return np.concatenate([ll.wavelength for ll in lists]), np.concatenate([ll.ion for ll in lists])


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


def identified_lines(text: str) -> list[tuple[float, float]]:
    """The pairs of ``wavelength.identify`` ("812.31:4047.71, 1190.4:4359.56"), or an ``InputError``."""
    pairs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        pixel, sep, wave = part.partition(":")
        try:
            if not sep:
                raise ValueError
            pairs.append((float(pixel), float(wave)))
        except ValueError:
            raise InputError(
                f"wavelength.identify: {part!r} is not pixel:wavelength; give pairs such as "
                "812.31:4047.708, separated by commas"
            ) from None
    return pairs


_BINNING_KEYS = (("CCDSUM",), ("BINNING",), ("CCDBIN1", "CCDBIN2"), ("XBINNING", "YBINNING"))


def frame_binning(frame: Frame) -> str | None:
    """The frame's binning from its header or its file's primary header ("2x2"), or None when neither says."""
    headers = [frame.fits_header]
    if os.path.isfile(str(frame.source)):
        from astropy.io import fits

        with contextlib.suppress(OSError, ValueError):
            headers.append(fits.getheader(str(frame.source), 0))
    for header in headers:
        for keys in _BINNING_KEYS if header is not None else ():
            if all(k in header for k in keys):
                text = " ".join(str(header[k]) for k in keys).replace(",", " ").replace("x", " ")
                return "x".join(text.split()) or None
    return None


class SolutionCache:
    """Arc solutions by the content of their inputs: a batch of one setup solves its arcs once.

    ``solves`` counts the solutions computed, ``loads`` those another process of the batch had written
    to the shared :attr:`folder` (taken from ``LONGSLIT_MASTER_CACHE``, as the masters are).
    """

    def __init__(self) -> None:
        self._solutions: dict[str, tuple] = {}
        self._hashes: dict[tuple[str, int, int], str] = {}
        self.solves = 0
        self.loads = 0
        self.folder: str | None = None

    def file_hash(self, path: str) -> str:
        from ..calibration.ccd import file_hash

        stat = os.stat(path)
        ident = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
        if ident not in self._hashes:
            self._hashes[ident] = file_hash(path)
        return self._hashes[ident]

    def get(self, key: str, solve, save) -> tuple:
        """``(solution, solution_2d, spectra)`` for ``key``: kept, shared, or ``solve()``d now."""
        if key not in self._solutions:
            self._solutions[key] = self._shared(key, solve, save) if self.folder else self._solve(solve)
        return self._solutions[key]

    def _solve(self, solve) -> tuple:
        made = solve()
        self.solves += 1
        return made

    def _shared(self, key: str, solve, save) -> tuple:
        from ..calibration.store import shared_product
        from ..numerics.arcfile import read_solution

        def load(path: Path) -> tuple | None:
            saved = read_solution(path)
            if saved.provenance.get("cache_key") != key:
                return None
            return saved.solution, saved.solution_2d, saved.spectra

        def keep(path: Path, made: tuple) -> None:
            with contextlib.suppress(LongslitError):  # the cache is an optimization: it is in memory
                save(path, made, key)

        path = Path(self.folder) / f"arc_{key[:32]}.fits"
        made, loaded = shared_product(path, load, lambda: self._solve(solve), keep, damaged=(InputError,))
        if loaded:
            self.loads += 1
        return made


_SOLUTIONS: SolutionCache | None = None


def solution_cache() -> SolutionCache:
    """The process-wide :class:`SolutionCache` (``solves`` counts arc solutions computed)."""
    from ..calibration import MASTER_CACHE_ENV

    global _SOLUTIONS
    if _SOLUTIONS is None:
        _SOLUTIONS = SolutionCache()
    _SOLUTIONS.folder = os.environ.get(MASTER_CACHE_ENV) or None  # a batch shares them between processes
    return _SOLUTIONS


def _write(path, made, frame: Frame, provenance: dict, *, overwrite: bool = True, inputs=()) -> Path:
    from ..numerics.arcfile import write_solution

    solution, solution_2d, spectra = made
    return write_solution(
        path,
        solution,
        solution_2d,
        shape=frame.shape,
        spectra=tuple(spectra),
        binning=frame_binning(frame),
        provenance=provenance,
        overwrite=overwrite,
        inputs=tuple(inputs),
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
    Param(
        "identify",
        "str",
        "",
        "Identifications by hand, pixel:wavelength pairs, comma-separated (the Identify screen's m key).",
    ),
    Param("two_d", "bool", False, "Fit the lines' tilt along the slit too (2D solution, IRAF fitcoords)."),
    Param(
        "sky_shift",
        "bool",
        False,
        "Move the zero point onto the science frame's sky lines ([O I], OH, Hg I): flexure.",
    ),
    Param("hdu", "str", "auto", "HDU of the arc frames (auto: the primary, else the first one)."),
    Param(
        "save",
        "str",
        "none",
        "Write the solution (FITS, with its provenance) to this file; none: do not "
        "(wavelength.method = solution reads it back for other frames of the setup).",
    ),
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
    identify: str,
    two_d: bool,
    sky_shift: bool,
    hdu: str,
    save: str,
) -> WavelengthCalibration:
    """Wavelengths from arc lamps: lines found along the trace, identified, fitted; per column."""
    from ..numerics import arcs as arclib

    files = expand_paths(arcs, "wavelength.arcs")
    if not files:
        raise IncompleteError("wavelength.method = arc needs wavelength.arcs: the arc lamp frames")
    if (centre is None) != (dispersion is None):
        raise InputError("give wavelength.centre and wavelength.dispersion together, or neither")
    hand = identified_lines(identify)
    excluded = excluded_lines(exclude)
    user_lists = expand_paths(line_list, "wavelength.line_list") if line_list else []
    trace = np.clip(geometry.trace, half_width, frame.shape[0] - 1 - half_width)
    cache = solution_cache()
    params = {
        "lamps": lamps, "medium": medium, "order": order, "function": function, "centre": centre,
        "dispersion": dispersion, "half_width": half_width, "threshold": threshold, "exclude": exclude,
        "identify": identify, "two_d": two_d, "hdu": hdu,
    }  # fmt: skip
    arcs_provenance = [{"name": path, "sha256": cache.file_hash(path)} for path in files]
    # Everything the solution depends on: the files' content, the parameters, the frame's pixels (its
    # section and axes) and the rows the arc spectrum is averaged over (the rounded trace).
    rows = np.round(trace).astype(np.int64)
    key_text = json.dumps(
        {
            "arcs": [a["sha256"] for a in arcs_provenance],
            "line_lists": [cache.file_hash(path) for path in user_lists],
            "params": params,
            "shape": list(frame.shape),
            "section": None if frame.section is None else list(frame.section),
            "axis": frame.dispersion_axis,
            "rows": hashlib.sha256(rows.tobytes()).hexdigest(),
            "version": _version(),
        },
        sort_keys=True,
        default=str,
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()
    middle = round(float(np.median(geometry.trace)))  # the 2D solution's reference band
    key = hashlib.sha256(f"{key}|{middle if two_d else ''}".encode()).hexdigest()

    def solve():
        lists = [_without(ll, excluded) for ll in _lamp_lists(lamps, len(files), medium, user_lists)]
        images = [_arc_pixels(path, frame, hdu) for path in files]
        spectra = [arclib.extract_arc(image, trace=trace, half_width=half_width)[0] for image in images]
        guess = None if centre is None else (float(centre), float(dispersion))
        solution = arclib.solve_arc(
            spectra, lists, guess=guess, order=order, kind=function, threshold=threshold, identified=hand
        )
        solution_2d = None
        if two_d:
            band = (max(middle - half_width, 0), min(middle + half_width + 1, frame.shape[0]))
            cols, rws, waves = arclib.measure_lines_2d(images, solution, band)
            solution_2d = arclib.fit_solution_2d(
                cols, rws, waves, shape=frame.shape, order_x=order, order_y=2
            )
        return solution, solution_2d, tuple(spectra)

    provenance = {
        "arcs": arcs_provenance, "lamps": lamps, "medium": medium, "params": params,
        "line_lists": user_lists, "made_on": str(frame.source), "cache_key": key,
    }  # fmt: skip
    made = cache.get(key, solve, lambda path, made, key: _write(path, made, frame, provenance))
    solution, solution_2d, spectra = made
    solution.meta["provenance"] = {k: v for k, v in provenance.items() if k != "made_on"}  # same per key
    if save.strip().lower() not in ("", "none"):
        _write(Path(save).expanduser(), made, frame, provenance, inputs=(*files, str(frame.source)))
    columns = np.arange(frame.shape[1], dtype=np.float64)
    wavelength = solution(columns) if solution_2d is None else solution_2d(columns, geometry.trace)
    shift, shift_notes = None, ()
    if sky_shift:  # flexure: the zero point moved onto the science frame's own sky lines (per frame,
        # after the solution, which the cache shares between the frames of a setup)
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


@declare(
    Param(
        "solution",
        "paths",
        None,
        "A wavelength solution written by wavelength.save or longslit calibrate (FITS).",
        required=True,
    ),
)
def wavelength_solution(frame: Frame, geometry: Geometry, *, solution: list[str]) -> WavelengthCalibration:
    """The wavelengths of an arc solution saved before, for a frame of the same setup (no arcs needed)."""
    from ..numerics.arcfile import read_solution

    files = expand_paths(solution, "wavelength.solution")
    if len(files) != 1:
        raise InputError(f"wavelength.solution names {len(files)} files; give one solution file")
    saved = read_solution(files[0])
    name = Path(files[0]).name
    rows, cols = saved.shape
    if cols != frame.shape[1] or (saved.solution_2d is not None and rows != frame.shape[0]):
        raise InputError(
            f"the wavelength solution {name} is for frames of {cols} x {rows} pixels, this frame is "
            f"{frame.shape[1]} x {frame.shape[0]} (columns along the dispersion x rows); give a solution "
            "made from arcs of the same setup"
        )
    binning = frame_binning(frame)
    if saved.binning and binning and saved.binning != binning:
        raise InputError(
            f"the wavelength solution {name} is for frames binned {saved.binning}, this frame is binned "
            f"{binning}; give a solution made from arcs of the same setup"
        )
    sol, sol2 = saved.solution, saved.solution_2d
    columns = np.arange(frame.shape[1], dtype=np.float64)
    wavelength = sol(columns) if sol2 is None else sol2(columns, geometry.trace)
    calibrated = dataclasses.replace(
        frame,
        wavelength=wavelength,
        wavelength_unit="Angstrom",
        wavelength_medium=sol.medium,
        wavelength_2d=sol2,
        notes=(
            *frame.notes,
            f"wavelengths from the solution {name}: {sol.n_used} lines, rms {sol.rms_angstrom:.3f} Angstrom "
            f"({sol.rms_pixel:.3f} px), {sol.medium}",
        ),
    )
    arcs = tuple(str(a.get("name", "")) for a in saved.provenance.get("arcs", []))
    return WavelengthCalibration(
        calibrated, method="solution", solution=sol, solution_2d=sol2, files=arcs, spectra=saved.spectra
    )


def write_solution_of(made: WavelengthCalibration, path: str | os.PathLike[str], *, overwrite: bool = False):
    """Write the arc solution of a ``wavelength`` product (method ``arc``) to ``path``; returns the path."""
    provenance = {**made.solution.meta.get("provenance", {}), "made_on": str(made.frame.source)}
    triple = (made.solution, made.solution_2d, tuple(made.spectra))
    return _write(
        path, triple, made.frame, provenance, overwrite=overwrite, inputs=(*made.files, made.frame.source)
    )


def _version() -> str:
    from .._version import __version__

    return __version__


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
        Method(
            "wavelength",
            "solution",
            "From an arc solution saved before (wavelength.save, longslit calibrate): no arcs needed.",
            wavelength_solution,
            uses=("trace",),
        ),
    ]
