"""Seeded synthetic long-slit frames with known truth.

The frames mimic the layout of an HST/STIS G430L long-slit exposure (rows = spatial/slit
axis, columns = dispersion axis) so that recipes written for real data also run on them.
Every ingredient (source, sky, noise, cosmic rays, bad columns) is recorded in a
:class:`Truth` object and, in compact form, in ``TRUTH``/``TRUTH_CR`` extensions of the file.

Only numpy, scipy and astropy.io.fits are used; nothing here touches the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.special import erf

__all__ = ["SyntheticFrame", "Truth", "make_frame", "read_truth", "sky_line_set", "write_example"]

#: Exposure time written to the headers, seconds (a typical STIS G430L exposure).
EXPTIME = 720.0
#: STIS "bad detector pixel" DQ bit, used to flag bad columns.
DQ_BAD_PIXEL = 4
#: STIS default serious-DQ mask (all bits except 1024).
SDQFLAGS = 31743

# Default emission lines as (fraction of the column range, peak / continuum, sigma in pixels).
# The fractions put them where the redshifted (z = 0.033) H-gamma, H-beta and [O III] lines
# of 3C 120 fall in the default G430L band; expressing them as fractions keeps them inside
# the band whatever WCS the caller chooses.
_DEFAULT_LINES = ((0.571, 0.4, 2.5), (0.763, 1.0, 2.5), (0.799, 0.8, 1.5), (0.817, 2.4, 1.5))
# Cosmic-ray track steps: the 8 neighbour directions.
_STEPS = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)])


@dataclass(frozen=True)
class Truth:
    """Noiseless ingredients of a synthetic frame (arrays are read-only).

    Attributes
    ----------
    wavelength, flux, trace : numpy.ndarray
        Per column: wavelength (Angstrom, as the header WCS), total source counts (exact sum of
        ``source`` over all rows) and source centre row (pixel centres at integer rows).
    source, sky : numpy.ndarray
        ``(nrows, ncols)`` noiseless source and sky images, counts (never written to files).
    cosmic_mask : numpy.ndarray
        ``(nrows, ncols)`` bool, pixels hit by injected cosmic rays.
    bad_columns : tuple of int
        Columns flagged with DQ bit 4.
    fwhm, gain, read_noise, seed
        Spatial FWHM (rows), electrons per count, read noise (counts rms), RNG seed.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    trace: np.ndarray
    source: np.ndarray
    sky: np.ndarray
    cosmic_mask: np.ndarray
    bad_columns: tuple[int, ...]
    fwhm: float
    gain: float
    read_noise: float
    seed: int

    @property
    def model(self) -> np.ndarray:
        """Noiseless counts model ``source + sky``."""
        return self.source + self.sky


