"""Batches (issue 7): many files, failures isolated, a manifest, Ctrl-C and --resume, local processes.

50 small synthetic frames (64 x 80, source at row 31.5), three of them broken: random bytes, a
truncated gzip, and a frame too short for the recipe's rows (its locate step fails). Every good frame must be
reduced exactly as a serial run in this process reduces it. The Dask runs are in test_batch_dask.py.
"""

from __future__ import annotations

import gzip
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import longslit
from longslit.batch import MANIFEST_NAME, expand_inputs, output_name
from longslit.batch.manifest import Manifest, finished, read_records
from longslit.batch.worker import capture_warnings
from longslit.errors import InputError
from longslit.testing import make_frame

LONGSLIT = Path(sys.executable).parent / "longslit"
ENV = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "LONGSLIT_TEST_KILL_ON")}
#: A recipe whose rows fit the small frames.
RECIPE = """\
name = "small"

[locate]
method = "rows"
aperture = [27, 37]
background = [[2, 20], [44, 62]]

[cosmic]
method = "median"
threshold = 8.0
"""
N_GOOD = 47
BROKEN = {  # file name: text its error must contain
    "broken_garbage.fits": "cannot be read as FITS",
    "broken_truncated.fits.gz": "broken_truncated.fits.gz",
    "broken_short.fits": "locate",  # 24 rows: the recipe's rows 27:37 do not fit, the locate step fails
}


def run(*args: object, cwd: Path, env: dict | None = None, timeout: float = 120):
    command = [str(LONGSLIT), *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout)


def good_name(i: int) -> str:
    # Two of them gzipped: folders contribute *.fits.gz as well.
    return f"frame_{i:02d}.fits.gz" if i in (10, 20) else f"frame_{i:02d}.fits"


