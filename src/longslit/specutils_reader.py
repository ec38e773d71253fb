"""A specutils reader for longslit's FITS files: ``SpectrumList.read`` gives every aperture.

Importing this module registers the reader (format ``"longslit"``) with specutils::

    import longslit.specutils_reader                   # once, before reading
    from specutils import SpectrumList

    spectra = SpectrumList.read("frame_spectrum.fits")  # one Spectrum per aperture, along the slit

specutils' own ``tabular-fits`` reader gives a ``SpectrumList`` of the first table only; this one
(a higher priority, chosen for files whose primary header says ``ORIGIN = 'longslit'``) gives one
``Spectrum`` per spectrum table (``SPECTRUM``, or ``AP1``, ``AP2``, ...), each read exactly as
``Spectrum.read(path, hdu=N)`` reads it (flux, ``StdDevUncertainty``, mask and units), with its table
header, holding ``APNAME``, ``APROW``, ... in ``meta["header"]`` and the primary header in
``meta["primary_header"]``. ``Spectrum.read(path)`` is left to specutils as before (the first table).

specutils 2.4 has no entry points for readers, so importing specutils alone cannot find this one.
To have it without the import, put a file ``~/.specutils/longslit.py`` holding the line
``import longslit.specutils_reader``: specutils runs the Python files of that folder when it is
imported. longslit itself never imports specutils (it is not one of its dependencies).
"""

from __future__ import annotations

from typing import Any

from astropy.io import fits
from specutils import SpectrumList
from specutils.io.default_loaders.tabular_fits import tabular_fits_loader
from specutils.io.parsing_utils import read_fileobj_or_hdulist
from specutils.io.registers import data_loader

#: Higher than specutils' ``tabular-fits`` (6), which also recognizes the file.
PRIORITY = 20
#: Table names of longslit's spectra: ``SPECTRUM`` (one aperture) or the apertures' names.
_SPECTRUM_TABLE = "SPECTRUM"


def _spectrum_tables(hdulist: fits.HDUList) -> list[int]:
    """Indices of the spectrum tables: every binary table with FLUX and WAVELENGTH columns that is
    named SPECTRUM or carries an APNAME (not the GEOMETRY table of the 2D products)."""
    found = []
    for index, hdu in enumerate(hdulist):
        if not isinstance(hdu, fits.BinTableHDU):
            continue
        if hdu.name != _SPECTRUM_TABLE and "APNAME" not in hdu.header:
            continue
        names = {name.upper() for name in hdu.columns.names}
        if {"WAVELENGTH", "FLUX"} <= names:
            found.append(index)
    return found


def identify_longslit(origin: str, *args: Any, **kwargs: Any) -> bool:
    """A FITS file longslit wrote: ``ORIGIN = 'longslit'`` and at least one spectrum table."""
    if origin != "read":
        return False
    with read_fileobj_or_hdulist(*args, **kwargs) as hdulist:
        return hdulist[0].header.get("ORIGIN") == "longslit" and bool(_spectrum_tables(hdulist))


@data_loader("longslit", identifier=identify_longslit, dtype=SpectrumList, priority=PRIORITY, force=True)
def longslit_spectrum_list(file_obj: Any, **kwargs: Any) -> SpectrumList:
    """Every aperture's spectrum of a longslit FITS file, in order along the slit.

    Each is what ``Spectrum.read(file_obj, hdu=N)`` gives for table N (specutils' ``tabular-fits``
    reader), with its table's header in ``meta["header"]`` (``APNAME``, ``APROW``, ``APOFFSET``,
    ``APPRIM`` when the file holds several apertures) and the primary header in
    ``meta["primary_header"]``.
    """
    spectra = SpectrumList()
    with read_fileobj_or_hdulist(file_obj, **kwargs) as hdulist:
        primary = hdulist[0].header.copy()
        for index in _spectrum_tables(hdulist):
            spectrum = tabular_fits_loader(hdulist, hdu=index, store_data_header=True)
            spectrum.meta["primary_header"] = primary
            spectra.append(spectrum)
    return spectra
