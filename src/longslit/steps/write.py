"""Built-in output formats: a FITS binary table (specutils opens it as is) and ECSV."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import __version__
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare

if TYPE_CHECKING:
    from ..pipeline import Reduction

_UNIT_ALIASES = {
    "counts": "ct",
    "count": "ct",
    "cts": "ct",
    "ct": "ct",
    "electrons": "electron",
    "electron": "electron",
    "dn": "adu",
    "adu": "adu",
}
#: Keys of the input's summary copied to the spectrum table's header. TELESCOP and INSTRUME stay out
#: of the primary header: specutils hands HST/STIS primaries to its STIS-specific reader.
_COPIED_KEYS = (
    "TARGNAME",
    "TELESCOP",
    "INSTRUME",
    "DETECTOR",
    "OPT_ELEM",
    "APERTURE",
    "CENWAVE",
    "EXPTIME",
    "ROOTNAME",
)


def flux_unit(reduction: Reduction) -> str:
    """The flux unit as astropy spells it: a calibrated spectrum's own (the flux step's), else the input's
    BUNIT (counts when absent)."""
    own = reduction.spectrum.flux_unit
    if own and own != "ct":  # "ct" is what every extraction says; BUNIT knows better
        return own
    text = str(reduction.frame.header.get("BUNIT", "counts")).strip()
    alias = _UNIT_ALIASES.get(text.lower())
    if alias:
        return alias
    from astropy import units as u

    try:
        return u.Unit(text).to_string()
    except ValueError:
        return ""


def provenance(reduction: Reduction, *, input_path: bool = False) -> dict[str, Any]:
    """What made this spectrum: input, recipe, methods with their packages and versions.

    The input is recorded by its name; its full path (which may say more about the machine and the
    user than the file should) only with ``input_path``.
    """
    recorded = {"input": Path(str(reduction.frame.source)).name}
    if input_path:
        recorded["input_path"] = str(reduction.frame.source)
    return {
        **recorded,
        "longslit_version": __version__,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "recipe_name": reduction.recipe.name,
        "recipe_digest": reduction.recipe.digest(),
        "recipe": reduction.recipe.to_dict(),
        "steps": [
            {"step": r.step, "method": r.method, "package": r.package, "version": r.version}
            for r in reduction.records
        ],
        "notes": list(reduction.frame.notes),
        "warnings": list(reduction.warnings),
        "cosmic_rays_replaced": reduction.cosmic.n_replaced,
        "background_along": reduction.background.info.get("background_along"),
        "dispersion_axis": reduction.frame.dispersion_axis,
        "wavelength_medium": reduction.frame.wavelength_medium,
        "noise_model": reduction.frame.noise_model,
        # The flux step's record (standard, reference, curve, airmasses), when it calibrated the spectrum.
        **({"flux": dict(reduction.spectrum.info["flux"])} if "flux" in reduction.spectrum.info else {}),
    }


def spectrum_table(reduction: Reduction, names: tuple[str, str, str, str, str], spectrum=None):
    """The spectrum (default the reduction's) as an astropy Table with units."""
    from astropy.table import Table

    spectrum = reduction.spectrum if spectrum is None else spectrum
    unit = flux_unit(reduction) or None
    wave_unit = "Angstrom" if spectrum.wavelength_unit == "Angstrom" else "pix"
    table = Table()
    table[names[0]] = np.asarray(spectrum.wavelength, dtype=np.float64)
    table[names[0]].unit = wave_unit
    table[names[1]] = np.asarray(spectrum.flux, dtype=np.float64)
    table[names[2]] = np.asarray(spectrum.uncertainty, dtype=np.float64)
    table[names[1]].unit = table[names[2]].unit = unit
    table[names[3]] = np.asarray(spectrum.mask, dtype=bool)
    table[names[4]] = spectrum_dq(spectrum)
    return table


def spectrum_dq(spectrum) -> np.ndarray:
    """The per-column DQ bits as written (zeros when the frame had no DQ array)."""
    if spectrum.dq is None:
        return np.zeros(len(spectrum), dtype=np.int32)
    return np.asarray(spectrum.dq, dtype=np.int32)


#: TUNIT spellings of the units longslit writes most, as astropy's Table writes them (its FITS
#: format, else its generic one): the FITS writer then needs neither astropy.table nor
#: astropy.units, a third of a second of imports. tests/test_cli.py checks this against astropy.
FITS_UNIT_SPELLINGS = {
    "ct": "count",
    "electron": "electron",
    "adu": "adu",
    "Angstrom": "Angstrom",
    "pix": "pixel",
}


def fits_unit(text: str | None) -> str | None:
    """A unit as a FITS table's TUNIT keyword holds it (what astropy's Table would write)."""
    if not text:
        return None
    if text in FITS_UNIT_SPELLINGS:
        return FITS_UNIT_SPELLINGS[text]
    from astropy import units as u

    unit = u.Unit(text)
    try:
        return unit.to_string("fits")
    except ValueError:  # not a FITS unit (e.g. electron): astropy's Table writes the generic string
        return unit.to_string()


def spectrum_hdu(reduction: Reduction, spectrum=None, name: str = "SPECTRUM"):
    """The SPECTRUM binary table (WAVELENGTH, FLUX, UNCERTAINTY, mask, DQ).

    ``spectrum`` (default the reduction's) and ``name`` give one aperture's table of several.

    The mask column is named ``mask`` because that is the name specutils' ``Spectrum.read`` looks for
    (exactly); astropy's FITS_rec finds columns whatever their case, so ``table["MASK"]`` reads it too,
    as it reads the ``MASK`` of files written before. ``DQ`` is the OR of the data-quality flags of the
    pixels the aperture touches, as in an HST x1d file.
    """
    from astropy.io import fits

    spectrum = reduction.spectrum if spectrum is None else spectrum
    unit = fits_unit(flux_unit(reduction))
    wave_unit = fits_unit("Angstrom" if spectrum.wavelength_unit == "Angstrom" else "pix")
    columns = [
        fits.Column("WAVELENGTH", "D", wave_unit, array=np.asarray(spectrum.wavelength, dtype=np.float64)),
        fits.Column("FLUX", "D", unit, array=np.asarray(spectrum.flux, dtype=np.float64)),
        fits.Column("UNCERTAINTY", "D", unit, array=np.asarray(spectrum.uncertainty, dtype=np.float64)),
        fits.Column("mask", "L", array=np.asarray(spectrum.mask, dtype=bool)),
        fits.Column("DQ", "J", array=spectrum_dq(spectrum)),
    ]
    # ``BinTableHDU.from_columns`` gives the same HDU, but BinTableHDU's constructor imports
    # astropy.table (and with it astropy.io.ascii: a tenth of a second) whenever it is given data, to
    # check for a Table. An empty HDU given its FITS_rec through the public ``data`` setter skips that;
    # tests/test_fast_paths.py checks the two write the same bytes.
    hdu = fits.BinTableHDU(name=name)
    hdu.data = fits.FITS_rec.from_columns(columns)
    if spectrum.aperture is not None:
        hdu.header["APNAME"] = (spectrum.aperture, "aperture name (in order along the slit)")
        hdu.header["APROW"] = (round(float(spectrum.position), 4), "trace row at middle column, 0-based")
        offset = spectrum.info.get("aperture_offset")
        if isinstance(offset, float):
            hdu.header["APOFFSET"] = (round(offset, 4), "rows from the reference trace")
        hdu.header["APPRIM"] = (spectrum.aperture == reduction.spectrum.aperture, "the primary aperture")
    return hdu


def aperture_hdus(reduction: Reduction) -> list:
    """One table per aperture, named after it (a single aperture: the SPECTRUM table, as always)."""
    spectra = reduction.spectrum.each()
    if len(spectra) == 1:
        return [spectrum_hdu(reduction)]
    return [spectrum_hdu(reduction, spectrum, spectrum.aperture) for spectrum in spectra]


_INPUT_PATH = Param(
    "input_path",
    "bool",
    False,
    "Record the input's full path in the output (by default only its file name).",
)


@declare(
    Param(
        "products",
        "bool",
        False,
        "Add the cleaned frame, background model, cosmic-ray mask and geometry.",
    ),
    _INPUT_PATH,
)
def write_fits(reduction: Reduction, path: Path, *, products: bool, input_path: bool) -> None:
    """FITS: primary header with provenance, a SPECTRUM binary table, optional 2D products."""
    from astropy.io import fits

    info = provenance(reduction, input_path=input_path)
    primary = fits.PrimaryHDU()
    header = primary.header
    header["ORIGIN"] = ("longslit", "software that made this file")
    header["LSVERS"] = (__version__, "longslit version")
    header["DATE"] = (info["date"], "UTC date this file was written")
    header["INFILE"] = (_header_text(info["input"]), "input frame")
    header["RECIPE"] = (info["recipe_name"], "recipe name")
    header["RECHASH"] = (info["recipe_digest"], "hash of the recipe's steps")
    for record in reduction.records:
        header[f"LS{record.step[:6].upper()}"] = (
            f"{record.method} ({record.package} {record.version})",
            f"{record.step} step method",
        )
    if "DATE-OBS" in reduction.frame.header:  # primary: astropy's WCS "fixes" it in a table header
        header["DATE-OBS"] = (reduction.frame.header["DATE-OBS"], "date of the observation")
    header["NCRREP"] = (info["cosmic_rays_replaced"], "pixels replaced by the cosmic step")
    if info.get("background_along"):
        header["SKYALONG"] = (info["background_along"], "sky fitted along pixel columns or tilted lines")
    sky_shift = getattr(reduction.products.get("wavelength"), "sky_shift", None)
    if sky_shift is not None:  # wavelength.sky_shift: the zero point moved onto the sky lines
        header["WAVESKY"] = (round(sky_shift.pixels, 4), "[pixel] zero-point shift from the sky lines")
        header["WAVESKYA"] = (round(sky_shift.angstrom, 4), "[Angstrom] the same shift")
        header["WAVESKYE"] = (round(sky_shift.error, 4), "[pixel] its uncertainty")
        header["WAVESKYN"] = (len(sky_shift.lines), "sky lines the shift is measured on")
    if "NCOMBINE" in reduction.frame.header:  # several exposures stacked by the calibrate step
        header["NCOMBINE"] = (int(reduction.frame.header["NCOMBINE"]), "exposures combined into the frame")
        header["NSTKREJ"] = (int(reduction.frame.header["NSTKREJ"]), "values rejected across them")
        if "EXPTIME" in reduction.frame.header:
            header["EXPTIME"] = (float(reduction.frame.header["EXPTIME"]), "[s] total exposure time")
    flux = info.get("flux")
    if flux:
        for key, name, comment in (("FLUXSTD", "standard", "flux standard's file"),
                                   ("FLUXREF", "reference", "its reference spectrum"),
                                   ("FLUXEXT", "extinction", "extinction curve"),
                                   ("FLUXSTDA", "standard_airmass", "standard's airmass"),
                                   ("FLUXAIRM", "airmass", "airmass the flux is corrected for"),
                                   ("FLUXEXPT", "exptime", "[s] exposure time divided by")):  # fmt: skip
            if flux.get(name) is not None:
                value = flux[name]
                text = value if isinstance(value, (int, float)) else _header_text(str(value))[:60]
                header[key] = (text, comment)
    frame = reduction.frame
    # How the input was read, so the numbers can be judged: its axes, the air or vacuum wavelengths,
    # where the uncertainties came from.
    header["DISPAXIS"] = (frame.dispersion_axis, "input's dispersion axis")
    if frame.wavelength_medium:
        header["WAVEMED"] = (frame.wavelength_medium, "wavelengths in air or vacuum")
    solution = getattr(reduction.products.get("wavelength"), "solution", None)
    if solution is not None:  # an arc solution: how good it is, to judge the wavelengths by
        header["WAVERMS"] = (round(float(solution.rms_angstrom), 5), "[Angstrom] rms of the arc solution")
        header["WAVERMSP"] = (round(float(solution.rms_pixel), 5), "[pixel] rms of the arc solution")
        header["WAVENLIN"] = (int(solution.n_used), "arc lines used by the solution")
    if frame.noise_model:  # a long string, continued over cards: where the uncertainties came from
        header["NOISEMOD"] = _header_text(frame.noise_model)
    if frame.section is not None:
        header["DATASEC"] = ("[{}:{},{}:{}]".format(*frame.section), "input pixels reduced")
    # The full recipe as JSON (long strings continue over several cards); the input's path on request.
    header["LSRECIPE"] = json.dumps(info["recipe"], separators=(",", ":"))
    if input_path:
        header["LSINPUT"] = _header_text(info["input_path"])
    for line in reduction.recipe.to_toml().splitlines():
        header.add_history(f"recipe: {line}"[:72])
    for note in info["notes"]:
        header.add_comment(f"note: {note}"[:72])
    for warning in info["warnings"]:
        header.add_comment(f"warning: {_header_text(warning)}"[:72])
    tables = aperture_hdus(reduction)
    for table in tables:
        for key in _COPIED_KEYS:
            if key in reduction.frame.header:
                table.header[key] = reduction.frame.header[key]
    if len(tables) > 1:
        header["NAPER"] = (len(tables), "apertures, one table each along the slit")
    hdus = [primary, *tables]
    if products:
        # 2D products in the input file's own orientation (a frame dispersed along NAXIS2 was turned
        # when read), so they overlay the input pixel for pixel.
        turned = frame.to_file_orientation
        hdus += [
            fits.ImageHDU(turned(reduction.cleaned.sci.astype(np.float32)), name="CLEANED"),
            fits.ImageHDU(turned(reduction.background.model.astype(np.float32)), name="BACKGROUND"),
            fits.ImageHDU(turned(reduction.cosmic.mask.astype(np.uint8)), name="CRMASK"),
            _geometry_hdu(reduction),
        ]
    fits.HDUList(hdus).writeto(path)


def _geometry_hdu(reduction: Reduction):
    from astropy.io import fits
    from astropy.table import Table

    geometry = reduction.geometry
    table = Table(
        {
            "TRACE": geometry.trace,
            "AP_LOWER": geometry.aperture.lower,
            "AP_UPPER": geometry.aperture.upper,
        }
    )
    for i, band in enumerate(geometry.background, start=1):
        table[f"BKG{i}_LOWER"], table[f"BKG{i}_UPPER"] = band.lower, band.upper
    for aperture in geometry.apertures:
        band = aperture.band
        table[f"{aperture.name}_LOWER"], table[f"{aperture.name}_UPPER"] = band.lower, band.upper
    return fits.BinTableHDU(table, name="GEOMETRY")


def _header_text(text: str) -> str:
    """FITS header values are printable ASCII: escape anything else (non-ASCII letters, newlines)."""
    from ..errors import printable

    return printable(text).encode("ascii", "backslashreplace").decode("ascii")


@declare(_INPUT_PATH)
def write_ecsv(reduction: Reduction, path: Path, *, input_path: bool) -> None:
    """ECSV: the spectrum's columns with units; provenance and the recipe in the metadata."""
    names = ("wavelength", "flux", "uncertainty", "mask", "dq")
    spectra = reduction.spectrum.each()
    if len(spectra) == 1:
        table = spectrum_table(reduction, names)
    else:
        from astropy.table import vstack

        # One table, every aperture's rows in turn, told apart by the aperture and position columns.
        parts = []
        for spectrum in spectra:
            part = spectrum_table(reduction, names, spectrum)
            part["aperture"] = spectrum.aperture
            part["position"] = float(spectrum.position)
            part["position"].unit = "pix"
            parts.append(part)
        table = vstack(parts, metadata_conflicts="silent")
        primary = reduction.spectrum.aperture
        table.meta["apertures"] = [
            {"name": s.aperture, "position": float(s.position), "primary": s.aperture == primary}
            for s in spectra
        ]
    table.meta.update(provenance(reduction, input_path=input_path))
    table.write(path, format="ascii.ecsv")


@hookimpl
def longslit_write_methods() -> list[Method]:
    return [
        Method(
            "write",
            "fits",
            "FITS binary table WAVELENGTH/FLUX/UNCERTAINTY/mask/DQ; specutils reads it directly.",
            write_fits,
            suffix=".fits",
        ),
        Method(
            "write",
            "ecsv",
            "ECSV table with units, the recipe and provenance in its header.",
            write_ecsv,
            suffix=".ecsv",
        ),
    ]