@pytest.fixture(scope="session")
def frames(tmp_path_factory) -> Path:
    """The folder of 50 inputs (47 good, 3 broken), and small.toml beside it."""
    root = tmp_path_factory.mktemp("batch")
    folder = root / "frames"
    folder.mkdir()
    for i in range(N_GOOD):
        make_frame((64, 80), trace_center=31.5, seed=i, n_cosmics=20).write(folder / good_name(i))
    (folder / "broken_garbage.fits").write_bytes(np.random.default_rng(7).bytes(4000))
    whole = gzip.compress(fits_bytes(make_frame((64, 80), trace_center=31.5, seed=100)))
    (folder / "broken_truncated.fits.gz").write_bytes(whole[: len(whole) // 2])
    make_frame((24, 80), trace_center=12.0, seed=101).write(folder / "broken_short.fits")
    (root / "small.toml").write_text(RECIPE)
    return folder


def fits_bytes(frame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.hdul.writeto(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def serial(frames, tmp_path_factory) -> dict[str, bytes]:
    """Reference: every good frame reduced in this process, one after the other: name -> spectrum bytes."""
    out = tmp_path_factory.mktemp("serial")
    results = list(longslit.reduce_many(frames, frames.parent / "small.toml", out, jobs=1))
    assert len(results) == N_GOOD + len(BROKEN)
    assert sorted(r.input for r in results if not r.ok) == sorted(str(frames / n) for n in BROKEN)
    return {Path(r.output).name: spectrum_bytes(Path(r.output)) for r in results if r.ok}


def spectrum_bytes(path: Path) -> bytes:
    with fits.open(path, memmap=False) as hdul:
        table = hdul["SPECTRUM"].data
        return b"".join(np.ascontiguousarray(table[c]).tobytes() for c in ("FLUX", "UNCERTAINTY", "MASK"))


def manifest_lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n") or not text
    return [json.loads(line) for line in text.splitlines()]  # every line valid JSON


def row(status: str, count: int) -> str:
    """A row of the closing summary table."""
    return f"  {status:<8} {count:>6}"


def assert_no_leftovers(folder: Path) -> None:
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".part")]
    assert hidden == [], hidden


def check_outputs_match(out: Path, serial: dict[str, bytes], names: list[str] | None = None) -> None:
    names = names if names is not None else list(serial)
    assert names
    for name in names:
        assert spectrum_bytes(out / name) == serial[name], name


# -- a folder in local processes ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder_run(frames, tmp_path_factory):
    folder = tmp_path_factory.mktemp("folder_run")
    (folder / "out").mkdir()
    proc = run(
        "reduce",
        frames,
        "-r",
        frames.parent / "small.toml",
        "--outdir",
        "out",
        "--jobs",
        "2",
        "--json",
        cwd=folder,
    )
    return proc, folder / "out"


def test_folder_in_two_processes_matches_serial_and_records_failures(folder_run, serial):
    proc, out = folder_run
    assert proc.returncode == 1, proc.stderr  # something failed: 1
    records = manifest_lines(out / MANIFEST_NAME)
    assert len(records) == 50
    by_name = {Path(r["input"]).name: r for r in records}
    assert len(by_name) == 50
    for name, text in BROKEN.items():
        record = by_name[name]
        assert record["status"] == "failed" and record["output"] is None
        assert text in record["error"], record["error"]
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == N_GOOD
    for record in ok:
        assert Path(record["input"]).is_absolute() and Path(record["output"]).is_file()
        assert record["error"] is None and record["recipe_hash"] == ok[0]["recipe_hash"]
        assert {"read", "locate", "cosmic", "background", "extract", "write", "total"} <= set(
            record["timings"]
        )
        assert {"longslit", "numpy", "astropy", "python"} <= set(record["versions"])
    assert len({r["worker"] for r in ok}) == 2  # two processes shared the work
    assert len({r["run"] for r in records}) == 1
    check_outputs_match(out, serial)
    assert sorted(p.name for p in out.iterdir()) == sorted([*serial, MANIFEST_NAME])
    assert_no_leftovers(out)


def test_folder_run_prints_json_in_input_order_errors_and_a_summary(folder_run, frames):
    proc, _ = folder_run
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    expected = sorted(str(frames / n) for n in [*map(good_name, range(N_GOOD)), *BROKEN])
    assert [line["input"] for line in lines] == expected
    assert sum(line["status"] == "ok" for line in lines) == N_GOOD
    assert all(line["columns"] == 80 for line in lines if line["status"] == "ok")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3 and all(any(n in e for n in BROKEN) for e in errors)
    assert "Traceback" not in proc.stderr
    assert "on 2 processes" in proc.stderr and "files/s" in proc.stderr
    table = proc.stderr[proc.stderr.index("  status    files") :]
    assert row("ok", 47) in table and row("failed", 3) in table and "manifest: out/" in table


# -- Ctrl-C, then --resume ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def interrupted(frames, tmp_path_factory):
    folder = tmp_path_factory.mktemp("interrupt")
    out = folder / "out"
    out.mkdir()
    args = ["reduce", frames, "-r", frames.parent / "small.toml", "--outdir", "out", "--jobs", "2"]
    proc = subprocess.Popen(
        [str(LONGSLIT), *map(str, args)],
        cwd=folder,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    manifest = out / MANIFEST_NAME
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and manifest.read_text().count("\n") >= 3:
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.005)
    _, stderr = proc.communicate(timeout=60)
    first = manifest_lines(manifest)
    files_after_first = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    resumed = run(*args, "--resume", cwd=folder)
    return {
        "proc": proc,
        "stderr": stderr,
        "first": first,
        "files": files_after_first,
        "out": out,
        "resumed": resumed,
        "all": manifest_lines(manifest),
    }


def test_ctrl_c_stops_cleanly(interrupted):
    assert interrupted["proc"].returncode == 130, interrupted["stderr"]
    first = interrupted["first"]
    assert 3 <= len(first) < 50, "the batch should have been stopped midway"
    assert "rerun with --resume" in interrupted["stderr"] and "Traceback" not in interrupted["stderr"]
    # Every output on disk is recorded as ok, and every ok is on disk: nothing partial, no temp files.
    written = {name for name in interrupted["files"] if name != MANIFEST_NAME}
    assert written == {Path(r["output"]).name for r in first if r["status"] == "ok"}
    assert not any(name.startswith(".") or name.endswith(".part") for name in interrupted["files"])


def test_resume_redoes_only_the_unfinished(interrupted, serial, frames):
    resumed = interrupted["resumed"]
    assert resumed.returncode == 1, resumed.stderr  # the broken ones fail again
    first, everything = interrupted["first"], interrupted["all"]
    second = everything[len(first) :]
    assert everything[: len(first)] == first  # appended, not rewritten
    assert len({r["run"] for r in second}) == 1 and second[0]["run"] != first[0]["run"]
    done_before = {r["input"] for r in first if r["status"] == "ok"}
    skipped = {r["input"] for r in second if r["status"] == "skipped"}
    redone = [r["input"] for r in second if r["status"] != "skipped"]
    assert skipped == done_before
    assert sorted(redone) == sorted(str(p) for p in frames.iterdir() if str(p) not in done_before)
    out = interrupted["out"]
    for name, mtime in interrupted["files"].items():
        if name != MANIFEST_NAME:
            assert (out / name).stat().st_mtime_ns == mtime, f"{name} was rewritten"
    check_outputs_match(out, serial)
    assert_no_leftovers(out)
    assert row("skipped", len(done_before)) in resumed.stderr


# -- a worker killed mid-file ----------------------------------------------------------------------------
def test_killed_worker_is_reported_and_the_batch_goes_on(frames, serial, tmp_path):
    (tmp_path / "out").mkdir()
    env = ENV | {"LONGSLIT_TEST_KILL_ON": "frame_07.fits", "LONGSLIT_TEST_HOOKS": "1"}
    pattern = str(frames / "frame_0*.fits")  # quoted: longslit expands it
    started = time.monotonic()
    proc = run(
        "reduce",
        pattern,
        "-r",
        frames.parent / "small.toml",
        "--outdir",
        "out",
        "-j",
        "2",
        "-q",
        cwd=tmp_path,
        env=env,
        timeout=90,
    )
    assert time.monotonic() - started < 60
    assert proc.returncode == 1, proc.stderr
    records = manifest_lines(tmp_path / "out" / MANIFEST_NAME)
    assert len(records) == 10
    (dead,) = [r for r in records if r["status"] == "failed"]
    assert Path(dead["input"]).name == "frame_07.fits"
    assert "worker process died" in dead["error"] and "exit code 70" in dead["error"]
    good = [Path(r["output"]).name for r in records if r["status"] == "ok"]
    assert len(good) == 9
    check_outputs_match(tmp_path / "out", serial, good)
    assert_no_leftovers(tmp_path / "out")
    assert proc.stdout == "" and proc.stderr.count("error: ") == 1  # --quiet: errors only


# -- progress on a terminal -----------------------------------------------------------------------------
def test_progress_line_with_rate_and_eta_on_a_terminal(frames, tmp_path):
    (tmp_path / "out").mkdir()
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            str(LONGSLIT),
            "reduce",
            str(frames / "frame_1*.fits"),
            "-r",
            str(frames.parent / "small.toml"),
            "--outdir",
            "out",
            "-j",
            "1",
        ],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    assert "\r" in text and "files/s" in text and "ETA" in text and "[###" in text
    assert "9/9 files (9 ok)" in text  # frame_10 is frame_10.fits.gz


# -- errors before the batch starts: exit 2, nothing written ---------------------------------------------
def test_problems_found_before_the_batch_exit_2(frames, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "out").mkdir()
    empty = run("reduce", "empty", "--outdir", "out", cwd=tmp_path)
    assert empty.returncode == 2 and "holds no FITS frames" in empty.stderr
    nothing = run("reduce", "nothing_*.fits", "--outdir", "out", cwd=tmp_path)
    assert nothing.returncode == 2 and "matches no files" in nothing.stderr
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for side in "ab":
        (tmp_path / side / "x.fits").write_bytes((frames / "frame_00.fits").read_bytes())
    clash = run("reduce", "a/x.fits", "b/x.fits", "--outdir", "out", cwd=tmp_path)
    assert clash.returncode == 2 and "would both be written" in clash.stderr
    assert list((tmp_path / "out").iterdir()) == []


# -- the Python API ----------------------------------------------------------------------------------------
def test_reduce_many_yields_results_as_they_complete(frames, serial, tmp_path):
    paths = [frames / good_name(i) for i in range(6)] + [frames / "broken_garbage.fits"]
    batch = longslit.reduce_many(paths, frames.parent / "small.toml", tmp_path, jobs=2)
    assert batch.total == 7 and batch.workers == "2 processes"
    results = list(batch)
    assert sorted(r.index for r in results) == list(range(7))
    assert batch.counts == {"ok": 6, "failed": 1, "skipped": 0} and batch.failed
    for result in results:
        if result.ok:
            assert result.spectrum is not None and len(result.spectrum.flux) == 80
            assert result.summary["columns"] == 80 and result.error is None
            assert spectrum_bytes(Path(result.output)) == serial[Path(result.output).name]
        else:
            assert result.exit_code == 2 and "broken_garbage.fits" in result.error
    again = list(longslit.reduce_many(paths, frames.parent / "small.toml", tmp_path, jobs=1, resume=True))
    assert sorted(r.status for r in again) == ["failed"] + ["skipped"] * 6


def test_leaving_the_loop_early_finishes_what_is_in_flight(frames, tmp_path):
    paths = [frames / good_name(i) for i in range(12)]
    batch = longslit.reduce_many(paths, frames.parent / "small.toml", tmp_path, jobs=2)
    for _ in batch:
        break  # the generator closes here: files in flight finish and are recorded, nothing new starts
    records = manifest_lines(tmp_path / MANIFEST_NAME)
    assert 1 <= len(records) < 12 and len(batch.unfinished) == 12 - len(records)
    assert all(r["status"] == "ok" for r in records)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [MANIFEST_NAME, *(Path(r["output"]).name for r in records)]
    )
    with pytest.raises(RuntimeError, match="runs once"):
        iter(batch)


