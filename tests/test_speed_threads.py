"""The steps run with one BLAS thread unless the user chose a number (longslit.numerics.threads)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import longslit
from longslit.numerics import threads
from longslit.steps import background
from longslit.testing import make_frame


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def unchosen(monkeypatch):
    for name in threads.USER_CHOICE:
        monkeypatch.delenv(name, raising=False)


def test_one_blas_thread_inside_and_the_pool_restored_after(unchosen):
    before = blas_threads()
    assert before  # numpy's OpenBLAS at least
    with threads.single_threaded_blas():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before


def test_a_library_loaded_later_is_limited_too(unchosen):
    with threads.single_threaded_blas():
        pass
    import scipy.linalg  # noqa: F401  (its own OpenBLAS, loaded now if it was not yet)

    with threads.single_threaded_blas():
        assert set(blas_threads()) == {1}


def test_a_users_choice_is_left_alone(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    before = blas_threads()
    with threads.single_threaded_blas():
        assert blas_threads() == before


def test_the_pipeline_steps_run_with_one_blas_thread(unchosen, monkeypatch, tmp_path):
    seen = []
    original = background.fit_columns

    def recording(*args, **kwargs):
        seen.append(blas_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(background, "fit_columns", recording)
    before = blas_threads()
    path = make_frame((120, 200), trace_center=60.0, seed=2, n_cosmics=20).write(tmp_path / "f.fits")
    result = longslit.reduce(path, "auto")
    assert seen and all(set(s) == {1} for s in seen)
    assert blas_threads() == before
    assert np.isfinite(result.spectrum.flux).sum() > 150
