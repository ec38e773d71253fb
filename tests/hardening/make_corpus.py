"""The corpus of bad and odd inputs, and the table of what ``longslit reduce`` does with each.

Every case is a file (or a name) built here from a seeded synthetic frame, so the corpus is the same on
every machine and needs no network. A case is either *refused* (exit 2, one line ``error: <file>: ...``,
nothing written) or *reduced* (exit 0, a spectrum written, and where something had to be assumed a
``warning: <file>: ...`` line saying what). ``tests/hardening/test_corpus.py`` runs every case through
the installed console script and checks that; ``docs/reliability.md`` holds the table this script
makes from the same runs.

    python tests/hardening/make_corpus.py FOLDER        # write the corpus files into FOLDER
    python tests/hardening/make_corpus.py --table       # run every case, print the markdown table
    python tests/hardening/make_corpus.py --update-doc  # ... and write it into docs/reliability.md
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import gzip
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
TABLE_START, TABLE_END = "<!-- corpus table: start -->", "<!-- corpus table: end -->"
LONGSLIT = Path(sys.executable).parent / "longslit"
#: Row ranges that fit the 64 x 80 frames (source at row 31.5), with the tutorial recipe.
SMALL = (
    "-r",
    "tutorial",
    "--set",
    "locate.aperture=27:37",
    "--set",
    "locate.background=2:20,44:62",
    "--set",
    "locate.protected=auto",
)
ROWS, COLUMNS = 64, 80
#: Whether this process can read a file whose permissions forbid it (root can).
READS_ANYTHING = os.name == "posix" and hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class Case:
    """One input: how to make it, and what longslit must do with it.

    ``says`` are texts the error line (refused) or the warning lines (reduced) must contain; the file
    name is always required too. ``env`` adds environment variables (a small memory budget).
    """

    name: str
    what: str
    build: Callable[[Path], str]
    expect: str  # "refused" or "reduced"
    says: tuple[str, ...] = ()
    args: tuple[str, ...] = SMALL
    env: dict[str, str] = field(default_factory=dict)
    #: A known defect outside the reader: the reason, while it lasts (the test is a strict xfail).
    known_defect: str | None = None


# -- building blocks -------------------------------------------------------------------------------
def _synthetic() -> fits.HDUList:
    from longslit.testing import make_frame

    return make_frame((ROWS, COLUMNS), trace_center=31.5, seed=1, n_cosmics=30).hdul


def _hdus(keep=("PRIMARY", "SCI", "ERR", "DQ")) -> list:
    return [hdu.copy() for hdu in _synthetic() if hdu.name in keep]


def _write(folder: Path, name: str, hdus) -> str:
    fits.HDUList(list(hdus)).writeto(folder / name)
    return name


def _modified(name: str, change: Callable[[list], object]) -> Callable[[Path], str]:
    def build(folder: Path) -> str:
        hdus = _hdus()
        change(hdus)
        return _write(folder, name, hdus)

    return build


def _bytes(name: str, data: Callable[[], bytes]) -> Callable[[Path], str]:
    def build(folder: Path) -> str:
        (folder / name).write_bytes(data())
        return name

    return build


def _good_bytes() -> bytes:
    buffer = io.BytesIO()
    fits.HDUList(_hdus()).writeto(buffer)
    return buffer.getvalue()


def _header_only(cards: dict, name: str) -> Callable[[Path], str]:
    """A primary header with these cards and no data, written by hand (astropy would refuse some)."""

    def build(folder: Path) -> str:
        lines = [f"{key:<8}= {value!s:>20}" for key, value in cards.items()]
        text = "".join(line.ljust(80) for line in [*lines, "END"])
        (folder / name).write_bytes(text.ljust(-(-len(text) // 2880) * 2880).encode("ascii"))
        return name

    return build


def _plain(name: str, data: np.ndarray, **cards) -> Callable[[Path], str]:
    def build(folder: Path) -> str:
        header = fits.Header()
        header.update(cards)
        return _write(folder, name, [fits.PrimaryHDU(data, header=header)])

    return build


def _sci() -> np.ndarray:
    return np.asarray(_synthetic()["SCI"].data, dtype=np.float32)


def _set(extension: str, **cards):
    def change(hdus: list) -> None:
        header = next(hdu for hdu in hdus if hdu.name == extension).header
        for key, value in cards.items():
            if value is None:
                del header[key]
            else:
                header[key] = value

    return change


def _replace_data(extension: str, make: Callable[[np.ndarray], np.ndarray]):
    def change(hdus: list) -> None:
        hdu = next(hdu for hdu in hdus if hdu.name == extension)
        hdu.data = make(np.array(hdu.data))

    return change


def _scaled(hdus: list, largest: float, dtype, names=("SCI", "ERR")) -> None:
    """SCI (and ERR) multiplied by one factor, so that SCI's largest magnitude is ``largest``."""
    sci = next(hdu for hdu in hdus if hdu.name == "SCI")
    factor = largest / float(np.abs(np.asarray(sci.data, dtype=np.float64)).max())
    for hdu in hdus:
        if hdu.name in names:
            hdu.data = (np.asarray(hdu.data, dtype=np.float64) * factor).astype(dtype)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("frame.fits", _good_bytes())
    return buffer.getvalue()