def test_reduce_many_without_outdir_writes_nothing(frames, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = list(longslit.reduce_many([frames / good_name(1)], frames.parent / "small.toml", jobs=1))
    assert [r.status for r in results] == ["ok"] and results[0].output is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="resume needs a manifest"):
        longslit.reduce_many([frames / good_name(1)], frames.parent / "small.toml", resume=True)


# -- pieces ----------------------------------------------------------------------------------------------
def test_expand_inputs_folders_patterns_and_duplicates(tmp_path):
    for name in ("b.fits", "a.fits.gz", "c.FIT", "a_spectrum.fits", ".hidden.fits", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = expand_inputs(tmp_path)
    assert [Path(p).name for p in found.paths] == ["a.fits.gz", "b.fits", "c.FIT"] and found.batch
    pattern = expand_inputs([str(tmp_path / "*.fits"), str(tmp_path / "b.fits")])
    assert [Path(p).name for p in pattern.paths] == ["a_spectrum.fits", "b.fits"]
    single = expand_inputs("missing.fits")
    assert single.paths == ["missing.fits"] and not single.batch
    assert output_name("night/x.fits.gz", "fits") == "x_spectrum.fits"
    assert output_name("x.fit", "ecsv") == "x_spectrum.ecsv"


def test_manifest_lines_are_whole_and_resume_needs_same_hash_and_output(tmp_path):
    path = tmp_path / "m.jsonl"
    output = tmp_path / "a_spectrum.fits"
    output.write_bytes(b"x")
    with Manifest(path) as manifest:
        manifest.write({"input": "/a.fits", "output": str(output), "status": "ok", "recipe_hash": "h1"})
        manifest.write(
            {"input": "/b.fits", "output": str(tmp_path / "gone.fits"), "status": "ok", "recipe_hash": "h1"}
        )
        manifest.write({"input": "/c.fits", "output": None, "status": "failed", "recipe_hash": "h1"})
    with path.open("a") as handle:
        handle.write('{"input": "/d.fits", "sta')  # a line cut short by a crash
    other = tmp_path / "e_spectrum.fits"
    other.write_bytes(b"x")
    with Manifest(path) as manifest:  # reopening drops the cut line
        manifest.write({"input": "/e.fits", "output": str(other), "status": "skipped", "recipe_hash": "h1"})
    assert [r["input"] for r in manifest_lines(path)] == ["/a.fits", "/b.fits", "/c.fits", "/e.fits"]
    assert sorted(finished(path, "h1")) == ["/a.fits", "/e.fits"]
    assert finished(path, "other") == {}
    assert read_records(tmp_path / "none.jsonl") == []


def test_warnings_are_captured_per_thread():
    barrier = threading.Barrier(2)
    seen: dict[str, list[str]] = {}

    def work(name: str) -> None:
        with capture_warnings() as caught:
            barrier.wait()
            for i in range(3):
                warnings.warn(f"{name} {i}", UserWarning, stacklevel=1)
                time.sleep(0.001)
            barrier.wait()
        seen[name] = [str(w.message) for w in caught]

    threads = [threading.Thread(target=work, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": ["a 0", "a 1", "a 2"], "b": ["b 0", "b 1", "b 2"]}
    with pytest.raises(UserWarning):  # the test's own filter ("error") is back in force
        warnings.warn("after", UserWarning, stacklevel=1)


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS")
POOL_ENV_SCRIPT = """
import json, os, sys
from concurrent.futures import ProcessPoolExecutor
from longslit import _pool

if __name__ == "__main__":
    _pool.start()
    with ProcessPoolExecutor(1, mp_context=_pool.context()) as pool:
        worker = {n: pool.submit(os.getenv, n).result() for n in sys.argv[1:]}
    print(json.dumps({"worker": worker, "parent": {n: os.getenv(n) for n in sys.argv[1:]}}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no fork server on Windows")
@pytest.mark.parametrize("user", [None, "3"])
def test_pool_workers_get_single_threaded_blas_unless_the_user_chose(tmp_path, user):
    env = {k: v for k, v in ENV.items() if k not in BLAS_THREADS}
    if user:
        env["OMP_NUM_THREADS"] = user
    script = tmp_path / "pool_env.py"
    script.write_text(POOL_ENV_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), *BLAS_THREADS[:3]], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    if user:  # the user's choice stands, and nothing is added to it
        assert seen["worker"] == {**dict.fromkeys(BLAS_THREADS[:3]), "OMP_NUM_THREADS": user}
    else:
        assert seen["worker"] == dict.fromkeys(BLAS_THREADS[:3], "1")
    assert seen["parent"] == {n: env.get(n) for n in BLAS_THREADS[:3]}  # the parent's own is untouched
