"""Writes, the manifest and --resume under faults and hostile paths (issue 23).

Every path longslit writes is created exclusively or replaced atomically, never through a symbolic
link, never onto a device, a pipe or an input of the run; the manifest and ``--resume`` stay
consistent through a full disk, kill -9, reruns and concurrent batches. Each case below is one row of
the "Batches and outputs under faults" table in docs/reliability.md: the test checks the promise and
that the row it observes is the documented one. Regenerate the table with

    LONGSLIT_UPDATE_DOC=1 python -m pytest tests/hardening/test_batch_faults.py

Runs are in this process (``longslit.cli.main``, ``-j 1``) where that shows the behaviour, and through
the console script where processes matter (kill -9, two batches, worker processes).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from astropy.io import fits

from longslit.batch import MANIFEST_NAME, reduce_many
from longslit.batch import manifest as manifest_module
from longslit.batch import worker as worker_module
from longslit.cli import main
from longslit.testing import make_frame

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
TABLE_START, TABLE_END = "<!-- faults table: start -->", "<!-- faults table: end -->"
LONGSLIT = Path(sys.executable).parent / "longslit"
ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("NO_COLOR", "FORCE_COLOR", "LONGSLIT_TEST_KILL_ON", "LONGSLIT_TEST_HOOKS")
}
#: Rows that fit the 64 x 80 frames; every other step comes from the default preset.
RECIPE = '[locate]\nmethod = "rows"\naperture = [27, 37]\nbackground = [[2, 20], [44, 62]]\n'
NAMES = ("a.fits", "b.fits", "c.fits")
#: Rows of the table, as observed by the tests of this run: case id -> (fault, what longslit does).
OBSERVED: dict[str, tuple[str, str]] = {}


def observe(name: str, text: str) -> None:
    fault = next(f for n, f in _FAULTS if n == name)
    OBSERVED[name] = (fault, text)
    documented = _doc_rows().get(name)
    if os.environ.get("LONGSLIT_UPDATE_DOC") != "1":
        assert documented == (fault, text), (
            f"docs/reliability.md row {name!r} is out of date: run LONGSLIT_UPDATE_DOC=1 python -m pytest "
            f"{Path(__file__).relative_to(ROOT)}\n  documented: {documented}\n  observed:   {(fault, text)}"
        )


_FAULTS = [
    ("manifest-is-input", "`--manifest a.fits`, where a.fits is an input (or a hard link to one)"),
    ("manifest-symlink", "the manifest in the output folder is a symbolic link to another file"),
    ("manifest-foreign", "`--manifest notes.txt`, an existing file that is not a manifest"),
    ("output-device", "`-o null --overwrite`, a device node (the null device's numbers, as /dev/null)"),
    ("output-fifo", "`-o pipe.fits --overwrite`, a named pipe (FIFO)"),
    ("output-symlink", "an output name planted as a symbolic link, batch with `--overwrite`"),
    ("temporary", "the temporary file an output is written to"),
    ("enospc-manifest", "disk full (simulated `ENOSPC`) at each manifest write in turn, then `--resume`"),
    ("enospc-tmpfs", "disk full for real: a tmpfs of 4-44 KB, every size in 4 KB steps, then `--resume`"),
    ("rerun", "the same batch run twice, then `--resume`"),
    ("concurrent", "a second batch on an output folder a batch is writing"),
    ("concurrent-real", "two batches started together on one output folder, then `--resume`"),
    ("kill-publish", "kill -9 of the batch right after an output is published, before its line"),
    ("worker-killed", "a worker process killed while reducing (`-j 2`)"),
    ("orphans", "kill -9 of a `-j 2` batch while its workers reduce"),
    ("kill-hook", "`LONGSLIT_TEST_KILL_ON` set in a production environment"),
    ("staging-names", "an output write fails (disk full) in a batch"),
    ("control-names", "an input name with an escape sequence and a newline fails"),
    ("header-path", "where the input came from, in the output"),
]
#: The documented order of the rows.
ORDER = [name for name, _ in _FAULTS]


def _doc_rows() -> dict[str, tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    if TABLE_START not in text:
        return {}
    body = text[text.index(TABLE_START) + len(TABLE_START) : text.index(TABLE_END)]
    rows = {}
    for line in body.strip().splitlines()[2:]:
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def _table() -> str:
    lines = ["| Case | Fault | What longslit does |", "|---|---|---|"]
    for name in ORDER:
        fault, text = OBSERVED[name]
        lines.append(f"| `{name}` | {fault} | {text.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------------------
@pytest.fixture
def frames(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for seed, name in enumerate(NAMES):
        make_frame((64, 80), trace_center=31.5, seed=seed, n_cosmics=10).write(folder / name)
    (tmp_path / "small.toml").write_text(RECIPE, encoding="utf-8")
    return folder


def cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def batch(capsys, frames: Path, out: Path, *extra: object) -> tuple[int, str, str]:
    inputs = [frames / name for name in NAMES]
    return cli(
        capsys, "reduce", *inputs, "--outdir", out, "-r", frames.parent / "small.toml", "-j", "1", *extra
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lines(path: Path) -> list[dict]:
    """Every manifest line; each must be whole JSON."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def shown(text: str, *folders: Path) -> str:
    """stderr made independent of the test's folders, for the table."""
    for folder in folders:
        text = text.replace(f"{folder}/", "")
    return text.strip()