@dataclass(frozen=True)
class SyntheticFrame:
    """A synthetic frame: the HDU list as it would be written, plus its truth.

    Attributes
    ----------
    hdul : astropy.io.fits.HDUList
        PRIMARY (header only), SCI (float32), ERR (float32), DQ (int16), TRUTH (table) and
        TRUTH_CR (uint8 cosmic-ray mask).
    truth : Truth
        Noiseless ingredients, including the in-memory-only source and sky images.
    """

    hdul: fits.HDUList
    truth: Truth

    def write(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the frame to ``path`` (gzip-compressed if the name ends in ``.gz``).

        Parameters
        ----------
        path : str or path-like
            Output file name.
        overwrite : bool, optional
            Replace an existing file instead of raising :class:`FileExistsError`.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        # astropy converts to big-endian and gzips by file name, exactly as for real data.
        self.hdul.writeto(path, overwrite=overwrite)
        return path


def _wcs_cards(crval1: float, cd1_1: float, crpix1: float) -> list[tuple[str, object, str]]:
    return [
        ("WCSAXES", 2, "number of WCS axes"),
        ("CTYPE1", "WAVE", "dispersion axis"),
        ("CUNIT1", "angstrom", ""),
        ("CRVAL1", crval1, "wavelength at reference pixel"),
        ("CRPIX1", crpix1, "reference pixel (1-based)"),
        ("CD1_1", cd1_1, "Angstrom per column"),
        ("CTYPE2", "LINEAR", "spatial axis, 1-based row"),
        ("CRVAL2", 1.0, ""),
        ("CRPIX2", 1.0, ""),
        ("CD2_2", 1.0, "rows per row"),
        ("CD1_2", 0.0, ""),
        ("CD2_1", 0.0, ""),
    ]


def make_frame(
    shape: tuple[int, int] = (512, 511),
    *,
    seed: int = 0,
    trace_center: float = 254.5,
    tilt: float = 0.0,
    curvature: float = 0.0,
    fwhm: float = 3.0,
    continuum: float = 2000.0,
    lines: tuple[tuple[float, float, float], ...] | None = None,
    sky_level: float = 20.0,
    read_noise: float = 4.0,
    gain: float = 1.0,
    n_cosmics: int = 300,
    bad_columns: tuple[int, ...] = (),
    crval1: float = 4300.0,
    cd1_1: float = 5.492,
    crpix1: float = 258.7,
    noise: bool = True,
    sky_lines: tuple[tuple[float, float, float], ...] = (),
) -> SyntheticFrame:
    """Build a seeded synthetic long-slit frame with known truth.

    Parameters
    ----------
    shape : tuple of int, optional
        ``(nrows, ncols)``; both at least 8. Default mimics STIS CCD 1x1 G430L (512 x 511).
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`; same arguments give bit-identical arrays.
    trace_center : float, optional
        Trace row at the middle column ``(ncols - 1) / 2``.
    tilt, curvature : float, optional
        Linear (rows/column) and quadratic (rows/column**2) trace terms about the middle column.
    fwhm : float, optional
        Spatial FWHM of the Gaussian source profile, rows.
    continuum : float, optional
        Source counts per column (summed over rows) of the continuum at mid-band. The continuum
        rises linearly to the blue, from 0.75x to 1.25x this value across the band.
    lines : tuple of (wavelength, peak, sigma), optional
        Gaussian emission lines (Angstrom, counts per column at the peak, Angstrom). ``None``
        gives four default lines (H-gamma, H-beta, [O III] of 3C 120) placed at fixed fractions
        of the band with peaks proportional to ``continuum``; ``()`` gives none.
    sky_level : float, optional
        Mean sky counts per pixel; the sky is quadratic in row plus a linear column ramp.
    read_noise : float, optional
        Read noise, counts rms.
    gain : float, optional
        Electrons per count.
    n_cosmics : int, optional
        Number of cosmic-ray hits (1-3 pixel tracks), anywhere on the frame.
    bad_columns : tuple of int, optional
        Columns filled with garbage and flagged with DQ bit 4 over all rows.
    crval1, cd1_1, crpix1 : float, optional
        Linear dispersion WCS: ``wavelength = crval1 + (col + 1 - crpix1) * cd1_1``.
    noise : bool, optional
        Add Poisson and read noise. Cosmic rays and bad columns are added either way.
    sky_lines : tuple of (wavelength, peak, sigma), optional
        Sky emission lines: Gaussians in wavelength (Angstrom, counts per pixel at the peak, Angstrom)
        filling the slit, with the sky's own variation along it (so a quadratic in row describes
        them). Default none. :func:`sky_line_set` gives a night-sky-like set.

    Returns
    -------
    SyntheticFrame

    Notes
    -----
    ERR is ``sqrt(model / gain + read_noise**2)`` evaluated on the NOISELESS model, i.e. the
    true expected sigma rather than an estimate from the noisy data, so tests of uncertainty
    propagation can be exact. Cosmic-ray pixels are set to ``max(noisy, model)`` plus 25-300
    times ``max(ERR, 1)``, guaranteeing each is at least 25 ERR above the model; they are not
    flagged in DQ (finding them is the pipeline's job).
    """
    lines_given = () if lines is None else tuple(tuple(line) for line in lines)
    bad_columns = tuple(int(c) for c in bad_columns)
    ok_shape = len(shape) == 2 and min(shape) >= 8
    checks = {
        f"shape must be (nrows, ncols) with both >= 8, got {shape!r}": ok_shape,
        f"fwhm must be > 0, got {fwhm!r}": fwhm > 0,
        f"gain must be > 0, got {gain!r}": gain > 0,
        f"read_noise must be >= 0, got {read_noise!r}": read_noise >= 0,
        f"continuum must be >= 0, got {continuum!r}": continuum >= 0,
        f"sky_level must be >= 0, got {sky_level!r}": sky_level >= 0,
        f"n_cosmics must be >= 0, got {n_cosmics!r}": n_cosmics >= 0,
        f"bad_columns must lie in 0..ncols-1, got {bad_columns!r}": ok_shape
        and all(0 <= c < shape[1] for c in bad_columns),
        f"lines must be (wavelength, peak, sigma > 0) triples, got {lines!r}": all(
            len(line) == 3 and line[2] > 0 for line in lines_given
        ),
        f"sky_lines must be (wavelength, peak >= 0, sigma > 0) triples, got {sky_lines!r}": all(
            len(line) == 3 and line[1] >= 0 and line[2] > 0 for line in sky_lines
        ),
    }
    for message, ok in checks.items():
        if not ok:
            raise ValueError(message)
    nrows, ncols = (int(n) for n in shape)
    # Independent streams so that e.g. noise=False leaves cosmic-ray positions unchanged.
    rng_noise, rng_cr, rng_bad = np.random.default_rng(seed).spawn(3)

    cols = np.arange(ncols, dtype=np.float64)
    rows = np.arange(nrows, dtype=np.float64)
    xc = (ncols - 1) / 2.0
    x = cols - xc
    wavelength = crval1 + (cols + 1.0 - crpix1) * cd1_1
    trace = trace_center + tilt * x + curvature * x**2

    if lines is None:
        # Place the default lines by column fraction so they stay in band for any WCS.
        line_cols = np.array([f for f, _, _ in _DEFAULT_LINES]) * (ncols - 1)
        lines_used = tuple(
            (float(crval1 + (c + 1.0 - crpix1) * cd1_1), p * continuum, s * abs(cd1_1))
            for c, (_, p, s) in zip(line_cols, _DEFAULT_LINES, strict=True)
        )
    else:
        lines_used = lines_given
    spectrum = continuum * (1.0 - 0.25 * x / max(xc, 1.0))
    for wave0, peak, sigma in lines_used:
        spectrum = spectrum + peak * np.exp(-0.5 * ((wavelength - wave0) / sigma) ** 2)

    # Integrate the Gaussian over each pixel [row - 0.5, row + 0.5] so the profile sums to 1
    # and its flux-weighted centroid equals the trace (not true of point sampling).
    scale = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0))) * np.sqrt(2.0)
    upper = erf((rows[:, None] + 0.5 - trace[None, :]) / scale)
    lower = erf((rows[:, None] - 0.5 - trace[None, :]) / scale)
    source = 0.5 * (upper - lower) * spectrum[None, :]
    flux = source.sum(axis=0)

    # Sky: quadratic in row + linear column ramp; the r**2 - 1/3 term has ~zero mean so the
    # frame mean stays ~sky_level, and the coefficients keep it >= 0.78 * sky_level.
    r = (rows - (nrows - 1) / 2.0) / ((nrows - 1) / 2.0)
    c = x / max(xc, 1.0)
    sky = sky_level * (1.0 + 0.2 * (r[:, None] ** 2 - 1.0 / 3.0) + 0.05 * r[:, None] + 0.1 * c[None, :])
    if sky_lines:
        emission = np.zeros(ncols)
        for wave0, peak, sigma in sky_lines:
            emission += peak * np.exp(-0.5 * ((wavelength - wave0) / sigma) ** 2)
        along = 1.0 + 0.2 * (r**2 - 1.0 / 3.0) + 0.05 * r  # the sky's (the slit's) variation along it
        sky = sky + along[:, None] * emission[None, :]

    model = source + sky
    err = np.sqrt(model / gain + read_noise**2)
    if noise:
        sci = rng_noise.poisson(model * gain) / gain
        sci = sci + rng_noise.normal(0.0, read_noise, size=model.shape)
    else:
        sci = model.copy()

    dq = np.zeros((nrows, ncols), dtype=np.int16)
    if bad_columns:
        # Hot, noisy columns well above anything physical in the frame.
        level = max(5000.0, 10.0 * float(model.max()))
        garbage = level * (1.0 + 0.1 * rng_bad.standard_normal((nrows, len(bad_columns))))
        sci[:, list(bad_columns)] = garbage
        dq[:, list(bad_columns)] |= DQ_BAD_PIXEL

    # Cosmic rays: random start, 1-3 pixel track in one of 8 directions, clipped at edges.
    # Everything is drawn for the full (n, 3) grid so the draws do not depend on clipping.
    start_r = rng_cr.integers(0, nrows, n_cosmics)
    start_c = rng_cr.integers(0, ncols, n_cosmics)
    length = rng_cr.choice([1, 2, 3], size=n_cosmics, p=[0.5, 0.3, 0.2])
    step = _STEPS[rng_cr.integers(0, len(_STEPS), n_cosmics)].reshape(n_cosmics, 2)
    nsig = rng_cr.uniform(25.0, 300.0, size=(n_cosmics, 3))
    k = np.arange(3)
    rr = start_r[:, None] + k * step[:, :1]
    cc = start_c[:, None] + k * step[:, 1:]
    ok = (k < length[:, None]) & (rr >= 0) & (rr < nrows) & (cc >= 0) & (cc < ncols)
    rr, cc = rr[ok], cc[ok]
    hits = np.zeros((nrows, ncols))
    # The ERR floor keeps hits visible where ERR ~ 0 (no sky, no read noise).
    np.add.at(hits, (rr, cc), nsig[ok] * np.maximum(err[rr, cc], 1.0))
    cosmic_mask = hits > 0
    sci = np.where(cosmic_mask, np.maximum(sci, model) + hits, sci)

    arrays = dict(wavelength=wavelength, flux=flux, trace=trace, source=source, sky=sky)
    arrays["cosmic_mask"] = cosmic_mask
    for array in arrays.values():
        array.setflags(write=False)  # Truth is shared by reference; keep it tamper-proof.
    truth = Truth(
        **arrays,
        bad_columns=bad_columns,
        fwhm=float(fwhm),
        gain=float(gain),
        read_noise=float(read_noise),
        seed=int(seed),
    )
    params = {
        "shape": (nrows, ncols), "seed": seed, "trace_center": trace_center, "tilt": tilt,
        "curvature": curvature, "fwhm": fwhm, "continuum": continuum, "sky_level": sky_level,
        "read_noise": read_noise, "gain": gain, "n_cosmics": n_cosmics,
        "bad_columns": bad_columns, "noise": noise, "sky_lines": len(sky_lines),
        "lines": ", ".join(f"({w:.2f}, {p:.6g}, {s:.4g})" for w, p, s in lines_used) or "none",
    }  # fmt: skip
    hdul = _build_hdul(truth, sci, err, dq, params, n_cosmics, (crval1, cd1_1, crpix1))
    return SyntheticFrame(hdul=hdul, truth=truth)


