"""Shared fixtures: the real 3C 120 frame (from ../shared/data) and seeded synthetic frames."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Snapshots of the terminal UI depend on the colour system. The environment variable is read when Textual
# is first imported, which the snapshot plugin does before this file runs; the constant is read by every
# App when it starts, so pin both (the variable for subprocesses).
os.environ["TEXTUAL_COLOR_SYSTEM"] = "truecolor"
import textual.constants

textual.constants.COLOR_SYSTEM = "truecolor"

ROOT = Path(__file__).resolve().parents[1]
#: Where the real data live: $LONGSLIT_DATA, else ../shared/data beside the project.
DATA_DIR = Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data"))
REAL_FRAME = DATA_DIR / "3c120_stis.fits.gz"
REFERENCE = DATA_DIR / "3c120_seed_reference.ecsv"


def _need(path: Path) -> Path:
    if path.exists():
        return path
    message = f"{path} is missing (set LONGSLIT_DATA to the folder holding it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"under CI the real data must be present: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def real_frame_path() -> Path:
    """Path of the real HST/STIS frame of 3C 120 (skips if absent, fails under CI)."""
    return _need(REAL_FRAME)


@pytest.fixture(scope="session")
def reference_path() -> Path:
    """Path of the tutorial's reference spectrum of 3C 120."""
    return _need(REFERENCE)


@pytest.fixture(scope="session")
def tutorial_reduction(real_frame_path):
    """The tutorial preset run on the real frame (computed once per session)."""
    import longslit

    return longslit.reduce(real_frame_path, "tutorial")


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    """Each test sees the installed plugins afresh, and none leaks a registry into the next."""
    from longslit.plugins import manager

    manager.reset_registry()
    yield
    manager.reset_registry()
