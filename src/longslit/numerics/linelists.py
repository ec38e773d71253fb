"""Arc-lamp line lists: the ones shipped with longslit (vacuum, NIST, from PypeIt) and a user's own file.

Wavelengths are kept in vacuum, as the lists give them; a solution asked for in air converts the list, not
the other way round, so the medium is always an explicit choice that the caller records
(``LineList.medium``). The conversion is Morton (2000, ApJS 130, 403, eq. 8), the IAU standard formula
(Edlen 1966 refitted by Birch & Downs 1994), valid above 2000 Angstrom; air to vacuum inverts it
iteratively to better than 1e-6 Angstrom.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from longslit.errors import InputError

__all__ = [
    "LineList",
    "air_to_vacuum",
    "available_lamps",
    "load_lines",
    "read_line_file",
    "vacuum_to_air",
]

#: Media a line list or a solution can be in.
MEDIA = ("vacuum", "air")


def _refractive_index_minus_one(vacuum_angstrom: np.ndarray) -> np.ndarray:
    # Morton (2000) eq. 8: s is the vacuum wavenumber in inverse micrometres.
    s2 = (1.0e4 / vacuum_angstrom) ** 2
    return 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)


def vacuum_to_air(wavelength: np.ndarray | float) -> np.ndarray:
    """Vacuum wavelengths (Angstrom) to standard air (15 C, 101 325 Pa, dry), Morton (2000).

    Parameters
    ----------
    wavelength : array_like
        Vacuum wavelengths in Angstrom, above 2000 (the formula's range).

    Returns
    -------
    numpy.ndarray
        Air wavelengths in Angstrom.
    """
    lam = np.asarray(wavelength, dtype=float)
    if np.any(lam < 2000.0):
        raise InputError("the air/vacuum conversion holds above 2000 Angstrom; give wavelengths in Angstrom")
    return lam / (1.0 + _refractive_index_minus_one(lam))


def air_to_vacuum(wavelength: np.ndarray | float) -> np.ndarray:
    """Air wavelengths (Angstrom) to vacuum: the exact inverse of :func:`vacuum_to_air`.

    Parameters
    ----------
    wavelength : array_like
        Standard-air wavelengths in Angstrom, above 2000.

    Returns
    -------
    numpy.ndarray
        Vacuum wavelengths in Angstrom.
    """
    air = np.asarray(wavelength, dtype=float)
    if np.any(air < 2000.0):
        raise InputError("the air/vacuum conversion holds above 2000 Angstrom; give wavelengths in Angstrom")
    vac = air.copy()
    # n varies by ~1e-8 per Angstrom, so the fixed point converges by ~1e-4 per step: four steps are plenty.
    for _ in range(4):
        vac = air * (1.0 + _refractive_index_minus_one(vac))
    return vac


@dataclass(frozen=True, eq=False)
class LineList:
    """Laboratory lines of one or more lamps.

    Attributes
    ----------
    wavelength : numpy.ndarray
        Angstrom, sorted, in ``medium``.
    amplitude : numpy.ndarray
        Relative strength (a ranking; NaN where the list gives none).
    ion : numpy.ndarray
        Ion of each line (``"HgI"``), or ``"user"`` for a plain file without one.
    medium : str
        ``"vacuum"`` or ``"air"``.
    source : str
        Where the lines came from (lamp names or the file), for provenance.
    """

    wavelength: np.ndarray
    amplitude: np.ndarray
    ion: np.ndarray
    medium: str
    source: str

    def __len__(self) -> int:
        return self.wavelength.size

    def to_medium(self, medium: str) -> LineList:
        """The same lines in ``medium`` (``"vacuum"`` or ``"air"``)."""
        _check_medium(medium)
        if medium == self.medium:
            return self
        convert = vacuum_to_air if medium == "air" else air_to_vacuum
        return LineList(convert(self.wavelength), self.amplitude, self.ion, medium, self.source)

    def within(self, low: float, high: float) -> LineList:
        """The lines with ``low <= wavelength <= high``."""
        keep = (self.wavelength >= low) & (self.wavelength <= high)
        return LineList(self.wavelength[keep], self.amplitude[keep], self.ion[keep], self.medium, self.source)

    def strongest(self, n: int) -> LineList:
        """The ``n`` lines of largest amplitude (all if fewer), still sorted by wavelength."""
        if n >= len(self):
            return self
        order = np.argsort(np.nan_to_num(self.amplitude, nan=-np.inf))[::-1][:n]
        keep = np.sort(order)
        return LineList(self.wavelength[keep], self.amplitude[keep], self.ion[keep], self.medium, self.source)

    def __add__(self, other: LineList) -> LineList:
        if other.medium != self.medium:
            other = other.to_medium(self.medium)
        wave = np.concatenate([self.wavelength, other.wavelength])
        order = np.argsort(wave, kind="stable")
        return LineList(
            wave[order],
            np.concatenate([self.amplitude, other.amplitude])[order],
            np.concatenate([self.ion, other.ion])[order],
            self.medium,
            f"{self.source}+{other.source}",
        )


def _check_medium(medium: str) -> None:
    if medium not in MEDIA:
        raise InputError(
            f"medium {medium!r} is not one of {', '.join(MEDIA)}; say which the wavelengths are in"
        )


def _lines_folder():
    return resources.files("longslit").joinpath("data", "lines")


def available_lamps() -> list[str]:
    """Names of the shipped line lists (``"ArI"``, ``"HgI"``, ...), sorted."""
    names = [p.name for p in _lines_folder().iterdir() if p.name.endswith("_lines.dat")]
    return sorted(n.removesuffix("_lines.dat") for n in names)


def _parse_pipe_table(text: str, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # PypeIt's format: '| ion | wave | NIST | Instr | amplitude | Source |' with comment lines '#'.
    header: list[str] | None = None
    ions, waves, amps = [], [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            if "wave" not in header:
                raise InputError(f"{where}: the table header (line {number}) has no 'wave' column")
            continue
        row = dict(zip(header, cells, strict=False))
        try:
            waves.append(float(row["wave"]))
            amps.append(float(row["amplitude"]) if row.get("amplitude") else np.nan)
        except ValueError:
            raise InputError(
                f"{where}: line {number} does not hold a number in 'wave' or 'amplitude'"
            ) from None
        ions.append(row.get("ion", "user") or "user")
    return np.array(ions, dtype=str), np.array(waves, dtype=float), np.array(amps, dtype=float)


def _parse_columns(text: str, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # A plain list: wavelength [amplitude] [ion], whitespace separated, '#' comments.
    ions, waves, amps = [], [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").split()
        try:
            waves.append(float(fields[0]))
            amps.append(float(fields[1]) if len(fields) > 1 else np.nan)
        except ValueError:
            raise InputError(
                f"{where}: line {number} should start with a wavelength (and an optional amplitude)"
            ) from None
        ions.append(fields[2] if len(fields) > 2 else "user")
    return np.array(ions, dtype=str), np.array(waves, dtype=float), np.array(amps, dtype=float)


def _make(ions, waves, amps, medium: str, source: str, where: str) -> LineList:
    if waves.size == 0:
        raise InputError(f"{where} holds no lines")
    if not np.all(np.isfinite(waves)) or np.any(waves <= 0):
        raise InputError(f"{where} has a wavelength that is not a positive number")
    order = np.argsort(waves, kind="stable")
    return LineList(waves[order], amps[order], ions[order], medium, source)


def read_line_file(path: str | os.PathLike[str], medium: str) -> LineList:
    """Read a user's line list.

    Parameters
    ----------
    path : path-like
        Either PypeIt's pipe table (``| ion | wave | ... | amplitude | ...``) or plain columns
        ``wavelength [amplitude] [ion]``; ``#`` starts a comment. Wavelengths in Angstrom.
    medium : {"vacuum", "air"}
        What the file's wavelengths are: there is no safe default, so it must be said.

    Returns
    -------
    LineList
    """
    _check_medium(medium)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the line list: {exc.strerror or exc}", path=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("the line list is not a text file", path=str(path)) from None
    first = next(
        (ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), ""
    )
    parse = _parse_pipe_table if first.startswith("|") else _parse_columns
    ions, waves, amps = parse(text, str(path))
    return _make(ions, waves, amps, medium, path.name, str(path))


def load_lines(
    lamps: str | list[str] | tuple[str, ...],
    *,
    medium: str = "vacuum",
    wavelength_range: tuple[float, float] | None = None,
) -> LineList:
    """The shipped lines of ``lamps`` (e.g. ``["HgI", "CdI", "HeI"]``) in ``medium``.

    Parameters
    ----------
    lamps : str or sequence of str
        Lamp (ion) names as in :func:`available_lamps`; a comma-separated string works too.
        ``"Hg"`` is read as ``"HgI"``.
    medium : {"vacuum", "air"}, optional
        The medium of the returned wavelengths (the files are vacuum).
    wavelength_range : (float, float), optional
        Keep only lines in this range (Angstrom, in ``medium``).

    Returns
    -------
    LineList
    """
    _check_medium(medium)
    names = (
        [s.strip() for s in lamps.split(",")] if isinstance(lamps, str) else [str(s).strip() for s in lamps]
    )
    names = [n for n in names if n]
    if not names:
        raise InputError("no lamp named: give lamps such as HgI,CdI,HeI")
    known = available_lamps()
    lower = {k.lower(): k for k in known}
    total: LineList | None = None
    for name in names:
        key = lower.get(name.lower()) or lower.get(name.lower() + "i")
        if key is None:
            raise InputError(f"no line list for lamp {name!r}; the shipped ones are {', '.join(known)}")
        text = _lines_folder().joinpath(f"{key}_lines.dat").read_text(encoding="utf-8")
        ions, waves, amps = _parse_pipe_table(text, f"{key}_lines.dat")
        part = _make(ions, waves, amps, "vacuum", key, f"{key}_lines.dat")
        total = part if total is None else total + part
    assert total is not None
    total = total.to_medium(medium)
    if wavelength_range is not None:
        total = total.within(*wavelength_range)
    return total
