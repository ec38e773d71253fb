"""``wavelength.sky_shift``: the arc solution's zero point moved onto the science frame's sky lines (flexure).

The sky spectrum is the median of the background regions' pixels per column; its isolated emission lines
([O I] 5577, 6300, 6364, bright OH, the Hg I of street lights) are centroided and compared with where the arc
solution puts them (``longslit.numerics.skylines.measure_sky_shift``); the weighted mean offset moves the
wavelengths, ``wavelength'(x) = wavelength(x - shift)``. A shift above a pixel is warned about, and so is a
frame with no usable sky line (a wide slit turns the lines into boxes: no shift is applied then).
"""

from __future__ import annotations

import numpy as np

#: A sky-line shift beyond this many columns is more than flexure usually is: warned.
SKY_SHIFT_WARN = 1.0


def shift_note(shift) -> str:
    lines = ", ".join(f"{n} {w:.1f}" for n, w in zip(shift.names, shift.lines, strict=True))
    return (
        f"zero point moved onto {len(shift.lines)} sky line(s) ({lines}): {shift.pixels:+.3f} +- "
        f"{shift.error:.3f} px ({shift.angstrom:+.3f} Angstrom)"
    )


def refine_on_sky(frame, geometry, spectra, solution, solution_2d, medium):
    """``wavelength.sky_shift``: the arcs' wavelengths moved onto the science frame's sky lines."""
    import warnings

    from ..errors import LongslitWarning
    from ..numerics import arcs as arclib
    from ..numerics.skylines import ShiftedSolution2D, measure_sky_shift

    columns = np.arange(frame.shape[1], dtype=np.float64)
    sky = sky_spectrum(frame, geometry, solution_2d)
    # Where the sky spectrum's columns are: the arcs' solution there (the 2D one on the row the spectrum
    # was carried to; the shift is the same on every row).
    reference = float(np.median(geometry.trace))
    wavelength = solution(columns) if solution_2d is None else solution_2d(columns, reference)
    fwhm = float(np.nanmedian([arclib.find_lines(s).fwhm_lamp for s in spectra]))
    found = measure_sky_shift(sky, wavelength, medium, max_fwhm=2.0 * (fwhm if np.isfinite(fwhm) else 3.0))
    name = frame.source.rsplit("/", 1)[-1]
    if found is None:
        warnings.warn(
            f"{name}: wavelength.sky_shift found no isolated sky line ([O I], OH, Hg I) in the background "
            "regions; the zero point is the arcs'",
            LongslitWarning,
            stacklevel=2,
        )
        return None, wavelength, solution_2d
    if abs(found.pixels) > SKY_SHIFT_WARN:
        warnings.warn(
            f"{name}: the sky lines sit {found.pixels:+.2f} px ({found.angstrom:+.2f} Angstrom) from "
            f"where the arcs put them, more than flexure usually moves a spectrum ({SKY_SHIFT_WARN:g} px); "
            "check that the arcs belong to this setup (wavelength.sky_shift = false keeps the arcs' zero "
            "point)",
            LongslitWarning,
            stacklevel=2,
        )
    if solution_2d is None:
        return found, solution(columns - found.pixels), None
    shifted = ShiftedSolution2D(solution_2d, found.pixels)
    return found, shifted(columns, geometry.trace), shifted


def sky_spectrum(frame, geometry, solution_2d=None) -> np.ndarray:
    """The sky's spectrum on the trace's row, per column, from the background regions' pixels.

    With a 2D solution the pixels are carried along their lines to the trace's row and a B-spline in
    that coordinate (breakpoints every pixel) gives the spectrum unblurred by the tilt; one round of
    rejection at 5 sigma (robust) keeps cosmic rays (the step runs before the cosmic step) out. Without
    one, the median of each column's background pixels (a tilt blurs it symmetrically about the trace
    when the regions lie on both sides).
    """
    import warnings

    use = geometry.background_mask(frame.shape[0]) & ~frame.mask & np.isfinite(frame.sci)
    if solution_2d is None:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column with no background pixel: NaN
            return np.nanmedian(np.where(use, frame.sci, np.nan), axis=0)
    from ..numerics.skylines import fit_sky_spectrum, line_coordinate

    rows = np.flatnonzero(use.any(axis=1))
    if rows.size == 0:
        return np.full(frame.shape[1], np.nan)
    use = use[rows]
    reference = float(np.median(geometry.trace))
    u = line_coordinate(solution_2d, rows, frame.shape[1], reference)[use]
    values = frame.sci[rows][use].astype(np.float64)
    keep = np.ones(values.size, bool)
    for _ in range(2):
        spline = fit_sky_spectrum(u[keep], values[keep], spacing=1.0, bounds=(0.0, frame.shape[1] - 1.0))
        residual = values - spline(u)
        scale = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        keep = np.abs(residual) <= 5.0 * max(scale, 1e-12)
    return spline(np.arange(frame.shape[1], dtype=np.float64))
