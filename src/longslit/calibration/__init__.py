"""CCD calibration: overscan and trim, master bias, dark and flat, and several exposures into one.

Plain functions over numpy arrays and :class:`astropy.nddata.CCDData`; the CCD arithmetic is ccdproc's.
Rows are the slit and columns the dispersion, as everywhere in longslit.
"""

from __future__ import annotations

from .ccd import (
    OVERSCAN_METHODS,
    Calibrated,
    CCDParams,
    OverscanFit,
    RawFrame,
    apply_masters,
    calibrate,
    file_hash,
    overscan_correct,
    read_raw,
)
from .masters import Master, build_master_bias, build_master_dark, build_master_flat, cache_key
from .response import Response, normalize_flat
from .sections import Amplifier, Section, amplifiers_from_header, amplifiers_from_sections
from .stack import SETUP_KEYWORDS, Stacked, check_combinable, measure_shift, stack_exposures
from .store import MASTER_CACHE_ENV, MasterCache, read_master, write_master

__all__ = [
    "MASTER_CACHE_ENV",
    "OVERSCAN_METHODS",
    "SETUP_KEYWORDS",
    "Amplifier",
    "CCDParams",
    "Calibrated",
    "Master",
    "MasterCache",
    "OverscanFit",
    "RawFrame",
    "Response",
    "Section",
    "Stacked",
    "amplifiers_from_header",
    "amplifiers_from_sections",
    "apply_masters",
    "build_master_bias",
    "build_master_dark",
    "build_master_flat",
    "cache_key",
    "calibrate",
    "check_combinable",
    "file_hash",
    "measure_shift",
    "normalize_flat",
    "overscan_correct",
    "read_master",
    "read_raw",
    "stack_exposures",
    "write_master",
]