def _unquoted_card() -> bytes:
    raw = bytearray(_good_bytes())
    start = raw.find(b"BUNIT   = 'COUNTS  '")
    raw[start : start + 80] = b"BUNIT   = COUNTS".ljust(80)  # an unquoted string: astropy cannot parse it
    return bytes(raw)


def _folder(folder: Path) -> str:
    (folder / "folder.fits").mkdir()
    return "folder.fits"


def _unreadable(folder: Path) -> str:
    path = folder / "unreadable.fits"
    path.write_bytes(_good_bytes())
    path.chmod(0)
    return path.name


def _device(folder: Path) -> str:
    (folder / "device.fits").symlink_to(os.devnull)
    return "device.fits"


def _fpack(folder: Path) -> str:
    hdus = _hdus()
    compressed = [hdus[0]] + [
        fits.CompImageHDU(hdu.data, header=hdu.header, name=hdu.name, quantize_level=0.0)
        if hdu.name == "SCI"
        else hdu
        for hdu in hdus[1:]
    ]
    return _write(folder, "fpacked.fits.fz", compressed)


def _multi_sci(folder: Path) -> str:
    hdus = _hdus()
    second = [hdu.copy() for hdu in hdus[1:]]
    for hdu in second:
        hdu.header["EXTVER"] = 2
    return _write(folder, "two_exposures.fits", hdus + second)


def _named(name: str) -> Callable[[Path], str]:
    def build(folder: Path) -> str:
        (folder / name).write_bytes(_good_bytes())
        return name

    return build


def _missing(folder: Path) -> str:
    return "missing.fits"


