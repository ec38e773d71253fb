"""Replays every input the reader fuzzer (scripts/fuzz_reader.py) ever crashed on, and checks the fuzzer.

What the fuzzer found (each input is in tests/hardening/crashes/, with a .txt saying how it was made):

- ``VerifyError: Unparsable card (CRVAL1)`` (also CD1_1, CRPIX1, CTYPE1), from a flipped byte in a
  WCS card of a plain, gzip, bzip2 or fpack file: astropy parses a card only when its value is first
  asked for, which for the WCS was after the reader's guard. Fixed in ``steps/read.py`` (``_headers``):
  every card of the SCI and primary headers is parsed inside the guard; astropy's silentfix repairs
  what it can, a card it cannot is left out, each with a note (the wavelengths then fall back to
  column numbers, also with a note).

The fuzzing itself runs outside the suite, for a bounded time: ``python scripts/fuzz_reader.py --seconds 60``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CRASHES = Path(__file__).with_name("crashes")


def _load_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_reader", ROOT / "scripts" / "fuzz_reader.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzzer = _load_fuzzer()
SAVED = sorted(p for p in CRASHES.iterdir() if not p.name.endswith(".txt")) if CRASHES.is_dir() else []


def _suffix(path: Path) -> str:
    return "".join(path.suffixes[-2:]) if path.name.endswith((".gz", ".bz2", ".fz")) else path.suffix


@pytest.mark.parametrize("path", SAVED, ids=[p.name for p in SAVED])
def test_a_past_crash_is_now_a_frame_or_a_clear_refusal(path, tmp_path):
    assert path.with_name(path.name + ".txt").is_file(), "each saved crash says how it was found"
    assert fuzzer.check(path.read_bytes(), _suffix(path), tmp_path) is None


def test_there_are_saved_crashes():
    assert SAVED, "tests/hardening/crashes/ holds the fuzzer's past crashes"


def test_the_oracle_catches_a_crash_a_hang_and_a_broken_frame(tmp_path, monkeypatch):
    from longslit.frame import Frame
    from longslit.steps import read

    raw, suffix = fuzzer.seeds()["plain"]
    assert fuzzer.check(raw, suffix, tmp_path) is None
    real = read.read_fits

    def crash(path, **kwargs):
        raise ZeroDivisionError("a bug")

    def hang(path, **kwargs):
        time.sleep(2)

    def broken(path, **kwargs):
        frame = real(path, **kwargs)
        return Frame(frame.sci, frame.variance, frame.mask, frame.wavelength * float("nan"))

    for fake, expected in [
        (crash, "ZeroDivisionError: a bug"),
        (hang, "took more than"),
        (broken, "wavelength"),
    ]:
        monkeypatch.setattr(read, "read_fits", fake)
        assert expected in (fuzzer.check(raw, suffix, tmp_path, timeout=0.5) or "")


def test_mutations_apply_inside_compression_and_a_short_run_is_bounded(tmp_path):
    import gzip

    raw, suffix = fuzzer.seeds()["gzip"]
    mutated = fuzzer.mutate(raw, suffix, [("card", 5, "NAXIS1", "99999"), ("cut", 6000)])
    inner = gzip.decompress(mutated)
    assert len(inner) == 6000 and b"NAXIS1  =                99999" in inner
    started = time.monotonic()
    found = list(fuzzer.fuzz(1.0, 5.0, chunk=5, crashes=tmp_path / "crashes"))
    assert time.monotonic() - started < 30
    assert found == [], found  # a crash here is new: run the fuzzer, keep its input, fix the reader
