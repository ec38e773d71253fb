"""The import graph keeps the layers: faces -> engine -> registry -> methods -> numerics -> model.

Every import of a longslit module in src/longslit (at module level or inside a function, but not under
``if TYPE_CHECKING:``, which never runs) must go to the same layer or one below it. The faces (the
command line and the terminal UI) also skip the methods and the numerics: what they show, they get from
the engine (``longslit.report``, ``longslit.pipeline``), so they cannot compute science of their own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "longslit"

#: Layer of each module, by the longest matching name; lower numbers are lower layers.
LAYERS = {
    "model": (
        "longslit._version",
        "longslit.errors",
        "longslit.frame",
        "longslit.geometry",
        "longslit.products",
        "longslit.limits",
        "longslit.isolation",
        "longslit.fitslayout",
        "longslit.output",
        "longslit.specutils_reader",
        "longslit.paths",
        "longslit.plugins.records",
        "longslit.plugins.hookspecs",
    ),
    "numerics": ("longslit.numerics", "longslit.calibration", "longslit.checks", "longslit.wcs"),
    "methods": ("longslit.steps",),
    "registry": ("longslit.plugins", "longslit.stepkinds"),
    "engine": (
        "longslit.pipeline",
        "longslit.recipe",
        "longslit.report",
        "longslit.batch",
        "longslit.presets",
        "longslit._pool",
        "longslit.testing",
    ),
    "faces": ("longslit.cli", "longslit.tui"),
    "api": ("longslit",),
}
ORDER = list(LAYERS)


def layer_of(module: str) -> str:
    best, length = "api", 0
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = layer, len(prefix)
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> set[str]:
    return {module_name(p) for p in SOURCE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The longslit modules ``path`` imports when it runs."""
    return imports_of(module_name(path), path.name == "__init__.py", path.read_text(encoding="utf-8"), known)


def imports_of(name: str, is_package: bool, text: str, known: set[str]) -> set[str]:
    """The longslit modules that module ``name`` with source ``text`` imports when it runs."""
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(text)
    never = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            never |= {id(n) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in never:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("longslit")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("longslit"):
                continue
            # ``from .. import stepkinds`` imports the module longslit.stepkinds
            submodules = {f"{target}.{alias.name}" for alias in node.names} & known
            found |= submodules or {target}
    return {module for module in found if module != name}


def test_the_layer_table_knows_every_module():
    assert "longslit.stepkinds" in modules() and "longslit.report" in modules()
    unplaced = sorted(m for m in modules() if layer_of(m) == "api" and m != "longslit")
    assert not unplaced, f"give these a layer: {unplaced}"


@pytest.mark.parametrize("path", sorted(SOURCE.rglob("*.py")), ids=module_name)
def test_no_module_imports_upward(path):
    known = modules()
    mine = layer_of(module_name(path))
    upward = sorted(m for m in imports(path, known) if ORDER.index(layer_of(m)) > ORDER.index(mine))
    assert not upward, f"{module_name(path)} ({mine}) imports from higher layers: {upward}"
    if mine == "faces":
        skipped = sorted(m for m in imports(path, known) if layer_of(m) in ("methods", "numerics"))
        assert not skipped, f"{module_name(path)} reaches past the engine into {skipped}"


def test_the_checker_sees_an_upward_import():
    # The check above must be able to fail: a numerics module importing the pipeline in a function is
    # caught, one importing it only for type checking is not.
    text = "def f():\n    from ..pipeline import Pipeline\n    return Pipeline\n"
    found = imports_of("longslit.numerics.probe", False, text, modules())
    assert found == {"longslit.pipeline"} and layer_of("longslit.numerics.probe") == "numerics"
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..pipeline import Pipeline\n"
    assert imports_of("longslit.numerics.probe", False, typing_only, modules()) == set()
    from_package = "from .. import report\n"
    assert imports_of("longslit.tui.probe", False, from_package, modules()) == {"longslit.report"}