def sky_line_set(
    ncols: int = 511,
    *,
    count: int = 12,
    peak: float = 400.0,
    crval1: float = 4300.0,
    cd1_1: float = 5.492,
    crpix1: float = 258.7,
    seed: int = 0,
) -> tuple[tuple[float, float, float], ...]:
    """Night-sky-like emission lines for :func:`make_frame`'s ``sky_lines``: unresolved, of mixed strength.

    ``count`` lines at seeded positions across the band (kept away from its ends), peaks from 0.1 to
    1 times ``peak`` counts per pixel (log-uniform), each as wide as the instrument resolves (sigma 1.1
    columns), on the same linear WCS as :func:`make_frame`'s arguments.
    """
    rng = np.random.default_rng(seed)
    columns = np.sort(rng.uniform(0.05, 0.95, count)) * (ncols - 1)
    peaks = peak * 10.0 ** rng.uniform(-1.0, 0.0, count)
    return tuple(
        (float(crval1 + (col + 1.0 - crpix1) * cd1_1), float(p), float(1.1 * abs(cd1_1)))
        for col, p in zip(columns, peaks, strict=True)
    )


def _build_hdul(truth, sci, err, dq, params, n_cosmics, wcs) -> fits.HDUList:
    primary = fits.PrimaryHDU()
    ph = primary.header
    ph["ORIGIN"] = ("longslit.testing", "synthetic frame, not real data")
    ph["TARGNAME"] = "SYNTHETIC"
    ph["INSTRUME"] = "LONGSLIT-SIM"
    ph["OPT_ELEM"] = "G430L"
    ph["DETECTOR"] = "CCD"
    ph["APERTURE"] = "52X0.2"
    ph["EXPTIME"] = (EXPTIME, "exposure time, s")
    ph["CCDGAIN"] = (truth.gain, "electrons per count")
    ph["READNSE"] = (truth.read_noise, "read noise, counts rms")
    ph["SIMSEED"] = (truth.seed, "longslit.testing.make_frame seed")
    ph.add_comment(f"Synthetic long-slit frame from longslit.testing.make_frame, seed={truth.seed}")
    for key, value in params.items():
        ph.add_comment(f"{key} = {value if isinstance(value, str) else repr(value)}")

    def image(data, name, bunit):
        hdu = fits.ImageHDU(data, name=name)
        hdu.header["EXTVER"] = 1
        if bunit:
            hdu.header["BUNIT"] = bunit
        hdu.header.extend(_wcs_cards(*wcs))
        hdu.header["EXPTIME"] = (EXPTIME, "exposure time, s")
        return hdu

    sci_hdu = image(sci.astype(np.float32), "SCI", "COUNTS")
    sci_hdu.header["SDQFLAGS"] = (SDQFLAGS, "serious data quality flags")
    err_hdu = image(err.astype(np.float32), "ERR", "COUNTS")
    dq_hdu = image(dq, "DQ", "")

    table = fits.BinTableHDU.from_columns(
        [
            fits.Column("WAVELENGTH", "D", unit="Angstrom", array=truth.wavelength),
            fits.Column("FLUX", "D", unit="count", array=truth.flux),
            fits.Column("TRACE", "D", unit="pixel", array=truth.trace),
        ],
        name="TRUTH",
    )
    th = table.header
    th["FWHM"] = (truth.fwhm, "spatial FWHM of source, rows")
    th["GAIN"] = (truth.gain, "electrons per count")
    th["RDNOISE"] = (truth.read_noise, "read noise, counts rms")
    th["SEED"] = (truth.seed, "make_frame seed")
    th["NCOSMIC"] = (n_cosmics, "number of cosmic-ray hits injected")
    th["NBADCOL"] = (len(truth.bad_columns), "number of bad columns (DQ bit 4)")
    cr_hdu = fits.ImageHDU(truth.cosmic_mask.astype(np.uint8), name="TRUTH_CR")
    return fits.HDUList([primary, sci_hdu, err_hdu, dq_hdu, table, cr_hdu])


