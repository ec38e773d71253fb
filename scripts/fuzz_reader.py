#!/usr/bin/env python
"""Fuzz the FITS reader with mutated headers and bytes, for a bounded time (hypothesis drives it).

    python scripts/fuzz_reader.py --seconds 60            # default 60 s; saves crashes it finds
    python scripts/fuzz_reader.py --replay FILE...         # check given inputs (what the tests do)

Each input is a valid seed file (an HST-style SCI/ERR/DQ frame, a plain image, the same gzipped, a
tile-compressed one, one with a table) with mutations applied: header cards given hostile values
(structural keywords, NAXISn, BITPIX, BZERO/BSCALE, EXTNAME, the WCS), cards duplicated or deleted, the
END card removed; bytes flipped, inserted, truncated, 2880-byte blocks duplicated or zeroed. The reader
must then return a well-formed ``Frame`` or raise a ``LongslitError`` with a one-line message, within
``--timeout`` seconds (5), with warnings allowed. Anything else is a crash: hypothesis shrinks it to a
small mutation, the input is saved as ``tests/hardening/crashes/<digest>.<suffix>`` with a ``.txt``
saying what happened, and ``tests/hardening/test_fuzz_regressions.py`` replays every saved file on each
test run. The fuzzing itself never runs inside the test suite.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import math
import os
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CRASHES = ROOT / "tests" / "hardening" / "crashes"
MEMORY_LIMIT = "256M"  # a mutated NAXIS must be refused by the budget, not allocated

# -- seeds -----------------------------------------------------------------------------------------


def seeds() -> dict[str, tuple[bytes, str]]:
    """name: (bytes, file suffix). Small frames: a read takes milliseconds."""
    from astropy.io import fits

    from longslit.testing import make_frame

    def to_bytes(hdul) -> bytes:
        buffer = io.BytesIO()
        hdul.writeto(buffer)
        return buffer.getvalue()

    hst = make_frame((16, 24), trace_center=7.5, seed=1, n_cosmics=3).hdul
    hst_bytes = to_bytes(fits.HDUList([hdu for hdu in hst if hdu.name != "TRUTH_CR"]))
    sci = np.asarray(hst["SCI"].data)
    plain = fits.PrimaryHDU(sci, header=hst["SCI"].header.copy())
    for key in ("XTENSION", "PCOUNT", "GCOUNT", "EXTNAME", "EXTVER", "INHERIT"):
        plain.header.remove(key, ignore_missing=True)
    compressed = fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(sci, header=hst["SCI"].header.copy(), quantize_level=0.0)]
    )
    return {
        "hst": (hst_bytes, ".fits"),
        "plain": (to_bytes(fits.HDUList([plain])), ".fits"),
        "gzip": (gzip.compress(hst_bytes, mtime=0), ".fits.gz"),
        "bzip2": (bz2.compress(hst_bytes), ".fits.bz2"),
        "fpack": (to_bytes(compressed), ".fits.fz"),
    }


# -- mutations -------------------------------------------------------------------------------------
HOSTILE_VALUES = [
    "0",
    "-1",
    "1",
    "2",
    "3",
    "999",
    "1000",
    "2147483648",
    "-2147483649",
    "9223372036854775808",
    "99999999999999999999999999999999999999999999999999",
    "1E999",
    "-1E999",
    "NAN",
    "1.5",
    "-0.0",
    "1D300",
    "T",
    "F",
    "'SCI'",
    "'ERR     '",
    "'DQ'",
    "''",
    "'unterminated",
    "'it''s'",
    "'IMAGE   '",
    "'BINTABLE'",
    "'WAVE'",
    "'Hz'",
    "'furlong'",
    "'[bold]x'",
    "(1, 2)",
    "",
    "=",
    "/",
]
KEYS = [
    "SIMPLE",
    "XTENSION",
    "BITPIX",
    "NAXIS",
    "NAXIS1",
    "NAXIS2",
    "NAXIS3",
    "PCOUNT",
    "GCOUNT",
    "EXTNAME",
    "EXTVER",
    "BSCALE",
    "BZERO",
    "BLANK",
    "CRVAL1",
    "CD1_1",
    "CDELT1",
    "CRPIX1",
    "CUNIT1",
    "CTYPE1",
    "ZIMAGE",
    "ZBITPIX",
    "ZNAXIS",
    "ZNAXIS1",
    "ZNAXIS2",
    "ZCMPTYPE",
    "TFORM1",
    "THEAP",
    "END",
]


def header_cards(raw: bytes) -> list[int]:
    """Offsets of the 80-character cards of every header (up to its END) in uncompressed FITS bytes."""
    offsets, offset = [], 0
    while offset + 2880 <= len(raw):
        start = offset
        end_found = False
        while offset + 2880 <= len(raw) and not end_found:
            for card in range(offset, offset + 2880, 80):
                offsets.append(card)
                if raw[card : card + 8] == b"END     ":
                    end_found = True
                    break
            offset += 2880
        if not end_found:
            break
        nxt = _skip_data(raw, start, offset)
        if nxt is None or nxt <= start:
            break
        offset = nxt
        if raw[offset : offset + 8] != b"XTENSION":
            break
    return offsets


def _skip_data(raw: bytes, header: int, data: int) -> int | None:
    cards = {raw[c : c + 8].strip(): raw[c + 10 : c + 80] for c in range(header, data, 80)}
    try:
        bitpix = abs(int(cards[b"BITPIX"].split(b"/")[0]))
        axes = [
            int(cards[b"NAXIS%d" % i].split(b"/")[0])
            for i in range(1, int(cards[b"NAXIS"].split(b"/")[0]) + 1)
        ]
        pcount = int(cards.get(b"PCOUNT", b"0").split(b"/")[0])
    except (KeyError, ValueError):
        return None
    size = bitpix // 8 * ((math.prod(axes) if axes else 0) + pcount)
    return data + -(-size // 2880) * 2880


def mutations():
    """A hypothesis strategy of lists of mutations (tuples naming what to do, with its numbers)."""
    from hypothesis import strategies as st

    card = st.tuples(
        st.just("card"),
        st.integers(0, 10**6),
        st.sampled_from(KEYS),
        st.one_of(
            st.sampled_from(HOSTILE_VALUES),
            st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
        ),
    )
    retarget = st.tuples(st.just("key"), st.integers(0, 10**6), st.sampled_from(KEYS))  # rename a card
    delete = st.tuples(st.just("delete"), st.integers(0, 10**6))
    flip = st.tuples(st.just("flip"), st.integers(0, 10**7), st.integers(1, 255))
    cut = st.tuples(st.just("cut"), st.integers(0, 10**7))
    insert = st.tuples(st.just("insert"), st.integers(0, 10**7), st.binary(min_size=1, max_size=200))
    block = st.tuples(st.just("block"), st.integers(0, 10**4), st.sampled_from(["duplicate", "zero", "drop"]))
    one = st.one_of(card, card, retarget, delete, flip, cut, insert, block)
    return st.lists(one, min_size=1, max_size=4)


def mutate(raw: bytes, suffix: str, operations: list[tuple]) -> bytes:
    """Apply the mutations to the FITS bytes (inside the compression for compressed seeds)."""
    packer = {".fits.gz": (gzip.decompress, lambda b: gzip.compress(b, mtime=0))}.get(suffix)
    packer = packer or {".fits.bz2": (bz2.decompress, bz2.compress)}.get(suffix)
    data = bytearray(packer[0](raw) if packer else raw)
    compress_after = True
    for operation in operations:
        kind = operation[0]
        cards = header_cards(bytes(data))
        if kind in ("card", "key", "delete") and cards:
            at = cards[operation[1] % len(cards)]
            if kind == "card":
                _, _, key, value = operation
                text = f"{key:<8}= {value:>20}" if key != "END" else "END"
                data[at : at + 80] = text.encode("ascii", "replace")[:80].ljust(80)
            elif kind == "key":
                data[at : at + 8] = operation[2].encode().ljust(8)[:8]
            else:
                data[at : at + 80] = b" " * 80
        elif kind == "flip" and data:
            data[operation[1] % len(data)] ^= operation[2]
        elif kind == "cut":
            data = data[: operation[1] % (len(data) + 1)]
        elif kind == "insert":
            at = operation[1] % (len(data) + 1)
            data[at:at] = operation[2]
        elif kind == "block" and len(data) >= 2880:
            at = (operation[1] % (len(data) // 2880)) * 2880
            if operation[2] == "duplicate":
                data[at:at] = data[at : at + 2880]
            elif operation[2] == "zero":
                data[at : at + 2880] = bytes(2880)
            else:
                del data[at : at + 2880]
        if kind == "flip" and operation[2] == 255 and packer:
            compress_after = False  # sometimes damage the compressed stream itself, below
    result = bytes(data)
    if packer:
        result = packer[1](result)
        if not compress_after and len(result) > 20:
            damaged = bytearray(result)
            damaged[len(damaged) // 2] ^= 0xFF
            result = bytes(damaged)
    return result


# -- the oracle ------------------------------------------------------------------------------------
class _Slow(Exception):
    pass


def check(raw: bytes, suffix: str, folder: Path, timeout: float = 5.0) -> str | None:
    """Read ``raw`` (as a file with ``suffix``) with the built-in reader; None if it behaved, else why.

    Behaving: a well-formed Frame, or a LongslitError with a one-line message naming the file, within
    ``timeout`` seconds. Warnings are allowed (astropy's, and the reader's notes).
    """
    from longslit import limits
    from longslit.errors import LongslitError
    from longslit.frame import Frame
    from longslit.steps.read import read_fits

    path = folder / f"input{suffix}"
    path.write_bytes(raw)
    alarm = hasattr(signal, "SIGALRM") and os.name == "posix"

    def slow(signum, frame):
        raise _Slow

    if alarm:
        previous = signal.signal(signal.SIGALRM, slow)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(), limits.limited(MEMORY_LIMIT):
            warnings.simplefilter("ignore")
            frame = read_fits(path)
    except _Slow:
        return f"took more than {timeout:g} s"
    except LongslitError as exc:
        text = str(exc)
        if "\n" in text or not exc.path:
            return f"{type(exc).__name__} message not one line naming the file: {text!r}"
        return None
    except Exception as exc:  # the crash the fuzzer looks for
        return "".join(traceback.format_exception_only(exc)).strip() + "\n" + traceback.format_exc(limit=-6)
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if time.perf_counter() - started > timeout:
        return f"took more than {timeout:g} s"
    return _frame_problem(frame, Frame)


def _frame_problem(frame, frame_type) -> str | None:
    if not isinstance(frame, frame_type):
        return f"returned {type(frame).__name__}, not a Frame"
    sci = frame.sci
    if (
        sci.ndim != 2
        or sci.dtype.kind != "f"
        or not sci.dtype.isnative
        or sci.shape[0] < 3
        or sci.shape[1] < 2
    ):
        return f"sci is {sci.dtype} {sci.shape}"
    if frame.mask.dtype != bool or frame.mask.shape != sci.shape:
        return f"mask is {frame.mask.dtype} {frame.mask.shape}"
    if not np.array_equal(frame.mask | np.isfinite(sci), np.ones(sci.shape, bool)):
        return "a non-finite SCI pixel is not masked"
    if frame.variance is not None and (
        frame.variance.shape != sci.shape or frame.variance.dtype != np.float64
    ):
        return f"variance is {frame.variance.dtype} {frame.variance.shape}"
    if frame.wavelength.shape != (sci.shape[1],) or not np.all(np.isfinite(frame.wavelength)):
        return "the wavelength axis is not one finite value per column"
    if frame.wavelength_unit not in ("Angstrom", "pix"):
        return f"wavelength unit {frame.wavelength_unit!r}"
    if not all(isinstance(note, str) and "\n" not in note for note in frame.notes):
        return f"notes {frame.notes!r}"
    return None


# -- running ---------------------------------------------------------------------------------------
def save(raw: bytes, suffix: str, seed: str, operations: list, problem: str, folder: Path = CRASHES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    path = folder / f"{digest}{suffix}"
    path.write_bytes(raw)
    path.with_name(path.name + ".txt").write_text(
        f"seed: {seed}\nmutations: {operations!r}\nfound: {time.strftime('%Y-%m-%d')}\n\n{problem}\n",
        encoding="utf-8",
    )
    return path


def _property(raw: bytes, suffix: str, folder: Path, timeout: float, stop: float, last: list, chunk: int):
    """A hypothesis test of ``chunk`` mutated inputs of one seed; a crash is kept in ``last``."""
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=chunk,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(operations=mutations())
    def run(operations):
        if time.monotonic() >= stop + 120:  # shrinking a crash may run over the time, but not forever
            return
        data = mutate(raw, suffix, operations)
        problem = check(data, suffix, folder, timeout)
        if problem is not None:
            last[:] = [data, problem, operations]
            raise AssertionError(problem)

    return run


def fuzz(
    seconds: float, timeout: float, chunk: int = 100, crashes: Path = CRASHES
) -> Iterator[tuple[Path, str]]:
    """Run chunks of ``chunk`` hypothesis examples per seed until ``seconds`` have passed."""
    found: list[tuple[bytes, str, str, list, str]] = []
    stop = time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        seed_files = seeds()
        rounds = 0
        while time.monotonic() < stop:
            for name, (raw, suffix) in seed_files.items():
                if time.monotonic() >= stop:
                    break
                last: list = []
                run = _property(raw, suffix, folder, timeout, stop, last, chunk)
                try:
                    run()
                except AssertionError:
                    if last:
                        data, problem, operations = last
                        found.append((data, suffix, name, operations, problem))
                        yield save(data, suffix, name, operations, problem, crashes), problem
            rounds += 1
        print(
            f"fuzzed {rounds} round(s) of {chunk} inputs per seed over {len(seed_files)} seeds",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (default 60)")
    parser.add_argument("--timeout", type=float, default=5.0, help="longest a read may take (default 5 s)")
    parser.add_argument("--replay", nargs="+", metavar="FILE", help="check these inputs instead")
    parser.add_argument(
        "--crashes", type=Path, default=CRASHES, help="where to save crashes (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    os.environ.pop("LONGSLIT_MEMORY_LIMIT", None)
    if args.replay:
        failed = 0
        with tempfile.TemporaryDirectory() as scratch:
            for name in args.replay:
                path = Path(name)
                suffix = (
                    "".join(path.suffixes[-2:]) if path.name.endswith((".gz", ".bz2", ".fz")) else path.suffix
                )
                problem = check(path.read_bytes(), suffix, Path(scratch), args.timeout)
                print(f"{name}: {'ok' if problem is None else problem}")
                failed += problem is not None
        return 1 if failed else 0
    crashes = 0
    for path, problem in fuzz(args.seconds, args.timeout, crashes=args.crashes):
        crashes += 1
        print(f"CRASH saved to {path}: {problem.splitlines()[0]}")
    print(f"{crashes} crash(es) in {args.seconds:g} s")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