CASES: tuple[Case, ...] = (
    # -- refused: not a frame ---------------------------------------------------------------------
    Case("missing", "a name that does not exist", _missing, "refused", ("not found",)),
    Case("empty", "an empty file (0 bytes)", _bytes("empty.fits", lambda: b""), "refused", ("empty",)),
    Case(
        "random",
        "5000 random bytes named .fits",
        _bytes("random.fits", lambda: np.random.default_rng(0).bytes(5000)),
        "refused",
        ("cannot be read as FITS",),
    ),
    Case(
        "html",
        "an HTML error page saved as .fits (a download gone wrong)",
        _bytes("download.fits", lambda: b"<!DOCTYPE html><html><body>503</body></html>\n"),
        "refused",
        ("HTML",),
    ),
    Case("zip", "a zip archive named .fits", _bytes("archive.fits", _zip), "refused", ("zip archive",)),
    Case(
        "truncated gzip",
        "a gzip file cut in half",
        _bytes("cut.fits.gz", lambda: gzip.compress(_good_bytes())[:4000]),
        "refused",
        ("truncated or corrupt gzip",),
    ),
    Case(
        "truncated",
        "a FITS file cut in half (in the ERR data)",
        _bytes("cut.fits", lambda: _good_bytes()[: len(_good_bytes()) // 2]),
        "refused",
        ("is truncated",),
    ),
    Case(
        "cut header",
        "a FITS file cut inside its first header",
        _bytes("cut_header.fits", lambda: _good_bytes()[:1000]),
        "refused",
        ("no END card",),
    ),
    Case(
        "huge claim",
        "a header declaring a 100000 x 100000 image, with no data",
        _header_only(
            {"SIMPLE": "T", "BITPIX": -32, "NAXIS": 2, "NAXIS1": 100000, "NAXIS2": 100000}, "claim.fits"
        ),
        "refused",
        ("is truncated", "40,000,000,000 bytes"),
    ),
    Case(
        "bad BITPIX",
        "a header with BITPIX = 12",
        _header_only({"SIMPLE": "T", "BITPIX": 12, "NAXIS": 0}, "bitpix.fits"),
        "refused",
        ("BITPIX = 12",),
    ),
    Case(
        "primary only",
        "a FITS file with only a primary header",
        lambda folder: _write(folder, "primary.fits", [fits.PrimaryHDU()]),
        "refused",
        ("no 2D image", "only headers"),
    ),
    Case(
        "table only",
        "a FITS file whose only extension is a binary table",
        lambda folder: _write(
            folder,
            "table.fits",
            [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("X", "D", array=np.arange(5.0))])],
        ),
        "refused",
        ("no 2D image", "only tables"),
    ),
    Case(
        "1D image",
        "a 1D image (one spectrum)",
        _plain("spectrum1d.fits", np.arange(COLUMNS, dtype=np.float32)),
        "refused",
        ("no 2D image", "1D (80)"),
    ),
    Case(
        "3D image",
        "a 3D image of two planes",
        _plain("cube.fits", np.zeros((2, ROWS, COLUMNS), np.float32)),
        "refused",
        ("no 2D image", "3D (2x64x80)"),
    ),
    Case(
        "3D SCI",
        "an HST-style file whose SCI is 3D",
        _modified("sci3d.fits", _replace_data("SCI", lambda d: np.stack([d, d]))),
        "refused",
        ("no 2D image", "SCI image is 3D"),
    ),
    Case(
        "tiny",
        "a 2 x 3 image",
        _plain("tiny.fits", np.ones((2, 3), np.float32)),
        "refused",
        ("only 2x3 pixels",),
    ),
    Case(
        "all NaN",
        "SCI all NaN",
        _modified("nan.fits", _replace_data("SCI", lambda d: np.full_like(d, np.nan))),
        "refused",
        ("no finite values",),
    ),
    Case(
        "all inf",
        "SCI all +inf",
        _modified("inf.fits", _replace_data("SCI", lambda d: np.full_like(d, np.inf))),
        "refused",
        ("no finite values",),
    ),
    Case("folder", "a folder named .fits", _folder, "refused", ("folder",)),
    Case("device", "a link to a device (/dev/null)", _device, "refused", ("not a regular file",)),
    Case(
        "unreadable",
        "a file without read permission (chmod 000)",
        _unreadable,
        "refused",
        ("cannot be opened", "Permission denied"),
    ),
    Case(
        "gzip bomb",
        "a 30 KB gzip file that expands to 32 MB, with an 8 MB memory budget",
        _bytes("bomb.fits.gz", lambda: gzip.compress(b"SIMPLE  =" + bytes(32 * 2**20))),
        "refused",
        ("decompresses to at least", "memory budget of 8.0 MB", "LONGSLIT_MEMORY_LIMIT"),
        env={"LONGSLIT_MEMORY_LIMIT": "8M"},
    ),
    Case(
        "over budget",
        "a 512 x 512 frame with a 16 MB memory budget",
        _plain("big.fits", np.zeros((512, 512), np.float32)),
        "refused",
        ("512x512 frame needs about 48.0 MB", "budget of 16.0 MB", "LONGSLIT_MEMORY_LIMIT"),
        env={"LONGSLIT_MEMORY_LIMIT": "16M"},
    ),
    # -- reduced, saying what was assumed ----------------------------------------------------------
    Case(
        "plain image",
        "a single 2D image: no ERR, DQ or WCS",
        _plain("plain.fits", _sci()),
        "reduced",
        ("no ERR array", "no usable dispersion WCS"),
    ),
    Case(
        "some NaN",
        "SCI with a NaN row and an inf pixel",
        _modified("some_nan.fits", _replace_data("SCI", lambda d: _poke(d, (5, (7, 3)), (np.nan, np.inf)))),
        "reduced",
        ("81 of 5,120 SCI pixels are NaN or inf: masked",),
    ),
    Case(
        "ERR zero",
        "ERR all zero",
        _modified("err_zero.fits", _replace_data("ERR", np.zeros_like)),
        "reduced",
        ("ERR holds no positive finite value: ignored",),
    ),
    Case(
        "ERR negative",
        "ERR negative in one row",
        _modified("err_negative.fits", _replace_data("ERR", lambda d: _poke(d, (3,), (-1.0,)))),
        "reduced",
        ("80 pixels with ERR not a positive finite number: masked",),
    ),
    Case(
        "ERR shape",
        "ERR of another shape than SCI",
        _modified("err_shape.fits", _replace_data("ERR", lambda d: d[: ROWS // 2])),
        "refused",
        ("is damaged: its ERR image is 2D (32x80) but its SCI image 2D (64x80)", "read.err_extname=none"),
    ),
    Case(
        "ERR shape, ignored",
        "ERR of another shape than SCI, with `--set read.err_extname=none`",
        lambda folder: "err_shape.fits",  # the file the case above built
        "reduced",
        ("no ERR array: variance from the noise model",),
        args=(*SMALL, "--set", "read.err_extname=none"),
    ),
    Case(
        "DQ shape",
        "DQ of another shape than SCI",
        _modified("dq_shape.fits", _replace_data("DQ", lambda d: d[:, : COLUMNS // 2])),
        "reduced",
        ("DQ is not an integer image of the SCI shape; ignored",),
    ),
    Case(
        "CD1_1 = 0",
        "a dispersion WCS with CD1_1 = 0",
        _modified("cd_zero.fits", _set("SCI", CD1_1=0.0)),
        "reduced",
        ("no usable dispersion WCS",),
    ),
    Case(
        "CUNIT1 nonsense",
        "CUNIT1 = 'furlong'",
        _modified("furlong.fits", _set("SCI", CUNIT1="furlong")),
        "reduced",
        ("'furlong' is not a wavelength unit",),
    ),
    Case(
        "WCS overflow",
        "CRVAL1 = 1.7e308, CD1_1 = 1e307 (wavelengths overflow)",
        _modified("overflow.fits", _set("SCI", CRVAL1=1.7e308, CD1_1=1e307)),
        "reduced",
        ("not finite and distinct",),
    ),
    Case(
        "frequency axis",
        "a frequency axis: CTYPE1 = 'FREQ', CUNIT1 = 'GHz'",
        _modified(
            "freq.fits", _set("SCI", CTYPE1="FREQ", CUNIT1="GHz", CRVAL1=5.0e5, CD1_1=10.0, CRPIX1=1.0)
        ),
        "reduced",
        ("the dispersion axis is in GHz: converted to Angstrom",),
    ),
    Case(
        "int16",
        "16-bit integer SCI",
        _modified("int16.fits", _replace_data("SCI", lambda d: np.round(d).astype(np.int16))),
        "reduced",
        ("integer science data converted to float64",),
    ),
    Case(
        "uint16",
        "unsigned 16-bit SCI (BZERO = 32768)",
        _modified(
            "uint16.fits",
            _replace_data("SCI", lambda d: np.clip(np.round(d) + 100, 0, None).astype(np.uint16)),
        ),
        "reduced",
        ("integer science data converted to float64",),
    ),
    Case(
        "float64",
        "float64 SCI and ERR",
        _modified(
            "float64.fits",
            lambda hdus: [_replace_data(n, lambda d: d.astype(np.float64))(hdus) for n in ("SCI", "ERR")],
        ),
        "reduced",
    ),
    Case(
        "near-1e300",
        "float64 SCI scaled to reach 1e300 (squares overflow past 1.3e154)",
        _modified("huge.fits", lambda hdus: _scaled(hdus, 1e300, np.float64, ("SCI",))),
        "refused",
        ("the science values reach 1.0e+300 in magnitude", "scale the data down"),
    ),
    Case(
        "float32-edge",
        "float32 SCI and ERR scaled to reach 3e38 (the largest float32 is 3.4e38)",
        _modified("edge32.fits", lambda hdus: _scaled(hdus, 3e38, np.float32)),
        "reduced",
    ),
    Case(
        "little-endian",
        "SCI from a little-endian array (FITS stores big-endian: astropy swaps on writing)",
        _modified("little.fits", _replace_data("SCI", lambda d: d.astype("<f4"))),
        "reduced",
    ),
    Case(
        "one-plane cube",
        "SCI as a 1 x 64 x 80 cube (NAXIS3 = 1)",
        _modified("plane.fits", _replace_data("SCI", lambda d: d[np.newaxis])),
        "reduced",
        ("3D (1x64x80): its one 64x80 plane is reduced",),
    ),
    Case(
        "two exposures",
        "two SCI/ERR/DQ sets (EXTVER 1 and 2)",
        _multi_sci,
        "reduced",
        ("2 SCI images", "only the first (EXTVER 1) is reduced"),
    ),
    Case(
        "unquoted card",
        "a header card astropy cannot parse (BUNIT = COUNTS, unquoted)",
        _bytes("card.fits", _unquoted_card),
        "reduced",
        ("malformed header cards were repaired",),
    ),
    Case(
        "trailing bytes",
        "a good file with 100 bytes of junk after the last HDU",
        _bytes("trailing.fits", lambda: _good_bytes() + b"junk" * 25),
        "reduced",
    ),
    Case(
        "bzip2",
        "a bzip2-compressed file",
        _bytes("frame.fits.bz2", lambda: bz2.compress(_good_bytes())),
        "reduced",
    ),
    Case("fpack", "SCI as a tile-compressed image (fpack, .fits.fz)", _fpack, "reduced"),
    Case(
        "spaces and non-ASCII, ECSV",
        "a name with spaces and non-ASCII letters, ECSV output",
        _named("night 1 – Zürich.fits"),
        "reduced",
        args=(*SMALL, "--format", "ecsv"),
    ),
    Case(
        "spaces and non-ASCII",
        "a name with spaces and non-ASCII letters, FITS output",
        _named("night 1 – Zürich.fits"),
        "reduced",
    ),
    Case(
        "newline in name",
        "a name with a newline in it",
        _named("two\nlines.fits"),
        "reduced",
    ),
)


def _poke(data: np.ndarray, where: tuple, values: tuple) -> np.ndarray:
    data = np.array(data)
    for index, value in zip(where, values, strict=True):
        data[index] = value
    return data


def by_name(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


def build_all(folder: Path) -> dict[str, str]:
    """Write every case's input into ``folder`` (a fresh, empty one); returns case name: file name."""
    built = {}
    for case in CASES:
        name = case.build(folder)
        assert name not in built.values() or case.name.startswith(("spaces", "ERR shape, ignored")), name
        built[case.name] = name
    return built


# -- running a case --------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What the console script did with one case, run in a folder of its own."""

    case: Case
    input: str
    returncode: int
    stdout: str
    stderr: str
    written: list[str]  # files the run left in its output folder, hidden ones too
    out: Path  # the output folder
    simulated: str | None = None  # how the run was simulated, when it could not be real

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "LONGSLIT_MEMORY_LIMIT")
    }
    return env | {"COLUMNS": "100"} | (extra or {})


def run_case(case: Case, corpus: Path, name: str, scratch: Path) -> Outcome:
    """``longslit reduce NAME --outdir OUT`` in the corpus folder, OUT a fresh folder in ``scratch``."""
    out = Path(tempfile.mkdtemp(prefix="out-", dir=scratch))
    if case.name == "unreadable" and READS_ANYTHING:
        return _run_simulated_unreadable(case, corpus, name, out)
    command = [str(LONGSLIT), "reduce", name, *case.args, "--outdir", str(out)]
    proc = subprocess.run(
        command, cwd=corpus, env=environment(case.env), capture_output=True, text=True, timeout=120
    )
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    return Outcome(case, name, proc.returncode, proc.stdout, proc.stderr, written, out)


def _run_simulated_unreadable(case: Case, corpus: Path, name: str, out: Path) -> Outcome:
    """Root reads any file, so 'permission denied' is simulated: the reader's ``open`` raises it.

    The command still runs through ``longslit.cli.main`` in a fresh interpreter, as the console
    script does.
    """
    code = (
        "import errno, sys\n"
        "import longslit.steps.read as read\n"
        "def denied(path, *args, **kwargs):\n"
        "    raise PermissionError(errno.EACCES, 'Permission denied', str(path))\n"
        "read.open = denied\n"
        "from longslit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    command = [sys.executable, "-c", code, "reduce", name, *case.args, "--outdir", str(out)]
    proc = subprocess.run(
        command, cwd=corpus, env=environment(case.env), capture_output=True, text=True, timeout=120
    )
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    return Outcome(
        case,
        name,
        proc.returncode,
        proc.stdout,
        proc.stderr,
        written,
        out,
        simulated="by a failing open, as root reads any file",
    )


def run_all(corpus: Path, scratch: Path, workers: int | None = None) -> dict[str, Outcome]:
    """Build the corpus in ``corpus`` and run every case; returns case name: outcome."""
    built = build_all(corpus)
    with ThreadPoolExecutor(max_workers=workers or max(2, os.cpu_count() or 2)) as pool:
        futures = {
            case.name: pool.submit(run_case, case, corpus, built[case.name], scratch) for case in CASES
        }
        return {name: future.result() for name, future in futures.items()}


def problems(outcome: Outcome) -> list[str]:
    """How an outcome differs from its case's promise (empty when it keeps it)."""
    from longslit.errors import printable

    case, found = outcome.case, []
    shown = printable(outcome.input)
    if case.expect == "refused":
        if outcome.returncode != 2:
            found.append(f"exit {outcome.returncode}, expected 2")
        if len(outcome.lines) != 1 or not outcome.stderr.startswith(f"error: {shown}: "):
            found.append(f"stderr is not one 'error: {shown}: ...' line: {outcome.stderr!r}")
        if outcome.stdout:
            found.append(f"stdout not empty: {outcome.stdout!r}")
        if outcome.written:
            found.append(f"files left behind: {outcome.written}")
    else:
        if outcome.returncode != 0:
            found.append(f"exit {outcome.returncode}, expected 0: {outcome.stderr!r}")
        if not all(line.startswith(f"warning: {shown}: ") for line in outcome.lines):
            found.append(f"stderr has lines other than 'warning: {shown}: ...': {outcome.stderr!r}")
        if len(outcome.stdout.splitlines()) != 1 or not outcome.stdout.startswith(shown):
            found.append(f"stdout is not one report line: {outcome.stdout!r}")
        if len(outcome.written) != 1 or not outcome.written[0].endswith(("_spectrum.fits", "_spectrum.ecsv")):
            found.append(f"expected one spectrum written, found {outcome.written}")
        if not case.says and outcome.lines:
            found.append(f"unexpected warnings: {outcome.stderr!r}")
    for text in case.says:
        if text not in outcome.stderr:
            found.append(f"{text!r} not in {outcome.stderr!r}")
    return found


# -- the table -------------------------------------------------------------------------------------
def table(outcomes: dict[str, Outcome]) -> str:
    """The markdown table of the corpus: input, what it is, what longslit did, what it said."""
    from longslit.errors import printable

    rows = [
        "| Input | What it is | Outcome | What `longslit reduce` prints on stderr |",
        "|---|---|---|---|",
    ]
    for case in CASES:
        outcome = outcomes[case.name]
        if outcome.returncode == 2:
            result = "refused (exit 2), nothing written"
        elif outcome.returncode == 0:
            result = "reduced, with warnings" if outcome.lines else "reduced"
        else:
            result = f"**fails (exit {outcome.returncode})**"
        if case.known_defect:
            result += " — known defect, see below"
        if outcome.simulated:
            result += f" (simulated: {outcome.simulated})"
        said = "<br>".join(_cell(line) for line in outcome.lines) or "—"
        rows.append(f"| `{_cell(printable(outcome.input))}` | {_cell(case.what)} | {result} | {said} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def update_doc(text: str, new_table: str) -> str:
    pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{DOC} has no {TABLE_START} ... {TABLE_END} markers")
    return pattern.sub(lambda _: f"{TABLE_START}\n{new_table}\n{TABLE_END}", text)


def doc_table(text: str) -> str:
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    return text[start:end].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", help="write the corpus files into this (empty) folder")
    parser.add_argument("--table", action="store_true", help="run every case and print the table")
    parser.add_argument(
        "--update-doc", action="store_true", help="run every case, write the table into the doc"
    )
    args = parser.parse_args(argv)
    if args.folder and not (args.table or args.update_doc):
        folder = Path(args.folder)
        folder.mkdir(parents=True, exist_ok=True)
        for case, name in build_all(folder).items():
            print(f"{case}: {name!r}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        try:
            outcomes = run_all(corpus, Path(scratch))
        finally:
            with contextlib.suppress(OSError):
                (corpus / "unreadable.fits").chmod(0o600)
        broken = {
            name: problems(o) for name, o in outcomes.items() if problems(o) and not o.case.known_defect
        }
        for name, found in broken.items():
            print(f"{name}: {'; '.join(found)}", file=sys.stderr)
        rendered = table(outcomes)
    if args.update_doc:
        DOC.write_text(update_doc(DOC.read_text(encoding="utf-8"), rendered), encoding="utf-8")
        print(f"updated {DOC}")
    else:
        print(rendered)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
