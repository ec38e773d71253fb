"""Flux from an instrument's known response instead of a standard star: a throughput table or a header's
flux conversion (space telescopes, whose response is calibrated by the observatory).

**Throughput** (the STIS pipeline's formula, STIS Data Handbook 5.4): a column of ``C`` counts in ``t``
seconds over ``dlambda`` Angstrom at wavelength ``lambda`` is

    F_lambda = C g (h c / lambda) / (t dlambda A T(lambda))      [erg / (s cm2 Angstrom)]

with ``g`` the electrons per count (the CCD gain; 1 for counts already in electrons), ``A`` the telescope's
collecting area (HST: 45238.93416 cm2, the unobstructed 2.4 m mirror) and ``T`` the integrated system
throughput: detected electrons per incident photon, obscuration included (STIS's ``PHOTTAB`` column
``THROUGHPUT``).

**Conversion** (``PHOTFLAM``-style): ``F_lambda = K C / t`` with ``K`` in erg/(s cm2 Angstrom) per
count/s, one number for every column.

Neither corrects what the table or the card does not hold: slit losses (the aperture's throughput
against the one the table is for), the extraction's height against the reference box, time- and
temperature-dependent sensitivity, charge-transfer losses.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .flux import column_widths

#: h c in erg Angstrom (h = 6.62607015e-27 erg s, c = 2.99792458e18 Angstrom/s).
HC_ERG_ANGSTROM = 6.62607015e-27 * 2.99792458e18
#: The unobstructed area of HST's 2.4 m primary (cm2), as calstis and the STIS handbooks use.
HST_AREA_CM2 = 45238.93416


@dataclass(frozen=True)
class Throughput:
    """Detected electrons per incident photon against wavelength (Angstrom), and which table row."""

    wavelength: np.ndarray
    throughput: np.ndarray
    name: str
    selection: str = ""

    def __call__(self, wavelength: np.ndarray) -> np.ndarray:
        """The throughput at ``wavelength`` (linear between the table's points; NaN outside)."""
        w = np.asarray(wavelength, dtype=np.float64)
        return np.interp(w, self.wavelength, self.throughput, left=np.nan, right=np.nan)


def _column(names: list[str], *wanted: str) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[w] for w in wanted if w in lower), None)


