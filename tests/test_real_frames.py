"""Real frames from other instruments (../shared/data/real): a right answer or a clear refusal (issue 15).

docs/real_frames.md holds the table of what each frame gives; it is generated from the same runs:
``python tests/test_real_frames.py --update-doc``. The frames are reduced through the API with the preset
named in the table, as ``longslit reduce FILE -r PRESET`` does (an error there is the CLI's exit 2 and one
line). The refusal of arcs and flats as science needs the pipeline to call ``checks.looks_like_calibration``;
until it does, the table says what the check finds and what the pipeline will then do.
"""

from __future__ import annotations

import re
import sys
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import DATA_DIR, _need  # noqa: E402

REAL = DATA_DIR / "real"
DOC = ROOT / "docs" / "real_frames.md"
TABLE_START, TABLE_END = "<!-- real frames table: start -->", "<!-- real frames table: end -->"

#: Every file of ../shared/data/real: (path, what it is, preset).
FRAMES = (
    ("lick_kast/pypeit_kast_b27.fits.gz", "Kast blue science, J1217p3905, 1200 s (faint)", "kast-blue"),
    ("lick_kast/pypeit_kast_b24.fits.gz", "Kast blue standard Feige 66, 30 s", "kast-blue"),
    ("lick_kast/pypeit_kast_b1.fits.gz", "Kast blue arc lamps", "kast-blue"),
    ("lick_kast/pypeit_kast_b11.fits.gz", "Kast blue dome flat", "kast-blue"),
    ("lick_kast/pypeit_kast_b21.fits.gz", "Kast blue bias", "kast-blue"),
    ("lick_kast/kast_blue_arc_600_4310.fits", "Kast blue 1D arc spectrum (not a 2D frame)", "auto"),
    ("lick_kast/pypeit_spec1d_b27.fits", "PypeIt 1D extraction of b27 (tables)", "auto"),
    (
        "lick_kast/pypeit_spec1d_b27-J1217p3905_KASTb_2015May20T045733.560.fits",
        "older PypeIt 1D extraction of b27 (tables)",
        "auto",
    ),
    ("gtc_osiris/osiris_tres_3b.fits.bz2", "GTC OSIRIS science, TrES-3 field", "gtc-osiris"),
    ("gtc_osiris/osiris_arc_HgAr.fits.bz2", "GTC OSIRIS HgAr arc", "gtc-osiris"),
    ("gtc_osiris/osiris_arc_Ne.fits.bz2", "GTC OSIRIS Ne arc", "gtc-osiris"),
    ("gtc_osiris/osiris_arc_Xe.fits.bz2", "GTC OSIRIS Xe arc", "gtc-osiris"),
    ("gtc_osiris/osiris_bias.fits.bz2", "GTC OSIRIS bias", "gtc-osiris"),
    ("gtc_osiris/osiris_arcs_1d.fits", "GTC OSIRIS 1D arc spectra (a table)", "auto"),
    ("jwst_miri/miri_lrs_s2d_dispaxis2.fits", "JWST MIRI LRS s2d, DISPAXIS = 2", "jwst-miri-lrs"),
    ("jwst_miri/miri_lrs_s2d_transposed.fits", "the same, transposed, no header", "auto"),
)