def write_example(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write the built-in example frame (``make_frame()`` defaults, seed 0) to ``path``.

    Parameters
    ----------
    path : str or path-like
        Output file name (``.gz`` compresses).
    overwrite : bool, optional
        Replace an existing file; otherwise :class:`FileExistsError` is raised.

    Returns
    -------
    pathlib.Path
    """
    return make_frame().write(path, overwrite=overwrite)


def read_truth(path: str | os.PathLike[str]) -> dict:
    """Read the truth stored in a file written by :meth:`SyntheticFrame.write`.

    Parameters
    ----------
    path : str or path-like
        A synthetic frame file (optionally gzipped).

    Returns
    -------
    dict
        ``wavelength``, ``flux``, ``trace`` (float64 arrays, one per column), ``cosmic_mask``
        (bool image), and scalars ``fwhm``, ``gain``, ``read_noise``, ``seed``, ``n_cosmics``.
        The source and sky images are not stored in files.
    """
    with fits.open(path) as hdul:
        table = hdul["TRUTH"]
        header = table.header
        return {
            "wavelength": np.array(table.data["WAVELENGTH"], dtype=np.float64),
            "flux": np.array(table.data["FLUX"], dtype=np.float64),
            "trace": np.array(table.data["TRACE"], dtype=np.float64),
            "cosmic_mask": np.array(hdul["TRUTH_CR"].data, dtype=bool),
            "fwhm": float(header["FWHM"]),
            "gain": float(header["GAIN"]),
            "read_noise": float(header["RDNOISE"]),
            "seed": int(header["SEED"]),
            "n_cosmics": int(header["NCOSMIC"]),
        }