@pytest.fixture
def counted(monkeypatch) -> dict[str, int]:
    """How many times each input is reduced (by name), in this process."""
    seen: dict[str, int] = {}
    real = worker_module.Pipeline.run

    def run(self, source, recipe=None):
        name = Path(str(source)).name
        seen[name] = seen.get(name, 0) + 1
        return real(self, source, recipe)

    monkeypatch.setattr(worker_module.Pipeline, "run", run)
    return seen


def assert_consistent(out: Path, frames: Path) -> None:
    """After a final --resume: every input has its output, whole; no staged file; the manifest parses."""
    records = lines(out / MANIFEST_NAME)
    for name in NAMES:
        output = out / name.replace(".fits", "_spectrum.fits")
        with fits.open(output) as hdul:
            assert hdul[0].header["INFILE"] == name and len(hdul["SPECTRUM"].data) == 80
        last = [r for r in records if Path(r["input"]).name == name][-1]
        assert last["status"] in ("ok", "skipped"), last
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


# -- the manifest --------------------------------------------------------------------------------
def test_a_manifest_naming_an_input_is_refused_and_the_input_kept(frames, tmp_path, capsys):
    a = frames / "a.fits"
    before = digest(a)
    code, out, err = cli(
        capsys, "reduce", a, frames / "b.fits", "--outdir", tmp_path / "out", "--manifest", a, "-j", "1"
    )
    assert code == 2 and out == "" and digest(a) == before
    assert err.count("\n") == 1 and "is the input file" in err
    os.link(a, tmp_path / "alias.jsonl")
    code, _, err2 = cli(
        capsys,
        "reduce",
        a,
        frames / "b.fits",
        "--outdir",
        tmp_path / "out",
        "--manifest",
        tmp_path / "alias.jsonl",
    )
    assert code == 2 and "is the input file" in err2 and digest(a) == before
    assert not (tmp_path / "out").exists()  # refused before anything was made
    observe(
        "manifest-is-input",
        f"refused before anything runs (exit 2), the input untouched: `{shown(err, frames)}`",
    )


def test_a_symlinked_manifest_is_refused_and_its_target_kept(frames, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("line one\nline two, no newline", encoding="utf-8")
    (out / MANIFEST_NAME).symlink_to(precious)
    code, _, err = batch(capsys, frames, out)
    assert code == 2 and precious.read_text(encoding="utf-8") == "line one\nline two, no newline"
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME]  # nothing reduced or written
    observe("manifest-symlink", f"refused (exit 2), the link's target untouched: `{shown(err, tmp_path)}`")


