"""Batches on Dask (issue 7): a LocalCluster on loopback, from Python and from the command line.

Two worker processes (one thread each), everything on 127.0.0.1. The same 50 frames as
test_batch.py (fixtures imported from there): every good frame reduced exactly as the serial run,
the broken ones in the manifest with their reasons; a worker killed mid-file is reported, not hung.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from test_batch import (  # fixtures and helpers shared with the local-process tests
    BROKEN,
    ENV,
    N_GOOD,
    assert_no_leftovers,
    check_outputs_match,
    frames,  # noqa: F401  (a fixture)
    manifest_lines,
    run,
    serial,  # noqa: F401  (a fixture)
)

import longslit
from longslit.batch import MANIFEST_NAME

try:
    import distributed
except ImportError:  # the dask extra is in the test extra: missing is a broken install under CI
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("the dask extra (longslit[dask]) is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def cluster():
    # Workers in their own processes (processes=True), so a killed worker is a real dead process and
    # the pickling a real cluster needs is exercised. Loopback only; no dashboard.
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # None still serves HTTP on :8787; a free loopback port
            silence_logs=logging.ERROR,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield local, client


def test_local_cluster_matches_serial_and_records_failures(cluster, frames, serial, tmp_path):  # noqa: F811
    _, client = cluster
    recipe = frames.parent / "small.toml"
    seen = []
    batch = longslit.reduce_many(frames, recipe, tmp_path, client=client)
    assert batch.workers.startswith("Dask tcp://127.0.0.1:")
    for result in batch:  # yielded as each finishes
        seen.append(result)
    assert len(seen) == 50 and batch.counts["ok"] == N_GOOD and batch.failed
    records = manifest_lines(tmp_path / MANIFEST_NAME)
    assert len(records) == 50
    by_name = {Path(r["input"]).name: r for r in records}
    for name, text in BROKEN.items():
        assert by_name[name]["status"] == "failed" and text in by_name[name]["error"]
    ok = [r for r in records if r["status"] == "ok"]
    assert len({r["worker"] for r in ok}) == 2
    check_outputs_match(tmp_path, serial)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*serial, MANIFEST_NAME])
    assert_no_leftovers(tmp_path)


def test_scheduler_option_and_a_killed_worker(cluster, frames, serial, tmp_path):  # noqa: F811
    local, _ = cluster
    (tmp_path / "out").mkdir()
    env = ENV | {"LONGSLIT_TEST_KILL_ON": "frame_03.fits", "LONGSLIT_TEST_HOOKS": "1"}
    started = time.monotonic()
    proc = run(
        "reduce",
        str(frames / "frame_0*.fits"),
        "-r",
        frames.parent / "small.toml",
        "--outdir",
        "out",
        "--scheduler",
        local.scheduler_address,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert time.monotonic() - started < 90
    assert proc.returncode == 1, proc.stderr
    records = manifest_lines(tmp_path / "out" / MANIFEST_NAME)
    assert len(records) == 10
    (dead,) = [r for r in records if r["status"] == "failed"]
    assert Path(dead["input"]).name == "frame_03.fits" and "worker process died" in dead["error"]
    good = [Path(r["output"]).name for r in records if r["status"] == "ok"]
    assert len(good) == 9
    check_outputs_match(tmp_path / "out", serial, good)
    assert_no_leftovers(tmp_path / "out")
    assert "on Dask tcp://127.0.0.1:" in proc.stderr
