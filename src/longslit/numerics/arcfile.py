"""An arc solution on disk: FITS with the fit, the lines behind it, the arc spectra and their provenance.

:func:`write_solution` writes, atomically (``longslit.output.write_atomic``):

- PRIMARY: ``PRODUCT = 'wavelength solution'``, ``WAVEFUNC`` (chebyshev or legendre), ``WAVEORD``,
  ``WAVEDLO``/``WAVEDHI`` (the pixel domain mapped to [-1, 1]), ``WAVEMED``, ``WAVERMS`` (Angstrom),
  ``WAVERMSP`` (pixels), ``WAVENLIN``, ``FRMCOLS``/``FRMROWS``/``FRMBIN`` (the frame's width, height and
  binning the solution is for), ``ARCn``/``ARCSHAn`` (each arc file and the SHA-256 of its bytes),
  ``LAMPS``, ``SOLNSHA`` (a SHA-256 of the solution's own numbers, so an edited file is refused), the
  longslit version, and everything else as JSON (``PROVJSON``: the parameters, the exact rms, the hand
  identifications, the 2D fit's figures);
- COEFFS: the 1D coefficients, lowest order first;
- LINES: the identified lines (PIXEL, WAVELENGTH, ERROR, ARC, USED: false for those the clipping
  rejected);
- DETECTED: every usable line found in the arcs (PIXEL, ARC);
- SPECTRA: the arc spectra along the trace, one row per arc;
- COEFF2D and LINES2D (COLUMN, ROW, WAVELENGTH), when a 2D solution was fitted.

:func:`read_solution` rebuilds the solutions exactly (float64 throughout), so a frame calibrated from the
file gets the very wavelengths the arcs gave.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import InputError
from .arcs import WavelengthSolution, WavelengthSolution2D

PRODUCT = "wavelength solution"


@dataclass(frozen=True, eq=False)
class SavedSolution:
    """What :func:`read_solution` gives back.

    Attributes
    ----------
    solution, solution_2d
        The 1D solution, and the 2D one (or None).
    spectra : tuple of ndarray
        The arc spectra the lines were found in.
    shape : (int, int)
        ``(nrows, ncols)`` of the frames the solution is for.
    binning : str or None
        Their binning (``"2x2"``), when the header said.
    provenance : dict
        The arcs (name, sha256), lamps, medium, parameters, version, the frame it was made on.
    path : str
    """

    solution: WavelengthSolution
    solution_2d: WavelengthSolution2D | None
    spectra: tuple[np.ndarray, ...]
    shape: tuple[int, int]
    binning: str | None
    provenance: dict[str, Any] = field(default_factory=dict)
    path: str = ""


def _digest(sol: WavelengthSolution, sol2: WavelengthSolution2D | None, shape, binning, spectra) -> str:
    """SHA-256 over the numbers a frame's wavelengths come from (what an edit of the file would change)."""
    digest = hashlib.sha256()
    digest.update(f"{sol.kind}|{sol.medium}|{shape[0]}|{shape[1]}|{binning}|".encode())
    arrays = [
        np.asarray(sol.domain, float), sol.coefficients, sol.pixels, sol.wavelengths,
        sol.rejected_pixels, sol.rejected_wavelengths, *spectra,
    ]  # fmt: skip
    if sol2 is not None:
        arrays += [sol2.coefficients, np.asarray([*sol2.domain_x, *sol2.domain_y], float)]
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it (numpy scalars and arrays as Python numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_solution(
    path: str | os.PathLike[str],
    solution: WavelengthSolution,
    solution_2d: WavelengthSolution2D | None = None,
    *,
    shape: tuple[int, int],
    spectra: tuple[np.ndarray, ...] = (),
    binning: str | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
    inputs: tuple[str, ...] = (),
) -> Path:
    """Write an arc solution as FITS (see the module docstring); returns the path.

    ``provenance`` may hold ``arcs`` (a list of ``{"name", "sha256"}``), ``lamps``, ``params`` and
    anything else plain (it goes into ``PROVJSON``).

    Raises
    ------
    OutputError
        when the file exists (without ``overwrite``), is one of ``inputs``, or cannot be written.
    """
    from astropy.io import fits

    from ..output import write_atomic

    provenance = _plain(dict(provenance or {}))
    spectra = tuple(np.asarray(s, dtype=np.float64) for s in spectra)
    primary = fits.PrimaryHDU()
    header = primary.header
    header["ORIGIN"] = ("longslit", "software that made this file")
    header["LSVERS"] = (__version__, "longslit version")
    header["PRODUCT"] = (PRODUCT, "longslit product")
    header["WAVEFUNC"] = (solution.kind, "polynomial family of wavelength(pixel)")
    header["WAVEORD"] = (solution.order, "polynomial order")
    header["WAVEDLO"] = (float(solution.domain[0]), "[pixel] mapped to -1")
    header["WAVEDHI"] = (float(solution.domain[1]), "[pixel] mapped to +1")
    header["WAVEMED"] = (solution.medium, "wavelengths in air or vacuum")
    header["WAVERMS"] = (solution.rms_angstrom, "[Angstrom] rms of the used lines")
    header["WAVERMSP"] = (solution.rms_pixel, "[pixel] rms of the used lines")
    header["WAVENLIN"] = (solution.n_used, "lines used in the fit")
    header["WAVENREJ"] = (int(solution.rejected_pixels.size), "lines rejected by the clipping")
    header["FRMROWS"] = (int(shape[0]), "rows of the frames it is for")
    header["FRMCOLS"] = (int(shape[1]), "columns of the frames it is for (dispersion)")
    header["FRMBIN"] = (binning or "unknown", "binning of the frames it is for")
    header["WAVE2D"] = (solution_2d is not None, "a 2D solution (line tilt) is in COEFF2D")
    for i, arc in enumerate(provenance.get("arcs", []), start=1):
        header[f"ARC{i}"] = str(arc.get("name", ""))[-68:]
        header[f"ARCSHA{i}"] = str(arc.get("sha256", ""))
    if provenance.get("lamps"):
        header["LAMPS"] = str(provenance["lamps"])[:68]  # lamps lit in the arcs
    header["SOLNSHA"] = _digest(solution, solution_2d, shape, binning, spectra)  # no room for a comment
    exact = {
        "rms_angstrom": solution.rms_angstrom,
        "rms_pixel": solution.rms_pixel,
        "identified": solution.meta.get("identified", (np.zeros(0), np.zeros(0))),
        "binning": binning,
    }
    if solution_2d is not None:
        exact["solution_2d"] = {
            "rejected": solution_2d.rejected,
            "rms_angstrom": solution_2d.rms_angstrom,
            "rms_pixel": solution_2d.rms_pixel,
            "reference_row": solution_2d.reference_row,
        }
    header["PROVJSON"] = json.dumps({**provenance, **_plain(exact)}, separators=(",", ":"), default=str)
    header["HISTORY"] = "longslit arc solution; parameters and provenance as JSON in PROVJSON"
    n_used, n_rej = solution.n_used, solution.rejected_pixels.size
    pixel = np.concatenate([solution.pixels, solution.rejected_pixels])
    wave = np.concatenate([solution.wavelengths, solution.rejected_wavelengths])
    error = np.concatenate([solution.errors, np.full(n_rej, np.nan)])
    arc = np.concatenate([solution.arc, np.full(n_rej, -1)]).astype(np.int32)
    lines = fits.BinTableHDU.from_columns(
        [
            fits.Column("PIXEL", "D", "pixel", array=pixel),
            fits.Column("WAVELENGTH", "D", "Angstrom", array=wave),
            fits.Column("ERROR", "D", "pixel", array=error),
            fits.Column("ARC", "J", array=arc),
            fits.Column("USED", "L", array=np.arange(n_used + n_rej) < n_used),
        ],
        name="LINES",
    )
    detected = solution.meta.get("detected", (np.zeros(0), np.zeros(0, int)))
    found = fits.BinTableHDU.from_columns(
        [
            fits.Column("PIXEL", "D", "pixel", array=np.asarray(detected[0], float)),
            fits.Column("ARC", "J", array=np.asarray(detected[1], np.int32)),
        ],
        name="DETECTED",
    )
    hdus = [
        primary,
        fits.ImageHDU(np.asarray(solution.coefficients, np.float64), name="COEFFS"),
        lines,
        found,
    ]
    if spectra:
        hdus.append(fits.ImageHDU(np.vstack(spectra), name="SPECTRA"))
    if solution_2d is not None:
        coef = fits.ImageHDU(np.asarray(solution_2d.coefficients, np.float64), name="COEFF2D")
        for key, value in zip(("DOMX0", "DOMX1", "DOMY0", "DOMY1"),
                              (*solution_2d.domain_x, *solution_2d.domain_y), strict=True):  # fmt: skip
            coef.header[key] = float(value)
        coef.header["COMMENT"] = (
            "wavelength = sum c[i, j] T_i(x') T_j(y'), x' and y' the column and row in [-1, 1]"
        )
        hdus.append(coef)
        hdus.append(
            fits.BinTableHDU.from_columns(
                [
                    fits.Column("COLUMN", "D", "pixel", array=solution_2d.columns),
                    fits.Column("ROW", "D", "pixel", array=solution_2d.rows),
                    fits.Column("WAVELENGTH", "D", "Angstrom", array=solution_2d.wavelengths),
                ],
                name="LINES2D",
            )
        )
    hdul = fits.HDUList(hdus)
    return write_atomic(Path(path), lambda temporary: hdul.writeto(temporary), overwrite=overwrite,
                        inputs=inputs)  # fmt: skip


def read_solution(path: str | os.PathLike[str]) -> SavedSolution:
    """Read an arc solution :func:`write_solution` wrote.

    Raises
    ------
    InputError
        when the file is missing, is not a longslit wavelength solution, or its numbers were changed
        after longslit wrote it.
    """
    from astropy.io import fits

    where = str(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header
            if header.get("PRODUCT") != PRODUCT:
                raise InputError(
                    "is not a longslit wavelength solution (no PRODUCT = 'wavelength solution'); give a file "
                    "written by wavelength.save or longslit calibrate",
                    path=where,
                )
            info = json.loads(header.get("PROVJSON", "{}"))
            lines = hdul["LINES"].data
            used = np.asarray(lines["USED"], bool)
            pixel = np.asarray(lines["PIXEL"], np.float64)
            wave = np.asarray(lines["WAVELENGTH"], np.float64)
            detected = hdul["DETECTED"].data
            hand = np.asarray(info.get("identified", [[], []]), dtype=np.float64).reshape(2, -1)
            solution = WavelengthSolution(
                kind=str(header["WAVEFUNC"]),
                coefficients=np.array(hdul["COEFFS"].data, dtype=np.float64),
                domain=(float(header["WAVEDLO"]), float(header["WAVEDHI"])),
                medium=str(header["WAVEMED"]),
                pixels=pixel[used],
                wavelengths=wave[used],
                errors=np.asarray(lines["ERROR"], np.float64)[used],
                rejected_pixels=pixel[~used],
                rejected_wavelengths=wave[~used],
                rms_angstrom=float(info["rms_angstrom"]),
                rms_pixel=float(info["rms_pixel"]),
                arc=np.asarray(lines["ARC"], int)[used],
                meta={
                    "detected": (np.asarray(detected["PIXEL"], np.float64), np.asarray(detected["ARC"], int)),
                    "identified": (hand[0], hand[1]),
                },
            )
            names = [h.name for h in hdul]
            spectra = tuple(np.array(hdul["SPECTRA"].data, np.float64)) if "SPECTRA" in names else ()
            solution_2d = None
            if "COEFF2D" in names:
                coef = hdul["COEFF2D"]
                table = hdul["LINES2D"].data
                figures = info["solution_2d"]
                solution_2d = WavelengthSolution2D(
                    coefficients=np.array(coef.data, dtype=np.float64),
                    domain_x=(float(coef.header["DOMX0"]), float(coef.header["DOMX1"])),
                    domain_y=(float(coef.header["DOMY0"]), float(coef.header["DOMY1"])),
                    medium=solution.medium,
                    columns=np.asarray(table["COLUMN"], np.float64),
                    rows=np.asarray(table["ROW"], np.float64),
                    wavelengths=np.asarray(table["WAVELENGTH"], np.float64),
                    rejected=int(figures["rejected"]),
                    rms_angstrom=float(figures["rms_angstrom"]),
                    rms_pixel=float(figures["rms_pixel"]),
                    reference_row=float(figures["reference_row"]),
                )
            shape = (int(header["FRMROWS"]), int(header["FRMCOLS"]))
            binning = info.get("binning")
            stored = str(header.get("SOLNSHA", ""))
    except FileNotFoundError:
        raise InputError("no such file; give a wavelength solution written by longslit", path=where) from None
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise InputError(f"cannot read it as a longslit wavelength solution ({exc})", path=where) from None
    if stored != _digest(solution, solution_2d, shape, binning, spectra):
        raise InputError(
            "its numbers were changed after longslit wrote it (SOLNSHA does not match); write the solution "
            "again from the arcs",
            path=where,
        )
    return SavedSolution(solution, solution_2d, spectra, shape, binning, info, where)