def test_a_file_that_is_not_a_manifest_is_never_truncated(frames, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\nhalf a line", encoding="utf-8")
    code, _, err = batch(capsys, frames, tmp_path / "out", "--manifest", notes)
    assert code == 2 and notes.read_text(encoding="utf-8") == "my notes\nhalf a line"
    assert not (tmp_path / "out").exists()
    observe("manifest-foreign", f"refused (exit 2), the file untouched: `{shown(err, tmp_path)}`")


# -- outputs -------------------------------------------------------------------------------------
def test_a_device_output_is_refused_before_the_reduction(frames, tmp_path, capsys, counted):
    # A device node of our own (the null device's numbers), never the machine's /dev/null: on code
    # without the fix, the run below would replace it with a regular file.
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError):
        pytest.skip("cannot make a device node here (needs root); the FIFO case runs")
    code, _, err = cli(
        capsys, "reduce", frames / "a.fits", "-r", frames.parent / "small.toml", "-o", device, "--overwrite"
    )
    assert code == 2 and stat.S_ISCHR(os.lstat(device).st_mode)
    assert counted == {}  # found before the reduction
    observe(
        "output-device",
        f"refused before the reduction (exit 2), the device kept: `{shown(err, tmp_path)}`",
    )


def test_a_fifo_output_is_refused_and_kept(frames, tmp_path, capsys, counted):
    pipe = tmp_path / "pipe.fits"
    os.mkfifo(pipe)
    code, _, err = cli(
        capsys, "reduce", frames / "a.fits", "-r", frames.parent / "small.toml", "-o", pipe, "--overwrite"
    )
    assert code == 2 and stat.S_ISFIFO(os.lstat(pipe).st_mode) and counted == {}
    observe("output-fifo", f"refused before the reduction (exit 2), the pipe kept: `{shown(err, tmp_path)}`")


