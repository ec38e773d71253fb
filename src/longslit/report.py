"""What a reduction came to, in numbers and in one line: the same for every face.

The command line's report line and ``--json``, the batch manifest and the terminal UI's figures all come
from :func:`summarize`, so they cannot disagree (the median S/N, for one, is over the columns that are
not masked, everywhere). Output names come from the write method's declared suffix
(:attr:`Method.file_suffix`), so a plugin's writer names its files the same way from every face.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import printable
from .output import safe_name

if TYPE_CHECKING:
    from .frame import Frame
    from .pipeline import Reduction
    from .plugins.manager import Registry
    from .products import Spectrum

#: What a file name may end with that is not part of the frame's name.
_STRIP_SUFFIXES = (".gz", ".fz", ".bz2", ".fits", ".fit", ".fts")


def median_snr(spectrum: Spectrum) -> float | None:
    """Median of flux / uncertainty over the columns not masked (:meth:`Spectrum.median_snr`)."""
    return spectrum.median_snr()


def summarize(reduction: Reduction) -> dict[str, Any]:
    """The numbers every face shows for a reduction (and ``--json`` and the manifest carry)."""
    spectrum = reduction.spectrum
    summary = {
        "recipe": reduction.recipe.name,
        "recipe_digest": reduction.recipe.digest(),
        "columns": len(spectrum),
        "masked_columns": int(spectrum.mask.sum()),
        "cosmic_rays_replaced": reduction.cosmic.n_replaced,
        "wavelength_unit": spectrum.wavelength_unit,
        "wavelength_range": [float(spectrum.wavelength[0]), float(spectrum.wavelength[-1])],
        # None (JSON null) when no uncertainties are known: NaN is not valid JSON.
        "median_snr": median_snr(spectrum),
        "seconds": {r.step: round(r.seconds, 4) for r in reduction.records},
        "methods": {r.step: f"{r.method} ({r.package} {r.version})" for r in reduction.records},
        **({"apertures": apertures_summary(reduction)} if spectrum.apertures else {}),
    }
    solution = wavelength_solution(reduction)
    if solution:
        summary["wavelength_solution"] = solution
    stacked = getattr(reduction.products.get("calibration"), "stacked", None)
    if stacked is not None:  # several exposures (files or imsets) combined by the calibrate step
        summary["stacked"] = {
            "exposures": len(stacked.info["exptimes"]),
            "exptime": float(stacked.exptime) if stacked.info.get("timed", True) else None,
            "rejected": stacked.n_rejected,
            "rejected_per_exposure": list(stacked.info["per_exposure"]),
            "shifts": list(stacked.info["shifts"]),
            **({"files": list(stacked.info["files"])} if "files" in stacked.info else {}),
        }
    return summary


def wavelength_solution(reduction: Reduction) -> dict[str, Any]:
    """How good the arc solution is (rms, lines, medium), or {} when the wavelengths came otherwise."""
    made = reduction.products.get("wavelength")
    solution = getattr(made, "solution", None)
    if solution is None:
        return {}
    out = {
        "method": made.method,
        "rms_angstrom": round(float(solution.rms_angstrom), 5),
        "rms_pixel": round(float(solution.rms_pixel), 5),
        "lines_used": int(solution.n_used),
        "lines_rejected": len(solution.rejected_pixels),
        "medium": solution.medium,
        "arcs": [str(path) for path in made.files],
    }
    if made.solution_2d is not None:
        out["rms_pixel_2d"] = round(float(made.solution_2d.rms_pixel), 5)
    shift = getattr(made, "sky_shift", None)
    if shift is not None:  # wavelength.sky_shift: the zero point moved onto the sky lines
        out["sky_shift"] = {
            "pixel": round(shift.pixels, 4),
            "angstrom": round(shift.angstrom, 4),
            "error_pixel": round(shift.error, 4),
            "lines": [round(w, 3) for w in shift.lines],
        }
    return out


def arc_catalogue(params: dict[str, Any]) -> list[tuple[float, str]]:
    """The catalogue lines ``(wavelength, ion)`` of the wavelength step's lamps (``params``: its
    parameters), for the Identify screen's completion; [] when they name none that can be read."""
    from .errors import LongslitError
    from .steps.wavelength import catalogue

    try:
        waves, ions = catalogue(
            str(params.get("lamps", "")),
            str(params.get("medium", "vacuum")),
            list(params.get("line_list") or []),
        )
    except (LongslitError, ValueError, OSError):
        return []
    return [(float(w), str(i)) for w, i in zip(waves, ions, strict=True)]