@cache
def outcome(name: str, preset: str) -> dict:
    """What reducing one real frame gives: the refusal (exit 2, one line) or the numbers and warnings,
    and what ``checks.looks_like_calibration`` says of the frame as read."""
    import longslit
    from longslit import checks
    from longslit.errors import LongslitError

    path = _need(REAL / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", longslit.LongslitWarning)
        try:
            frame = longslit.read(path, **longslit.Recipe.coerce(preset).steps["read"].params)
        except LongslitError as exc:
            return {"exit": exc.exit_code, "error": str(exc).replace(str(path), Path(name).name)}
        calibration = checks.looks_like_calibration(frame)
        try:
            result = longslit.reduce(path, preset)
        except LongslitError as exc:
            error = str(exc).replace(str(path), Path(name).name)
            return {"exit": exc.exit_code, "error": error, "calibration": calibration}
    spectrum = result.spectrum
    good = ~spectrum.mask & np.isfinite(spectrum.uncertainty) & (spectrum.uncertainty > 0)
    snr = float(np.median(spectrum.flux[good] / spectrum.uncertainty[good])) if good.any() else float("nan")
    return {
        "exit": 0,
        "result": result,
        "calibration": calibration,
        "warnings": result.warnings,
        "trace": float(np.median(result.geometry.trace)),
        "snr": snr,
        "finite": bool(np.isfinite(spectrum.uncertainty).all()),
    }


def table() -> str:
    rows = [
        "| File | What it is | Preset | `longslit reduce` | Warnings |",
        "|---|---|---|---|---|",
    ]
    for name, what, preset in FRAMES:
        found = outcome(name, preset)
        short = Path(name).name
        if found["exit"]:
            said = f"exit {found['exit']}: {found['error'].splitlines()[0]}"
            warned = ""
        else:
            uncertainties = "finite uncertainties" if found["finite"] else "some uncertainties unknown"
            said = (
                f"exit 0: trace at row {found['trace']:.1f}, median S/N {found['snr']:.1f}, {uncertainties}"
            )
            warned = "; ".join(found["warnings"]) or "none"
        rows.append(f"| {short} | {what} | {preset} | {said} | {warned} |")
    return "\n".join(rows)


def documented(text: str) -> str:
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    return text[start:end].strip("\n")


# -- the acceptance tests of issue 15 ------------------------------------------------------------
def test_the_table_in_docs_real_frames_is_this_run():
    assert documented(DOC.read_text(encoding="utf-8")) == table(), (
        "docs/real_frames.md is out of date: run python tests/test_real_frames.py --update-doc"
    )


@pytest.mark.parametrize(("name", "what", "preset"), FRAMES, ids=[Path(f[0]).name for f in FRAMES])
def test_every_real_frame_reduces_plausibly_or_is_refused_in_one_line(name, what, preset):
    found = outcome(name, preset)
    if found["exit"]:
        assert found["exit"] == 2 and "\n" not in found["error"]
    if found.get("calibration") is None and not found["exit"]:
        if found["finite"]:
            assert found["snr"] >= 2.0, found
        else:  # the two MIRI files carry no ERR: the flux is reduced, its uncertainty said to be unknown
            assert found["result"].frame.noise_model == "none"
            assert "uncertainties are unknown" in " ".join(found["result"].frame.notes)
    elif found.get("calibration") is not None:
        assert found["exit"] == 2  # refused, in one line
        if found["calibration"].startswith("looks like a bias"):
            # Not refused as a bias (a faint target looks the same; a trace by hand must reduce it):
            # the automatic locate finds no source.
            assert "found no source" in found["error"]
        else:  # arcs and flats: refused by the read step's check, with its sentence
            assert found["error"].startswith(Path(name).name + ": looks like a")
            assert re.match(r"looks like an? (arc-lamp|flat-field)", found["calibration"])


def test_kast_arc_and_flat_are_recognised_and_science_is_not(real_frame_path):
    from longslit import checks

    assert outcome("lick_kast/pypeit_kast_b1.fits.gz", "kast-blue")["calibration"].startswith(
        "looks like an arc-lamp frame"
    )
    assert outcome("lick_kast/pypeit_kast_b11.fits.gz", "kast-blue")["calibration"].startswith(
        "looks like a flat-field"
    )
    for name, _, preset in FRAMES:
        if name.endswith(("b24.fits.gz", "b27.fits.gz", "tres_3b.fits.bz2")) or "miri" in name:
            assert outcome(name, preset)["calibration"] is None, name
    import longslit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", longslit.LongslitWarning)
        assert checks.looks_like_calibration(longslit.read(real_frame_path)) is None  # 3C 120


@pytest.mark.parametrize("name", ["pypeit_kast_b24.fits.gz", "pypeit_kast_b27.fits.gz"])
def test_kast_raw_frames_get_finite_uncertainties_from_the_preset_noise_model(name):
    result = outcome(f"lick_kast/{name}", "kast-blue")["result"]
    frame, spectrum = result.frame, result.spectrum
    # PypeIt's Kast blue detector: gain 1.2 e-/count, read noise 3.7 e- (the header's GAIN = 1 is a
    # placeholder); the calibrate step takes each amplifier's overscan off and trims to DATASEC.
    assert frame.noise_model.startswith("calibrate: read noise 3.7 e-, gain 1.2 e-/ADU, overscan median")
    assert frame.shape == (350, 2048) and frame.section == (1, 2048, 1, 350)
    assert frame.header["BUNIT"] == "electron" and len(result.calibration.overscan) == 2
    assert np.isfinite(frame.variance).all() and (frame.variance > 0).all()
    assert np.isfinite(spectrum.uncertainty).all() and spectrum.info["noise"] == "known"
    assert spectrum.mask.sum() < 0.01 * spectrum.mask.size


def test_b27_trace_agrees_with_pypeit_within_a_third_of_a_row():
    from astropy.io import fits

    result = outcome("lick_kast/pypeit_kast_b27.fits.gz", "kast-blue")["result"]
    with fits.open(_need(REAL / "lick_kast/pypeit_spec1d_b27.fits")) as hdul:
        table = hdul[1].data
        columns, rows, used = table["trace_spec"], table["TRACE_SPAT"], table["OPT_MASK"]
    # Same orientation (PypeIt's specaxis = 1: spectra along NAXIS1) and the DATASEC trim keeps columns
    # 1-2048 and every row, so PypeIt's 0-based spectral pixel is our column and TRACE_SPAT our row.
    difference = result.geometry.trace[columns[used]] - rows[used]
    assert used.sum() == 2048 and np.abs(difference).max() < 0.3
    # The preset's noise is honest: PypeIt's OPT_COUNTS and their sigma are in electrons, as ours after the
    # calibrate step; measured: flux ratio 1.001, sigma ratio 1.09 (no master bias or flat named here).
    with fits.open(_need(REAL / "lick_kast/pypeit_spec1d_b27.fits")) as hdul:
        counts, sigma = hdul[1].data["OPT_COUNTS"], hdul[1].data["OPT_COUNTS_SIG"]
    ours = result.spectrum
    assert np.median(ours.flux / counts) == pytest.approx(1.0, abs=0.03)
    assert 0.9 < np.median(ours.uncertainty / sigma) < 1.2


def test_miri_dispaxis2_gives_the_frame_and_spectrum_of_the_transposed_file():
    turned = outcome("jwst_miri/miri_lrs_s2d_dispaxis2.fits", "jwst-miri-lrs")["result"]
    plain = outcome("jwst_miri/miri_lrs_s2d_transposed.fits", "auto")["result"]
    assert turned.frame.dispersion_axis == 2 and plain.frame.dispersion_axis == 1
    np.testing.assert_array_equal(turned.frame.sci, plain.frame.sci)
    np.testing.assert_array_equal(turned.frame.to_file_orientation(turned.frame.sci).T, plain.frame.sci)
    np.testing.assert_array_equal(turned.spectrum.flux, plain.spectrum.flux)
    # Neither file carries a WCS or a WAVELENGTH extension (test_wcs.py reads one from a JWST-like s2d).
    assert plain.frame.wavelength_unit == "pix"
    notes = " ".join(plain.frame.notes)
    assert "decided from the data" in notes and "wavelengths are column numbers" in notes


def test_miri_s2d_is_not_cleaned_away_and_the_old_cosmic_step_is_warned():
    # The auto preset's cosmic step (medians along the slit and the dispersion, each pixel's noise)
    # leaves the s2d's structure alone; the tutorial's square median with one sigma for the frame
    # cleans whole columns of it, which the cosmic step kind's warning says.
    import longslit

    result = outcome("jwst_miri/miri_lrs_s2d_dispaxis2.fits", "jwst-miri-lrs")["result"]
    assert result.cosmic.mask.mean() < 0.03
    assert not [w for w in result.warnings if w.startswith("cosmic:")]
    square = {"model": "square", "noise": "frame", "size": 5, "threshold": 8.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", longslit.LongslitWarning)
        old = longslit.reduce(
            _need(REAL / "jwst_miri/miri_lrs_s2d_dispaxis2.fits"), "jwst-miri-lrs", cosmic=square
        )
    assert any("cosmic rays do not line up along the slit" in w for w in old.warnings), old.warnings


def test_outputs_say_how_the_input_was_read_and_products_keep_its_orientation(tmp_path):
    from astropy.io import fits

    import longslit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", longslit.LongslitWarning)
        turned = longslit.reduce(_need(REAL / "jwst_miri/miri_lrs_s2d_dispaxis2.fits"), "jwst-miri-lrs")
        kast = longslit.reduce(_need(REAL / "lick_kast/pypeit_kast_b27.fits.gz"), "kast-blue")
    turned.write(tmp_path / "miri.fits", products=True)
    kast.write(tmp_path / "kast.fits")
    with fits.open(_need(REAL / "jwst_miri/miri_lrs_s2d_dispaxis2.fits")) as raw:
        stored = next(h.data.shape for h in raw if getattr(h, "data", None) is not None and h.data.ndim == 2)
    with fits.open(tmp_path / "miri.fits") as out:
        assert out[0].header["DISPAXIS"] == 2
        assert out["CLEANED"].data.shape == stored == (387, 44)  # the file's orientation, not the turned one
        np.testing.assert_array_equal(out["CLEANED"].data.T, turned.cleaned.sci.astype(np.float32))
    with fits.open(tmp_path / "kast.fits") as out:
        header = out[0].header
        assert header["DISPAXIS"] == 1 and header["DATASEC"] == "[1:2048,1:350]"
        assert header["NOISEMOD"].startswith("calibrate: read noise 3.7 e-")
        assert header.get("WAVEMED") == kast.frame.wavelength_medium


def main(argv: list[str]) -> int:
    if argv != ["--update-doc"]:
        print(table())
        return 0
    text = DOC.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.DOTALL)
    DOC.write_text(pattern.sub(lambda _: f"{TABLE_START}\n{table()}\n{TABLE_END}", text), encoding="utf-8")
    return 0


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("pypeit_kast_b1.fits.gz", "looks like an arc-lamp frame"),
        ("pypeit_kast_b11.fits.gz", "looks like a flat-field"),
    ],
)
def test_kast_arc_and_flat_given_as_science_exit_2_in_one_sentence_with_nothing_written(name, said, tmp_path):
    import subprocess

    script = Path(sys.executable).parent / "longslit"
    source = _need(REAL / "lick_kast" / name)
    before = source.stat().st_mtime_ns, source.stat().st_size
    for recipe in ("kast-blue", "auto"):
        out = tmp_path / recipe
        command = [str(script), "reduce", str(source), "-r", recipe, "--outdir", str(out)]
        refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
        assert refused.returncode == 2 and len(errors) == 1 and "Traceback" not in refused.stderr
        assert said in errors[0] and "read.calibration_check=false" in errors[0]
        assert not out.exists() or not any(out.iterdir())  # nothing written
    assert (source.stat().st_mtime_ns, source.stat().st_size) == before  # the input untouched


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


def test_through_the_console_script_a_refusal_is_one_line_and_a_reduction_is_written(tmp_path):
    import subprocess

    script = Path(sys.executable).parent / "longslit"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    refused = subprocess.run(
        [
            str(script),
            "reduce",
            str(_need(REAL / "lick_kast/kast_blue_arc_600_4310.fits")),
            "--outdir",
            str(tmp_path / "a"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert refused.stderr.startswith("error: ")
    assert not any((tmp_path / "a").iterdir())  # nothing written
    reduced = subprocess.run(
        [
            str(script),
            "reduce",
            str(_need(REAL / "lick_kast/pypeit_kast_b24.fits.gz")),
            "-r",
            "kast-blue",
            "--outdir",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reduced.returncode == 0, reduced.stderr
    assert "variance from the noise model, read noise 3.7 e-" in reduced.stderr
    assert len(list((tmp_path / "b").iterdir())) == 1