def test_a_planted_output_link_is_not_written_through(frames, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    precious = tmp_path / "precious.fits"
    precious.write_bytes(b"someone else's file")
    (out / "a_spectrum.fits").symlink_to(precious)
    code, _, err = batch(capsys, frames, out, "--overwrite", "-q")
    assert code == 1 and precious.read_bytes() == b"someone else's file"
    assert (out / "a_spectrum.fits").is_symlink() and (out / "b_spectrum.fits").is_file()
    status = {Path(r["input"]).name: r["status"] for r in lines(out / MANIFEST_NAME)}
    assert status == {"a.fits": "failed", "b.fits": "ok", "c.fits": "ok"}
    observe(
        "output-symlink",
        f"that file fails, the others are reduced; the link and its target kept: `{shown(err, tmp_path)}`",
    )


def test_the_temporary_file_lives_in_a_private_folder(tmp_path, monkeypatch):
    from longslit.output import write_atomic

    made: list[Path] = []
    real = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        made.append(Path(real(*args, **kwargs)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    seen = {}

    def produce(temporary: Path) -> None:
        seen["mode"] = stat.S_IMODE(os.stat(temporary.parent).st_mode)
        seen["exists"] = os.path.lexists(temporary)
        seen["parent"] = temporary.parent
        temporary.write_bytes(b"spectrum")

    write_atomic(tmp_path / "out.fits", produce)
    assert seen == {"mode": 0o700, "exists": False, "parent": made[0]}
    assert sorted(os.listdir(tmp_path)) == ["out.fits"]  # the private folder is gone
    observe(
        "temporary",
        "written inside a fresh private folder (`mkdtemp`, mode 0700) beside the target, never a name "
        "deleted and recreated; linked or renamed into place, the folder removed",
    )


# -- disk full -----------------------------------------------------------------------------------
def test_disk_full_at_each_manifest_write_then_resume(frames, tmp_path, capsys, counted, monkeypatch):
    said = ""
    for k in (1, 2, 3):
        out = tmp_path / f"out{k}"
        calls = {"n": 0}
        real = os.write

        def write(fd, data, _real=real, _calls=calls, _k=k):
            _calls["n"] += 1
            if _calls["n"] == _k:
                _real(fd, bytes(data[: len(data) // 2]))  # half a line reaches the disk, then it is full
                raise OSError(errno.ENOSPC, "No space left on device")
            return _real(fd, data)

        counted.clear()
        with monkeypatch.context() as patch:
            patch.setattr(manifest_module.os, "write", write)
            code, _, err = batch(capsys, frames, out, "-q")
        assert code == 1 and "No space left on device" in err and "--resume" in err
        lines(out / MANIFEST_NAME)  # whole lines only: the half line was undone
        assert counted == {name: 1 for name in NAMES[:k]}  # it stopped: nothing more started
        code, _, _ = batch(capsys, frames, out, "--resume", "-q")
        assert code == 0
        assert_consistent(out, frames)
        assert counted == {name: 1 for name in NAMES}, counted  # none lost, none reduced twice
        notes = [r.get("note", "") for r in lines(out / MANIFEST_NAME)]
        assert sum(n.startswith("adopted") for n in notes) == 1  # the one published, never recorded
        said = said or err.strip()
    observe(
        "enospc-manifest",
        "the half-written line is undone, the batch stops (exit 1); `--resume` adopts the output published "
        "but not recorded (by its header) and reduces the rest: 0 lost, 0 twice, 0 half-written. "
        f"It says: `{shown(said, tmp_path)}`",
    )


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    return proc.returncode == 0


def test_disk_full_for_real_on_a_small_tmpfs_then_resume(frames, tmp_path, capsys, counted):
    mount = tmp_path / "disk"
    mount.mkdir()
    if not _mount_tmpfs(mount, "4k"):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN); the simulated case runs")
    subprocess.run(["umount", str(mount)], check=True)
    outcomes = set()
    for size in range(4, 48, 4):
        assert _mount_tmpfs(mount, f"{size}k")
        try:
            out = mount / "out"
            counted.clear()
            code, _, err = batch(capsys, frames, out, "-q")
            first = dict(counted)
            outcomes.add("stopped" if "cannot record" in err else ("failed" if code else "ok"))
            if os.path.exists(out / MANIFEST_NAME):
                lines(out / MANIFEST_NAME)
            subprocess.run(["mount", "-o", "remount,size=10m", str(mount)], check=True)
            existed = {name: (out / name.replace(".fits", "_spectrum.fits")).exists() for name in NAMES}
            counted.clear()
            code, _, err = batch(capsys, frames, out, "--resume", "-q")
            assert code == 0, err
            assert_consistent(out, frames)
            # An output that made it to the disk is never reduced again; one that did not is, once.
            assert counted == {name: 1 for name in NAMES if not existed[name]}, (size, first, counted)
        finally:
            subprocess.run(["umount", str(mount)], check=False)
    assert {"stopped", "failed"} <= outcomes, outcomes  # both kinds of full disk were met
    observe(
        "enospc-tmpfs",
        "at every size: an output that does not fit fails (`writing failed: No space left on device`), a "
        "manifest line that does not fit stops the batch; nothing half-written is left, and `--resume` "
        "(after space is freed) completes every input",
    )


# -- reruns and concurrent batches ----------------------------------------------------------------
def test_a_rerun_does_not_poison_resume(frames, tmp_path, capsys):
    out = tmp_path / "out"
    assert batch(capsys, frames, out, "-q")[0] == 0
    code, _, err = batch(capsys, frames, out, "-q")
    assert code == 1 and err.count("exists already") == 3
    code, stdout, err = batch(capsys, frames, out, "--resume")
    assert code == 0 and stdout.count("skipped") == 3, err
    assert "skipped       3" in err and "failed        0" in err
    observe("rerun", "the rerun fails each file (`exists already`); `--resume` then skips all 3 (0 failed)")


def test_a_second_batch_on_a_locked_folder_is_refused(frames, tmp_path, capsys):
    out = tmp_path / "out"
    first = reduce_many([frames / n for n in NAMES], frames.parent / "small.toml", out, jobs=1)
    try:
        code, _, err = batch(capsys, frames, out)
        assert code == 2 and "another longslit batch" in err
    finally:
        results = list(first)
    assert [r.status for r in results] == ["ok"] * 3
    code, stdout, _ = batch(capsys, frames, out, "--resume")
    assert code == 0 and stdout.count("skipped") == 3
    observe(
        "concurrent",
        "the folder is locked (`flock`) while a batch runs; the second is refused (exit 2): "
        f"`{shown(err, tmp_path)}`",
    )


def test_two_batches_at_once_then_resume(frames, tmp_path):
    out = tmp_path / "out"
    command = [
        str(LONGSLIT),
        "reduce",
        *NAMES,
        "--outdir",
        str(out),
        "-r",
        str(frames.parent / "small.toml"),
        "-j",
        "1",
        "-q",
    ]
    procs = [
        subprocess.Popen(command, cwd=frames, env=ENV, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    codes = [p.wait(timeout=120) for p in procs]
    errors = [p.stderr.read() for p in procs]
    for p in procs:
        p.stderr.close()
    assert 0 in codes, (
        errors
    )  # one of them ran; the other was refused, or (if it came after) found it all done
    assert all(
        c == 0 or "another longslit batch" in e or "exists already" in e
        for c, e in zip(codes, errors, strict=True)
    )
    proc = subprocess.run(
        [*command[:-1], "--resume"], cwd=frames, env=ENV, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.count("skipped") == 3, proc.stderr
    assert_consistent(out, frames)
    observe(
        "concurrent-real",
        "one runs, the other is refused (or finds the outputs there); `--resume` then skips all 3",
    )


# -- kill -9 -------------------------------------------------------------------------------------
KILL_AT_PUBLISH = """
import os, signal, sys
from longslit.batch import engine
real = engine.publish
count = [0]
def publish(staged, output, *, overwrite):
    real(staged, output, overwrite=overwrite)
    count[0] += 1
    if count[0] == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # published, not yet recorded
engine.publish = publish
from longslit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_between_publish_and_record_then_resume(frames, tmp_path, capsys, counted):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            KILL_AT_PUBLISH,
            "reduce",
            *NAMES,
            "--outdir",
            str(out),
            "-r",
            str(frames.parent / "small.toml"),
            "-j",
            "1",
            "-q",
        ],
        cwd=frames,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL
    assert [Path(r["input"]).name for r in lines(out / MANIFEST_NAME)] == ["a.fits"]
    assert (out / "b_spectrum.fits").is_file()  # published, without its line
    code, _, err = batch(capsys, frames, out, "--resume")
    assert code == 0 and counted == {"c.fits": 1}, err  # b adopted, not reduced again
    assert "adopted       1" in err
    assert_consistent(out, frames)
    observe(
        "kill-publish",
        "`--resume` finds the output without a line, recognises it by the input name and recipe hash in "
        "its header, adopts it (noted in the manifest and the summary) and reduces only the file never "
        "begun",
    )


WORKERS = 2


def test_a_killed_worker_is_reported_in_the_manifest_and_summary(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    # f1 is wide (a reduction some ten times longer than f0's), so it is still in flight when f2,
    # submitted once f0 is done, kills its worker: with six frames alike, f1 could finish first
    # (whether any file was retried was a race, lost in 2 of 6 runs once reductions got faster).
    for i in range(6):
        shape = (64, 8000) if i == 1 else (64, 80)
        make_frame(shape, trace_center=31.5, seed=i, n_cosmics=10).write(folder / f"f{i}.fits")
    (tmp_path / "small.toml").write_text(RECIPE, encoding="utf-8")
    env = ENV | {"LONGSLIT_TEST_KILL_ON": "f2.fits", "LONGSLIT_TEST_HOOKS": "1"}
    proc = subprocess.run(
        [
            str(LONGSLIT),
            "reduce",
            str(folder),
            "--outdir",
            str(tmp_path / "out"),
            "-r",
            str(tmp_path / "small.toml"),
            "-j",
            str(WORKERS),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    records = {Path(r["input"]).name: r for r in lines(tmp_path / "out" / MANIFEST_NAME)}
    assert records["f2.fits"]["status"] == "failed" and "worker process died" in records["f2.fits"]["error"]
    retried = [n for n, r in records.items() if r.get("note", "").startswith("retried")]
    assert retried and all(records[n]["status"] == "ok" for n in retried)
    assert re.search(r"retried\s+\d+", proc.stderr) and "retried: a worker process died" in proc.stderr
    observe(
        "worker-killed",
        "the file that killed it fails with its exit code; the files in flight with it are rerun alone "
        "and each says so (`retried: ...` in the manifest, a warning, a `retried` row in the summary)",
    )


def test_no_process_outlives_a_killed_batch(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(24):
        make_frame((200, 300), trace_center=100, seed=i).write(folder / f"f{i:02d}.fits")
    proc = subprocess.Popen(
        [str(LONGSLIT), "reduce", str(folder), "--outdir", str(tmp_path / "out"), "-j", str(WORKERS), "-q"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    session = proc.pid
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_session(session)) < 2 + WORKERS:  # + tracker, server
            time.sleep(0.2)
        assert len(_session(session)) >= 2 + WORKERS, "the workers never started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _session(session):
            time.sleep(0.2)
        assert _session(session) == [], "left behind after kill -9 of the batch"
    finally:
        for pid in _session(session):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    observe(
        "orphans",
        "every worker, the fork server and the resource tracker end within seconds (workers watch the "
        "batch process through a pidfd)",
    )


def _session(sid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,sid=,stat="], capture_output=True, text=True).stdout
    return [
        int(p)
        for p, s, st in (line.split() for line in out.splitlines())
        if int(s) == sid and not st.startswith("Z")
    ]


def test_the_kill_hook_is_not_live_in_production(frames, tmp_path, monkeypatch):
    monkeypatch.setenv("LONGSLIT_TEST_KILL_ON", "a.fits")
    with pytest.warns(RuntimeWarning, match="ignored: it is a test-only switch"):
        planned = reduce_many([frames / "a.fits"], frames.parent / "small.toml", tmp_path / "out", jobs=1)
    assert [t.kill_on for t in planned.tasks] == [None]
    planned.close()  # releases the folder it locked, never having run
    monkeypatch.setenv("LONGSLIT_TEST_HOOKS", "1")
    armed = reduce_many([frames / "a.fits"], frames.parent / "small.toml", tmp_path / "out", jobs=1)
    assert [t.kill_on for t in armed.tasks] == ["a.fits"]
    observe(
        "kill-hook",
        "ignored, with a warning, unless `LONGSLIT_TEST_HOOKS=1` arms it as well (and never in the "
        "batch's own process)",
    )


# -- what errors show ----------------------------------------------------------------------------
def test_batch_errors_name_the_output_not_the_staging_file(frames, tmp_path, capsys, monkeypatch):
    from longslit import output

    real = output._flush_to_disk

    def flush(path, *, directory=False):
        if not directory:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, directory=directory)

    monkeypatch.setattr(output, "_flush_to_disk", flush)
    out = tmp_path / "out"
    code, _, err = batch(capsys, frames, out, "-q")
    assert code == 1 and ".part" not in err and err.count(f"{out}/a_spectrum.fits: writing failed") == 1
    assert ".part" not in json.dumps(lines(out / MANIFEST_NAME))
    first = err.splitlines()[0]
    observe(
        "staging-names",
        f"the error names the output, never the hidden staging or temporary file: `{shown(first, tmp_path)}`",
    )


def test_control_characters_of_input_names_are_escaped(frames, tmp_path, capsys):
    hostile = frames / "bad\x1b[31m\n.fits"
    hostile.write_bytes(os.urandom(3000))
    code, _, err = cli(
        capsys,
        "reduce",
        hostile,
        frames / "a.fits",
        "--outdir",
        tmp_path / "out",
        "-r",
        frames.parent / "small.toml",
        "-j",
        "1",
        "-q",
    )
    assert code == 1 and "\x1b" not in err
    (line,) = [x for x in err.splitlines() if "bad" in x]
    assert "bad\\x1b[31m\\n.fits" in line
    observe("control-names", f"escaped in every line: `{shown(line, frames)}`")


def test_outputs_record_the_input_name_and_the_path_only_on_request(frames, tmp_path, capsys):
    out = tmp_path / "out"
    assert batch(capsys, frames, out, "-q")[0] == 0
    data = (out / "a_spectrum.fits").read_bytes()
    assert str(frames).encode() not in data
    with fits.open(out / "a_spectrum.fits") as hdul:
        assert hdul[0].header["INFILE"] == "a.fits" and "LSINPUT" not in hdul[0].header
    code, _, _ = cli(
        capsys,
        "reduce",
        frames / "a.fits",
        "-r",
        frames.parent / "small.toml",
        "--format",
        "ecsv",
        "-o",
        tmp_path / "a.ecsv",
    )
    text = (tmp_path / "a.ecsv").read_text(encoding="utf-8")
    assert code == 0 and "{input: a.fits}" in text and str(frames) not in text
    code, _, _ = cli(
        capsys,
        "reduce",
        frames / "a.fits",
        "-r",
        frames.parent / "small.toml",
        "-o",
        tmp_path / "p.fits",
        "--set",
        "write.input_path=true",
    )
    with fits.open(tmp_path / "p.fits") as hdul:
        assert code == 0 and hdul[0].header["LSINPUT"] == str(frames / "a.fits")
    observe(
        "header-path",
        "the input's file name only (`INFILE`, ECSV `input`); its full path with `--set "
        "write.input_path=true` (`LSINPUT`, `input_path`)",
    )


# -- the table -----------------------------------------------------------------------------------
def test_the_faults_table_in_docs_reliability_is_this_run():
    """Last: the documented rows are these cases, in this order (each case compares its own row)."""
    if os.environ.get("LONGSLIT_UPDATE_DOC") == "1":
        missing = [name for name in ORDER if name not in OBSERVED]
        assert not missing, f"run every case to regenerate the table; not observed: {missing}"
        text = DOC.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.DOTALL)
        DOC.write_text(
            pattern.sub(lambda _: f"{TABLE_START}\n{_table()}\n{TABLE_END}", text), encoding="utf-8"
        )
    assert list(_doc_rows()) == ORDER
    for name, row in OBSERVED.items():
        assert _doc_rows()[name] == row


@pytest.mark.parametrize("fmt", ["fits", "ecsv"])
def test_the_provenance_adoption_reads_survives_long_and_quoted_names(tmp_path, fmt):
    """INFILE over 68 characters continues over CONTINUE cards; quotes are doubled in FITS strings."""
    import longslit
    from longslit.batch.manifest import _header_name, recorded_provenance

    name = "it's a long name with 'quotes', ü and spaces, well over sixty-eight characters long.fits"
    source = make_frame((64, 80), trace_center=31.5, seed=1).write(tmp_path / name)
    rows = {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}
    reduction = longslit.reduce(source, "tutorial", locate=rows)
    made = recorded_provenance(reduction.write(tmp_path / f"out.{fmt}", fmt))
    assert made == {"input": _header_name(str(source)), "recipe_hash": reduction.recipe.digest()}
    assert "\\xfc" in made["input"]
    (tmp_path / "other.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50 + b"END".ljust(80))
    assert recorded_provenance(tmp_path / "other.fits") is None  # not longslit's: never adopted


def test_a_manifest_hard_linked_to_another_file_is_refused(frames, tmp_path, capsys):
    """An empty file passes the "is it a manifest" check, so a planted hard link is refused by its count."""
    elsewhere = tmp_path / "elsewhere.log"
    elsewhere.write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    os.link(elsewhere, out / MANIFEST_NAME)
    code, _, err = batch(capsys, frames, out)
    assert code == 2 and "other hard links" in err and elsewhere.read_bytes() == b""
