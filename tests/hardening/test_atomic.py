"""Atomic writes under failure: whatever fails, no partial file is left and the previous output is intact.

Each fault strikes the spectrum (``Reduction.write``) and the recipe file the terminal UI saves (a
``write_atomic`` of the TOML text, as ``LongslitApp.save`` does); tests/test_pipeline.py has the disk
filling up inside astropy's writer.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

import pytest

import longslit
from longslit.errors import OutputError
from longslit.output import safe_name, write_atomic
from longslit.testing import make_frame

SMALL = {"locate": {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}}
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def reduction(tmp_path_factory):
    source = make_frame((64, 80), trace_center=31.5, seed=3, n_cosmics=20)
    return longslit.reduce(source.write(tmp_path_factory.mktemp("a") / "in.fits"), "tutorial", **SMALL)


def write_spectrum(reduction, path: Path, overwrite: bool) -> None:
    reduction.write(path, overwrite=overwrite)


def write_recipe(reduction, path: Path, overwrite: bool) -> None:
    text = reduction.recipe.to_toml()
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite)


WRITERS = [pytest.param(write_spectrum, id="spectrum"), pytest.param(write_recipe, id="recipe")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fail(code: int, text: str):
    def raiser(*args, **kwargs):
        raise OSError(code, text)

    return raiser


@pytest.fixture
def previous(tmp_path) -> Path:
    """An earlier output, to be kept byte for byte."""
    target = tmp_path / "out.fits"
    target.write_bytes(b"an earlier output, precious")
    return target


def assert_kept(previous: Path) -> None:
    assert previous.read_bytes() == b"an earlier output, precious"
    assert sorted(os.listdir(previous.parent)) == [previous.name]  # no temporary file left


@pytest.mark.parametrize("write", WRITERS)
@pytest.mark.parametrize(
    ("patched", "error", "message"),
    [
        ("os.replace", (errno.EACCES, "Permission denied"), "writing failed: Permission denied"),
        (
            "os.replace",
            (errno.EXDEV, "Invalid cross-device link"),
            "writing failed: Invalid cross-device link",
        ),
        ("os.fsync", (errno.ENOSPC, "No space left on device"), "writing failed: No space left on device"),
        ("os.fsync", (errno.EIO, "Input/output error"), "writing failed: Input/output error"),
        ("tempfile.mkdtemp", (errno.EACCES, "Permission denied"), "cannot write in .*: Permission denied"),
    ],
)
def test_a_failing_overwrite_keeps_the_previous_output(
    write, patched, error, message, reduction, previous, monkeypatch
):
    module, name = patched.split(".")
    monkeypatch.setattr({"os": os, "tempfile": tempfile}[module], name, fail(*error))
    with pytest.raises(OutputError, match=message):
        write(reduction, previous, overwrite=True)
    assert_kept(previous)


@pytest.mark.parametrize("write", WRITERS)
def test_a_failing_new_write_leaves_nothing(write, reduction, tmp_path, monkeypatch):
    """Without --overwrite the move is a hard link; when links fail too, the fallback rename is tried."""
    monkeypatch.setattr(os, "link", fail(errno.EPERM, "Operation not permitted"))
    monkeypatch.setattr(os, "replace", fail(errno.EBUSY, "Device or resource busy"))
    with pytest.raises(OutputError, match="writing failed: Device or resource busy"):
        write(reduction, tmp_path / "new.fits", overwrite=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("write", WRITERS)
def test_a_file_system_without_hard_links_still_gets_the_file(write, reduction, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "link", fail(errno.EPERM, "Operation not permitted"))
    write(reduction, tmp_path / "new.fits", overwrite=False)
    assert os.listdir(tmp_path) == ["new.fits"] and (tmp_path / "new.fits").stat().st_size > 0


@pytest.mark.parametrize("write", WRITERS)
def test_the_file_is_flushed_to_disk_before_it_is_moved(write, reduction, tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append("fsync " + ("folder" if os.path.isdir(f"/proc/self/fd/{descriptor}") else "file"))
        return real_fsync(descriptor)

    def replace(source, target):
        events.append("replace")
        return real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "out.fits"
    target.write_bytes(b"old")
    write(reduction, target, overwrite=True)
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("no /proc/self/fd to tell a folder's descriptor from a file's")
    assert events == ["fsync file", "replace", "fsync folder"]


def test_an_interrupted_or_failing_writer_leaves_nothing_and_the_error_goes_on(previous):
    def interrupted(temporary: Path) -> None:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt

    def buggy(temporary: Path) -> None:
        temporary.write_bytes(b"half")
        raise ValueError("a bug in a writer")

    with pytest.raises(KeyboardInterrupt):
        write_atomic(previous, interrupted, overwrite=True)
    assert_kept(previous)
    with pytest.raises(ValueError, match="a bug in a writer"):
        write_atomic(previous, buggy, overwrite=True)
    assert_kept(previous)


def test_a_writer_that_writes_nothing_is_an_error(previous):
    with pytest.raises(OutputError, match="the write method produced no file"):
        write_atomic(previous, lambda temporary: None, overwrite=True)
    assert_kept(previous)


def test_odd_targets_are_refused_without_a_crash(tmp_path):
    loop = tmp_path / "loop.fits"
    loop.symlink_to(loop)
    with pytest.raises(OutputError, match="is a symbolic link"):
        write_atomic(loop, lambda temporary: temporary.write_bytes(b"x"))
    source = tmp_path / "in.fits"
    source.write_bytes(b"input")
    with pytest.raises(OutputError, match="is the input file"):  # reached through a link
        (tmp_path / "alias.fits").symlink_to(source)
        write_atomic(
            tmp_path / "alias.fits", lambda t: t.write_bytes(b"x"), overwrite=True, inputs=[str(source)]
        )
    assert source.read_bytes() == b"input"
    long_name = tmp_path / ("n" * 250 + ".fits")  # the temporary's name must still fit in 255 bytes
    write_atomic(long_name, lambda temporary: temporary.write_bytes(b"x"))
    assert long_name.read_bytes() == b"x"


@pytest.mark.skipif(
    ROOT, reason="root writes into a read-only folder anyway; the simulated denials above run"
)
def test_a_read_only_folder_is_refused_for_real(reduction, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "out.fits").write_bytes(b"an earlier output, precious")
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="Permission denied"):
            reduction.write(folder / "out.fits", overwrite=True)
        assert_kept(folder / "out.fits")
    finally:
        folder.chmod(0o755)


def test_the_unsearchable_case_is_an_output_error(tmp_path, monkeypatch):
    """A folder on the way that cannot be searched makes ``exists()`` raise: an OutputError, not a crash."""

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "is_dir", denied)
    with pytest.raises(OutputError, match="cannot be checked: Permission denied"):
        write_atomic(tmp_path / "x" / "out.fits", lambda t: t.write_bytes(b"x"))


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("frame", "frame"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("-rf", "rf"),
        ("--help", "help"),
        (".hidden", "hidden"),
        ("two\nlines", "two_lines"),
        ("tab\there", "tab_here"),
        ("bell\x07", "bell_"),
        ("evil\u202efdp.exe", "evil_fdp.exe"),  # a right-to-left override would show "exe.pdf"
        ("caf\udce9", "caf_"),  # an undecodable byte in a file name
        ("night 1 – Zürich", "night 1 – Zürich"),  # spaces and letters are legitimate
        ("a\\b", "a_b"),
        ("", "frame"),
        ("...", "frame"),
        ("x" * 300, "x" * 200),
    ],
)
def test_safe_name(name, safe):
    assert safe_name(name) == safe
    assert "/" not in safe and not safe.startswith(("-", "."))
