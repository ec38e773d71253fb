"""A sensitivity on disk: FITS with the fit, its covariance, the points it was fitted to and its provenance.

:func:`write_sensitivity` writes, atomically (``longslit.output.write_atomic``):

- PRIMARY: ``SENSFUNC`` (spline or polynomial), ``SENSORD``, ``SENSLO``/``SENSHI`` (the range, Angstrom),
  ``STDFILE``/``STDSHA`` (the standard's file and its SHA-256), ``STDAIRM``, ``STDEXPT``, ``REFSPEC``,
  ``EXTCURVE``, ``CNTUNIT``, ``WAVEMED``, the longslit version, and the provenance as JSON (``PROVJSON``);
- SENSITIVITY: a table of WAVELENGTH, SENS (counts/s/Angstrom per erg/s/cm2/Angstrom), SENS_ERR, MAG
  (2.5 log10 SENS) and MAG_ERR on a 1 Angstrom grid, for other programs;
- FIT: the coefficients (first row) and their covariance (the rest), which :func:`read_sensitivity`
  rebuilds the sensitivity from exactly;
- BANDS: the measured points (centre, edges, magnitude, sigma, observed rate, reference flux, masked,
  used); EXTINCTION: the curve used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import InputError
from .flux import ExtinctionCurve, Sensitivity, SmoothFit


def write_sensitivity(
    sensitivity: Sensitivity,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    inputs: tuple[str, ...] = (),
) -> Path:
    """Write ``sensitivity`` as FITS (see the module docstring); returns the path.

    Raises
    ------
    OutputError
        when the file exists (without ``overwrite``), is one of ``inputs``, or cannot be written.
    """
    from astropy.io import fits

    from ..output import write_atomic

    info = sensitivity.info
    lo, hi = sensitivity.domain
    grid = np.arange(np.ceil(lo), np.floor(hi) + 1.0)
    unit, relative = sensitivity.counts_unit, sensitivity.relative_error(grid)
    primary = fits.PrimaryHDU()
    header = primary.header
    header["ORIGIN"] = ("longslit", "software that made this file")
    header["LSVERS"] = (__version__, "longslit version")
    header["PRODUCT"] = ("sensitivity", "longslit product")
    header["SENSFUNC"] = (sensitivity.fit.function, "smooth function fitted (magnitudes)")
    header["SENSORD"] = (sensitivity.fit.order, "spline pieces or polynomial degree")
    header["SENSLO"] = (lo, "[Angstrom] start of the sensitivity's range")
    header["SENSHI"] = (hi, "[Angstrom] end of the sensitivity's range")
    header["CNTUNIT"] = (sensitivity.counts_unit, "unit of the counts")
    header["WAVEMED"] = (sensitivity.medium or "unknown", "wavelengths in air or vacuum")
    header["STDAIRM"] = (sensitivity.airmass, "airmass of the standard")
    header["STDEXPT"] = (sensitivity.exptime, "[s] exposure of the standard")
    for key, name in (("STDFILE", "standard"), ("STDSHA", "standard_sha256"), ("REFSPEC", "reference"),
                      ("EXTCURVE", "extinction"), ("RECHASH", "recipe_digest")):  # fmt: skip
        if info.get(name):
            header[key] = str(info[name])[:68]
    header["RMSMAG"] = (float(info.get("rms_mag", np.nan)), "[mag] rms of the used bands about the fit")
    header["PROVJSON"] = json.dumps(_plain(info), separators=(",", ":"), default=str)
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column("WAVELENGTH", "D", "Angstrom", array=grid),
            fits.Column("SENS", "D", f"{unit} cm2 erg-1", array=sensitivity(grid)),
            fits.Column("SENS_ERR", "D", f"{unit} cm2 erg-1", array=sensitivity(grid) * relative),
            fits.Column("MAG", "D", "mag", array=sensitivity.magnitude(grid)),
            fits.Column("MAG_ERR", "D", "mag", array=sensitivity.magnitude_error(grid)),
        ],
        name="SENSITIVITY",
    )
    fit = sensitivity.fit
    fit_hdu = fits.ImageHDU(np.vstack([fit.coefficients[None, :], fit.covariance]), name="FIT")
    fit_hdu.header["COMMENT"] = "row 1: coefficients; rows 2..: their covariance"
    bands = fits.BinTableHDU.from_columns(
        [
            fits.Column("WAVELENGTH", "D", "Angstrom", array=sensitivity.band_wavelength),
            fits.Column("LOWER", "D", "Angstrom", array=sensitivity.band_lower),
            fits.Column("UPPER", "D", "Angstrom", array=sensitivity.band_upper),
            fits.Column("MAG", "D", "mag", array=sensitivity.band_magnitude),
            fits.Column("MAG_ERR", "D", "mag", array=sensitivity.band_sigma),
            fits.Column("RATE", "D", f"{unit} s-1 Angstrom-1", array=sensitivity.observed_rate),
            fits.Column("REFFLUX", "D", "erg s-1 cm-2 Angstrom-1", array=sensitivity.reference_flux),
            fits.Column("MASKED", "L", array=sensitivity.masked),
            fits.Column("USED", "L", array=sensitivity.used),
        ],
        name="BANDS",
    )
    curve = sensitivity.extinction
    extinction = fits.BinTableHDU.from_columns(
        [
            fits.Column("WAVELENGTH", "D", "Angstrom", array=curve.wavelength),
            fits.Column("EXTINCTION", "D", "mag", array=curve.magnitudes),
        ],
        name="EXTINCTION",
    )
    extinction.header["CURVE"] = curve.name[:68]
    hdul = fits.HDUList([primary, table, fit_hdu, bands, extinction])
    return write_atomic(Path(path), lambda temporary: hdul.writeto(temporary), overwrite=overwrite,
                        inputs=inputs)  # fmt: skip


def read_sensitivity(path: str | os.PathLike[str]) -> Sensitivity:
    """Read a sensitivity :func:`write_sensitivity` wrote.

    Raises
    ------
    InputError
        when the file is missing or is not a longslit sensitivity.
    """
    from astropy.io import fits

    where = str(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header
            if header.get("PRODUCT") != "sensitivity":
                raise InputError("is not a longslit sensitivity (no PRODUCT = 'sensitivity')", path=where)
            fit_data = np.array(hdul["FIT"].data, dtype=np.float64)
            bands = hdul["BANDS"].data
            curve = hdul["EXTINCTION"]
            info = json.loads(header.get("PROVJSON", "{}"))
            fit = SmoothFit(
                str(header["SENSFUNC"]),
                int(header["SENSORD"]),
                (float(header["SENSLO"]), float(header["SENSHI"])),
                fit_data[0].copy(),
                fit_data[1:].copy(),
            )
            extinction = ExtinctionCurve(
                np.array(curve.data["WAVELENGTH"], dtype=np.float64),
                np.array(curve.data["EXTINCTION"], dtype=np.float64),
                str(curve.header.get("CURVE", "")),
                where,
            )
            columns = {name: np.array(bands[name]) for name in bands.columns.names}
            medium = str(header.get("WAVEMED", "unknown"))
            return Sensitivity(
                fit=fit,
                band_wavelength=columns["WAVELENGTH"].astype(np.float64),
                band_lower=columns["LOWER"].astype(np.float64),
                band_upper=columns["UPPER"].astype(np.float64),
                band_magnitude=columns["MAG"].astype(np.float64),
                band_sigma=columns["MAG_ERR"].astype(np.float64),
                observed_rate=columns["RATE"].astype(np.float64),
                reference_flux=columns["REFFLUX"].astype(np.float64),
                masked=columns["MASKED"].astype(bool),
                used=columns["USED"].astype(bool),
                extinction=extinction,
                airmass=float(header["STDAIRM"]),
                exptime=float(header["STDEXPT"]),
                counts_unit=str(header["CNTUNIT"]),
                medium=None if medium == "unknown" else medium,
                info={**info, "file": Path(where).name},
            )
    except FileNotFoundError:
        raise InputError("no such file; give a sensitivity written by longslit", path=where) from None
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read it as a longslit sensitivity ({exc})", path=where) from None


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool, list, tuple, type(None)))}
