"""The two example plugins as a user gets them: ``pip install ./plugins/...``, and they are there.

``.ci/run`` installs ``plugins/longslit-lacosmic`` and ``plugins/longslit-skymedian`` before the tests;
in development install them yourself (``pip install -e plugins/longslit-lacosmic -e
plugins/longslit-skymedian``). Without them these tests skip, saying so; under ``CI=true`` they fail.
Everything runs through the real ``longslit`` console script; the commands start together in a
thread pool, and each test waits for its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.table import Table

from longslit.testing import make_frame

LONGSLIT = Path(sys.executable).parent / "longslit"
#: distribution -> (entry-point name, step, method)
PACKAGES = {
    "longslit-lacosmic": ("lacosmic", "cosmic", "lacosmic"),
    "longslit-skymedian": ("skymedian", "background", "skymedian"),
}
#: Rows that fit the small (64 x 80, source at row 31.5) synthetic frame.
SMALL = ["-r", "tutorial", "--set", "locate.aperture=27:37", "--set", "locate.background=2:20,44:62"]
SMALL += ["--set", "locate.protected=auto"]
RECIPE = """\
name = "with-plugins"

[locate]
method = "rows"
aperture = [27, 37]
background = [[2, 20], [44, 62]]

[cosmic]
method = "lacosmic"
sigclip = 5.5
model = "sky+source"