def read_throughput(path: str | os.PathLike[str], *, selectors: dict[str, Any] | None = None) -> Throughput:
    """A throughput table: a two-column text file (Angstrom, throughput) or a FITS table with columns
    WAVELENGTH and THROUGHPUT, one row of arrays per mode (STIS's ``PHOTTAB``) or one value per row.

    ``selectors`` choose the row of a table of modes: ``{"OPT_ELEM": "G430L", "CENWAVE": 4300,
    "SPORDER": 1}``; a selector whose column the table lacks is ignored, and a table with several rows
    left after them is refused (say which one).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError("is not a file (flux.throughput names a throughput table)", path=str(file))
    with open(file, "rb") as handle:
        fits_file = handle.read(6) == b"SIMPLE"
    if not fits_file:
        try:
            table = np.loadtxt(file, comments="#", ndmin=2, usecols=(0, 1))
        except (ValueError, IndexError):
            raise InputError(
                "is not a throughput table: give two columns, wavelength (Angstrom) and throughput "
                "(detected electrons per photon)",
                path=str(file),
            ) from None
        return _checked(Throughput(table[:, 0], table[:, 1], file.name), file)
    from astropy.io import fits

    with fits.open(file) as hdul:
        found = next((h for h in hdul if isinstance(h, fits.BinTableHDU)), None)
        if found is None:
            raise InputError("holds no table (a throughput FITS file has WAVELENGTH and THROUGHPUT)",
                             path=str(file))  # fmt: skip
        data = found.data
        names = list(data.columns.names)
    wave_name, thru_name = _column(names, "wavelength", "wave"), _column(names, "throughput", "thruput")
    if wave_name is None or thru_name is None:
        raise InputError(f"has no WAVELENGTH and THROUGHPUT columns (it has {', '.join(names)})",
                         path=str(file))  # fmt: skip
    rows = np.ones(len(data), dtype=bool)
    chosen = []
    for key, value in (selectors or {}).items():
        name = _column(names, key.lower())
        if name is None or value is None:
            continue
        column = np.asarray(data[name])
        if column.dtype.kind in "SU":
            match = np.char.strip(np.char.upper(column.astype(str))) == str(value).strip().upper()
        else:
            match = np.isclose(column.astype(float), float(value))
        rows &= match
        chosen.append(f"{key}={value}")
    wave = np.asarray(data[wave_name])
    if wave.ndim == 1:  # one value per row: the whole table is one curve
        if chosen and not rows.all():
            wave, thru = wave[rows], np.asarray(data[thru_name])[rows]
        else:
            thru = np.asarray(data[thru_name])
        return _checked(
            Throughput(wave.astype(float), thru.astype(float), file.name, ", ".join(chosen)), file
        )
    index = np.flatnonzero(rows)
    if index.size != 1:
        raise InputError(
            f"has {index.size} rows for {', '.join(chosen) or 'no selection'}: name the mode "
            "(OPT_ELEM, CENWAVE, SPORDER from the frame's header)",
            path=str(file),
        )
    row = data[index[0]]
    wave, thru = np.asarray(row[wave_name], dtype=float), np.asarray(row[thru_name], dtype=float)
    nelem = _column(names, "nelem")
    if nelem is not None:
        n = int(row[nelem])
        wave, thru = wave[:n], thru[:n]
    return _checked(Throughput(wave, thru, file.name, ", ".join(chosen)), file)


def _checked(table: Throughput, file: Path) -> Throughput:
    w, t = np.asarray(table.wavelength, float), np.asarray(table.throughput, float)
    good = np.isfinite(w) & np.isfinite(t)
    w, t = w[good], t[good]
    order = np.argsort(w)
    w, t = w[order], t[order]
    if w.size < 2 or np.any(np.diff(w) <= 0):
        raise InputError("needs at least two distinct wavelengths with finite throughputs", path=str(file))
    if np.any(t < 0) or t.max() <= 0 or t.max() > 1.0:
        raise InputError(
            f"holds throughputs from {t.min():.3g} to {t.max():.3g}: a throughput is electrons per photon, "
            "between 0 and 1 (a percentage table must be divided by 100)",
            path=str(file),
        )
    return Throughput(w, t, table.name, table.selection)


def flux_from_throughput(
    wavelength: np.ndarray,
    counts: np.ndarray,
    sigma: np.ndarray,
    mask: np.ndarray,
    throughput: Throughput,
    *,
    exptime: float,
    area: float,
    gain: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts per column to erg/(s cm2 Angstrom) with ``throughput`` (see the module docstring).

    Returns flux, its uncertainty (the counts' only: a table carries no error) and the mask, with the
    columns outside the table or where its throughput is zero NaN and masked.
    """
    if not (exptime > 0 and area > 0 and gain > 0):
        raise InputError(f"the exposure ({exptime} s), area ({area} cm2) and gain ({gain}) must be > 0")
    w = np.asarray(wavelength, dtype=np.float64)
    t = throughput(w)
    inside = np.isfinite(t) & (t > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = gain * HC_ERG_ANGSTROM / w / (exptime * column_widths(w) * area * t)
    flux = np.where(inside, np.asarray(counts, float) * scale, np.nan)
    error = np.where(inside, np.asarray(sigma, float) * scale, np.nan)
    return flux, error, np.asarray(mask, dtype=bool) | ~inside


def flux_from_conversion(
    counts: np.ndarray, sigma: np.ndarray, mask: np.ndarray, *, exptime: float, conversion: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``F = K C / t`` with ``K`` (``conversion``) in erg/(s cm2 Angstrom) per count/s."""
    if not (exptime > 0 and conversion > 0 and np.isfinite(conversion)):
        raise InputError(f"the exposure ({exptime} s) and the flux conversion ({conversion}) must be > 0")
    scale = conversion / exptime
    return np.asarray(counts, float) * scale, np.asarray(sigma, float) * scale, np.asarray(mask, bool).copy()


def mode_selectors(lookup: Any) -> dict[str, Any]:
    """The row selectors of a table of modes from a frame's header (OPT_ELEM, CENWAVE, SPORDER)."""
    found: dict[str, Any] = {}
    for key in ("OPT_ELEM", "CENWAVE", "SPORDER"):
        card = lookup((key,))
        if card is not None and str(card[0]).strip():
            value = card[0]
            found[key] = value.strip() if isinstance(value, str) else value
    if "SPORDER" not in found and found:
        found["SPORDER"] = 1
    return found


def parse_keyword(text: str) -> list[str]:
    """``flux.keyword``: one header keyword or several separated by commas (the first found is used)."""
    keys = [k.strip().upper() for k in re.split(r"[,\s]+", str(text)) if k.strip()]
    if not keys:
        raise InputError("flux.keyword names no header keyword (PHOTFLAM, for example)")
    return keys
