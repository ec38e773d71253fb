"""The pipeline: products kept, inputs untouched, reruns from the changed step, atomic output."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

import longslit
from longslit import Pipeline, Recipe
from longslit.errors import InputError, OutputError
from longslit.testing import make_frame


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_frame(seed=11, n_cosmics=100).write(tmp_path_factory.mktemp("p") / "in.fits")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_product_is_reachable_and_consistent(source):
    result = longslit.reduce(source, "tutorial")
    assert result.cosmic_mask.shape == result.frame.shape and result.cosmic_mask.dtype == bool
    np.testing.assert_array_equal(
        result.cleaned.sci[result.cosmic_mask], result.cosmic.cleaned[result.cosmic_mask]
    )
    np.testing.assert_allclose(result.subtracted.sci, result.cleaned.sci - result.background_model)
    assert result.aperture.as_rows() == [250, 260]
    assert [band.as_rows() for band in result.geometry.background] == [[10, 200], [300, 480]]
    np.testing.assert_allclose(result.geometry.trace, 254.5)
    spectrum = result.spectrum
    for array in (spectrum.wavelength, spectrum.flux, spectrum.uncertainty, spectrum.mask):
        assert array.shape == (result.frame.shape[1],)
    assert [record.step for record in result.records] == [
        "read",
        "calibrate",
        "locate",
        "wavelength",
        "cosmic",
        "background",
        "extract",
        "flux",
    ]


def test_steps_do_not_modify_their_inputs(source):
    frame = longslit.read(source)
    before = frame.sci.copy(), frame.variance.copy(), frame.mask.copy()
    longslit.reduce(frame, "tutorial")
    for kept, now in zip(before, (frame.sci, frame.variance, frame.mask), strict=True):
        np.testing.assert_array_equal(kept, now)


def test_changing_a_step_reruns_only_it_and_the_steps_after(source):
    pipeline = Pipeline()
    recipe = Recipe.preset("tutorial")
    first = pipeline.run(source, recipe)
    assert pipeline.computed == [
        "read",
        "calibrate",
        "locate",
        "wavelength",
        "cosmic",
        "background",
        "extract",
        "flux",
    ]
    pipeline.run(source, recipe)
    assert pipeline.computed == []
    moved_recipe = recipe.with_overrides({"locate": {"aperture": [251, 261]}})
    moved = pipeline.run(source, moved_recipe)
    # The median cleaning reads only the protected rows, the polynomial only the background rows.
    assert pipeline.computed == ["locate", "extract", "flux"]
    assert not np.allclose(moved.spectrum.flux, first.spectrum.flux)
    fresh = Pipeline().run(source, moved_recipe)  # the cached steps give what a fresh run gives
    np.testing.assert_array_equal(moved.spectrum.flux, fresh.spectrum.flux)
    pipeline.run(source, moved_recipe.with_overrides({"background": {"order": 1}}))
    assert pipeline.computed == ["background", "extract", "flux"]
    pipeline.run(source, moved_recipe.with_overrides({"locate": {"background": [[10, 190], [300, 480]]}}))
    assert pipeline.computed == ["locate", "background", "extract", "flux"]
    pipeline.run(source, moved_recipe.with_overrides({"locate": {"protected": [[231, 281]]}}))
    assert pipeline.computed == ["locate", "cosmic", "background", "extract", "flux"]


def test_a_method_that_does_not_declare_what_it_reads_reruns_on_any_geometry_change(source):
    from longslit.plugins.hookspecs import hookimpl
    from longslit.plugins.manager import Registry
    from longslit.plugins.records import Method
    from longslit.products import CosmicResult

    def keep(frame, geometry):
        return CosmicResult(cleaned=frame.sci.copy(), mask=np.zeros(frame.shape, dtype=bool))

    class Plugin:
        @hookimpl
        def longslit_cosmic_methods(self):
            return [Method("cosmic", "keep", "Change nothing.", keep)]

    registry = Registry(entry_points=False)
    registry.register(Plugin(), name="keep")
    pipeline = Pipeline(registry)
    recipe = Recipe.preset("tutorial").with_overrides({"cosmic": {"method": "keep"}})
    pipeline.run(source, recipe)
    pipeline.run(source, recipe.with_overrides({"locate": {"aperture": [251, 261]}}))
    assert pipeline.computed == ["locate", "cosmic", "background", "extract", "flux"]


def test_an_aperture_outside_the_frame_is_refused(source):
    with pytest.raises(InputError, match=r"locate.aperture rows 600:610 lie outside the frame"):
        longslit.reduce(source, "tutorial", locate={"aperture": [600, 610]})


def test_write_fits_and_ecsv_with_provenance(source, tmp_path):
    from astropy.io import fits
    from astropy.table import Table

    result = longslit.reduce(source, "tutorial")
    fits_path = result.write(tmp_path / "s.fits", products=True)
    with fits.open(fits_path) as hdul:
        assert [hdu.name for hdu in hdul] == [
            "PRIMARY",
            "SPECTRUM",
            "CLEANED",
            "BACKGROUND",
            "CRMASK",
            "GEOMETRY",
        ]
        header = hdul[0].header
        assert header["LSCOSMIC"] == "median (longslit 0.1.0)"
        assert header["INFILE"] == "in.fits" and header["RECIPE"] == "tutorial"
        assert '"aperture":[250,260]' in header["LSRECIPE"]
        table = hdul["SPECTRUM"].data
        assert hdul["SPECTRUM"].header["TUNIT1"] == "Angstrom"
        np.testing.assert_allclose(table["FLUX"], result.spectrum.flux)
        np.testing.assert_array_equal(table["MASK"], result.spectrum.mask)
        assert hdul["CRMASK"].data.sum() == result.cosmic.n_replaced
    ecsv = Table.read(result.write(tmp_path / "s.ecsv", "ecsv"))
    np.testing.assert_allclose(ecsv["flux"], result.spectrum.flux)
    assert ecsv.meta["recipe"]["locate"]["aperture"] == [250, 260]
    assert ecsv.meta["steps"][4] == {
        "step": "cosmic",
        "method": "median",
        "package": "longslit",
        "version": longslit.__version__,
    }


def test_an_existing_output_is_kept_and_the_input_never_written(source, tmp_path):
    result = longslit.reduce(source, "tutorial")
    target = tmp_path / "out.fits"
    target.write_bytes(b"precious")
    with pytest.raises(OutputError, match="exists already; use --overwrite"):
        result.write(target)
    assert target.read_bytes() == b"precious"
    result.write(target, overwrite=True)
    assert target.read_bytes()[:6] == b"SIMPLE"
    before = digest(source)
    with pytest.raises(OutputError, match="is the input file"):
        result.write(source, overwrite=True)
    assert digest(source) == before


def test_a_write_that_fails_midway_leaves_nothing_and_keeps_the_old_file(source, tmp_path, monkeypatch):
    from astropy.io import fits

    result = longslit.reduce(source, "tutorial")
    target = tmp_path / "out.fits"
    result.write(target)
    old = digest(target)

    def disk_full(self, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"SIMPLE  = half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fits.HDUList, "writeto", disk_full)
    with pytest.raises(OutputError, match="writing failed: No space left on device"):
        result.write(target, overwrite=True)
    with pytest.raises(OutputError, match="writing failed"):
        result.write(tmp_path / "new.fits")
    assert digest(target) == old
    assert sorted(os.listdir(tmp_path)) == ["out.fits"]