def apertures_summary(reduction: Reduction) -> list[dict[str, Any]]:
    """Per aperture of a geometry with several: its name, place on the slit, median S/N, masked columns."""
    primary = reduction.spectrum.aperture
    listed = []
    for spectrum in reduction.spectrum.each():
        entry = {
            "name": spectrum.aperture,
            "position": None if spectrum.position is None else round(float(spectrum.position), 3),
            "primary": spectrum.aperture == primary,
            "median_snr": median_snr(spectrum),
            "masked_columns": int(spectrum.mask.sum()),
        }
        offset = spectrum.info.get("aperture_offset")
        if isinstance(offset, float):
            entry["offset"] = round(offset, 3)
        listed.append(entry)
    return listed


def spatial_profile(frame: Frame) -> np.ndarray:
    """The median of each row over the columns (NaN ignored): the profile the faces plot."""
    from .numerics.trace import nanmedian_rows

    return nanmedian_rows(frame.sci)[:, 0]  # = np.nanmedian(axis=1), without its slow path


def snr_text(value: float | None) -> str:
    """A median S/N as the faces print it."""
    return "unknown" if value is None else f"{value:.1f}"


def report_line(source: str, summary: dict[str, Any]) -> str:
    """The one line the command line prints per reduced file."""
    low, high = summary["wavelength_range"]
    unit = "A" if summary["wavelength_unit"] == "Angstrom" else "pix"
    wrote = f" -> {printable(summary['output'])}" if summary.get("output") else ""
    return (
        f"{printable(source)}{wrote}: {summary['columns']} columns, {low:.1f}-{high:.1f} {unit}, "
        f"{summary['cosmic_rays_replaced']} cosmic-ray pixels replaced, "
        f"{summary['masked_columns']} columns masked, median S/N {snr_text(summary['median_snr'])}"
        + (
            f", {summary['stacked']['exposures']} exposures stacked "
            f"({summary['stacked']['rejected']} cosmic-ray values rejected across them)"
            if summary.get("stacked")
            else ""
        )
    )


def strip_suffixes(name: str) -> str:
    """``frame.fits.gz`` -> ``frame``: a file name without its FITS and compression suffixes."""
    stripped = True
    while stripped:
        stripped = False
        for suffix in _STRIP_SUFFIXES:
            if name.lower().endswith(suffix):
                name, stripped = name[: -len(suffix)], True
    return name


def frame_stem(source: str | os.PathLike | None) -> str:
    """``night1/frame.fits.gz`` -> ``frame``: the name outputs are named after."""
    if source is None:
        return "longslit_example"
    return safe_name(strip_suffixes(Path(os.fspath(source)).name)) or "frame"


def output_suffix(fmt: str, registry: Registry | None = None) -> str:
    """The suffix of the files write method ``fmt`` writes (its declaration; ``.fmt`` if unknown)."""
    from .errors import LongslitError
    from .plugins.manager import get_registry

    try:
        return (registry or get_registry()).method("write", fmt).file_suffix
    except LongslitError:
        return f".{fmt}"


def output_name(source: str | os.PathLike | None, fmt: str, registry: Registry | None = None) -> str:
    """``night1/frame.fits.gz`` -> ``frame_spectrum.fits`` (the write method's suffix)."""
    return f"{frame_stem(source)}_spectrum{output_suffix(fmt, registry)}"


def recipe_name(source: str | os.PathLike | None) -> str:
    """The recipe file saved beside a spectrum: ``frame_recipe.toml``."""
    return f"{frame_stem(source)}_recipe.toml"


def format_from_suffix(path: str | None, registry: Registry | None = None) -> str | None:
    """The write method whose declared suffix ``path`` ends with (``-o x.ecsv`` means ECSV), if any."""
    if not path:
        return None
    from .plugins.manager import get_registry

    lower = path.lower()
    matches = [
        m for m in (registry or get_registry()).methods("write") if lower.endswith(m.file_suffix.lower())
    ]
    if not matches:
        return None
    return max(matches, key=lambda m: len(m.file_suffix)).name  # ".spec.fits" beats ".fits"