[background]
method = "skymedian"
sigma = 3.5
"""
REDUCE = ["reduce", "small.fits", *SMALL]
LACOSMIC = ["--set", "cosmic.method=lacosmic"]
COMMANDS = {
    "plugins": (["plugins"], {}),
    "plugins_json": (["plugins", "--json"], {}),
    "steps": (["steps"], {}),
    "lacosmic": ([*REDUCE, *LACOSMIC, "--set", "cosmic.sigclip=6", "-o", "lacosmic.fits", "--json"], {}),
    "skymedian": ([*REDUCE, "--set", "background.method=skymedian", "-o", "skymedian.ecsv", "--json"], {}),
    "recipe": (["reduce", "small.fits", "-r", "with-plugins.toml", "--no-write", "--json"], {}),
    "recipe_show": (["recipe", "show", "with-plugins.toml"], {}),
    "bad_value": ([*REDUCE, *LACOSMIC, "--set", "cosmic.model=everything", "--no-write"], {}),
    "no_plugins": (["--no-plugins", *REDUCE, *LACOSMIC, "--no-write"], {}),
    "no_plugins_env": (["steps"], {"LONGSLIT_NO_PLUGINS": "1"}),
    "only_lacosmic": (["plugins"], {"LONGSLIT_PLUGINS": "lacosmic"}),
}


def installed_versions() -> dict[str, str]:
    """The installed example plugins' versions; skip (fail under CI) when one is missing."""
    found, missing = {}, []
    for distribution in PACKAGES:
        try:
            found[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            missing.append(distribution)
    if missing:
        folders = " ".join(f"./plugins/{name}" for name in missing)
        message = f"example plugin(s) not installed: {', '.join(missing)} (pip install {folders})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"under CI the example plugins must be installed (.ci/run does it): {message}")
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def versions() -> dict[str, str]:
    return installed_versions()


@pytest.fixture(scope="module")
def runs(versions, tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin_packages")
    make_frame((64, 80), trace_center=31.5, seed=1).write(folder / "small.fits")
    (folder / "with-plugins.toml").write_text(RECIPE)
    base = {k: v for k, v in os.environ.items() if not k.startswith("LONGSLIT_") and k != "NO_COLOR"}

    def run(name: str) -> subprocess.CompletedProcess[str]:
        args, env = COMMANDS[name]
        command = [str(LONGSLIT), *args]
        return subprocess.run(
            command, cwd=folder, env=base | env, capture_output=True, text=True, timeout=120
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, name) for name in COMMANDS}
        yield folder, {name: future.result() for name, future in futures.items()}


def result(runs, name: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = runs[1][name]
    assert proc.returncode == code, (name, proc.stdout, proc.stderr)
    return proc


def test_registry_finds_both_with_their_distributions():
    from longslit.plugins.manager import Registry

    versions = installed_versions()
    registry = Registry()
    for distribution, (entry, step, name) in PACKAGES.items():
        method = registry.method(step, name)
        assert (method.package, method.version) == (distribution, versions[distribution])
        (info,) = [plugin for plugin in registry.plugins if plugin.name == entry]
        assert info.methods == (f"{step}.{name}",) and info.source.startswith("longslit_")
    assert not [p for p in registry.problems if p.package in PACKAGES]


def test_plugins_lists_them_with_distribution_version_and_module(runs, versions):
    stdout = result(runs, "plugins").stdout
    assert "third-party plugins: all installed" in stdout
    for distribution, (entry, step, name) in PACKAGES.items():
        module = distribution.replace("-", "_") + ".plugin"
        assert f"  {entry} [{distribution} {versions[distribution]}] from {module}: {step}.{name}\n" in stdout
    assert "failed:" not in stdout or not any(d in stdout.split("failed:")[1] for d in PACKAGES)
    data = json.loads(result(runs, "plugins_json").stdout)
    loaded = {p["package"]: p for p in data["plugins"]}
    for distribution, (_, step, name) in PACKAGES.items():
        assert loaded[distribution]["version"] == versions[distribution]
        assert loaded[distribution]["methods"] == [f"{step}.{name}"]


def test_steps_lists_their_methods_and_every_parameter(runs, versions):
    from longslit.plugins.manager import Registry

    lines = result(runs, "steps").stdout.splitlines()
    registry = Registry()
    for distribution, (_, step, name) in PACKAGES.items():
        start = lines.index(f"{step}:")
        header = [i for i, line in enumerate(lines) if line.startswith(f"  {name} [{distribution} ")]
        assert header and header[0] > start, name
        block = lines[header[0] + 1 : header[0] + 1 + len(registry.method(step, name).params)]
        assert [line.split(" = ")[0].strip() for line in block] == [
            p.name for p in registry.method(step, name).params
        ]
    assert any(line.strip().startswith('model = "sky+source"  -- ') for line in lines)
    assert any(line.strip().startswith("gain = auto e-/count  -- ") for line in lines)


def test_reduce_with_lacosmic_records_the_plugin(runs, versions):
    proc = result(runs, "lacosmic")
    summary = json.loads(proc.stdout)
    version = versions["longslit-lacosmic"]
    assert summary["methods"]["cosmic"] == f"lacosmic (longslit-lacosmic {version})"
    assert summary["cosmic_rays_replaced"] > 0
    header = fits.getheader(runs[0] / "lacosmic.fits")
    assert header["LSCOSMIC"] == f"lacosmic (longslit-lacosmic {version})"
    assert json.loads(header["LSRECIPE"])["cosmic"]["sigclip"] == 6.0


def test_reduce_with_skymedian_records_the_plugin(runs, versions):
    summary = json.loads(result(runs, "skymedian").stdout)
    version = versions["longslit-skymedian"]
    assert summary["methods"]["background"] == f"skymedian (longslit-skymedian {version})"
    table = Table.read(runs[0] / "skymedian.ecsv", format="ascii.ecsv")
    step = {"step": "background", "method": "skymedian", "package": "longslit-skymedian", "version": version}
    assert step in table.meta["steps"]


def test_a_recipe_file_uses_both_and_shows_their_parameters(runs):
    summary = json.loads(result(runs, "recipe").stdout)
    assert summary["methods"]["cosmic"].startswith("lacosmic (longslit-lacosmic ")
    assert summary["methods"]["background"].startswith("skymedian (longslit-skymedian ")
    shown = result(runs, "recipe_show").stdout
    assert 'method = "lacosmic"' in shown and "sigclip = 5.5  # " in shown
    assert 'cleantype = "meanmask"  # ' in shown  # defaults written out, with their help
    assert "sigma = 3.5  # " in shown


def test_a_bad_value_for_a_plugin_parameter_is_refused_with_what_is_allowed(runs):
    stderr = result(runs, "bad_value", 2).stderr
    assert "cosmic.model = 'everything' is not allowed; allowed: one of sky+source, sky, none" in stderr


def test_no_plugins_leaves_only_the_builtins(runs):
    stderr = result(runs, "no_plugins", 2).stderr
    assert "cosmic.method = 'lacosmic' is not an installed method; available: median" in stderr
    steps = result(runs, "no_plugins_env").stdout
    assert "lacosmic" not in steps and "skymedian" not in steps and "  median (preset auto)" in steps


def test_longslit_plugins_selects_by_name(runs, versions):
    stdout = result(runs, "only_lacosmic").stdout
    assert "third-party plugins: only lacosmic (LONGSLIT_PLUGINS)" in stdout
    loaded, _, rest = stdout.partition("not loaded:")
    assert "  lacosmic [longslit-lacosmic " in loaded and "skymedian" not in loaded
    assert f"  skymedian [longslit-skymedian {versions['longslit-skymedian']}]: not among" in rest
