"""Atheris (coverage-guided) on the recipe parser.

    python tests/hardening/fuzz_recipe.py CORPUS_FOLDER -max_total_time=60

Any bytes, decoded as UTF-8 (with replacement), given to :meth:`Recipe.from_toml` and resolved against
the built-in methods must give a recipe or raise a ``LongslitError`` (a ``RecipeError`` saying what is
wrong): anything else is a crash, and atheris saves the input as ``crash-<hash>``. A recipe that
resolves must also survive the round trip: written with ``to_toml``, it loads back the same (digest
and values). ``tests/hardening/test_fuzz_bounded.py`` runs this for a bounded time on each test run.
"""

from __future__ import annotations

import sys
import warnings

import atheris

with atheris.instrument_imports(include=["longslit"]):
    from longslit.errors import LongslitError
    from longslit.plugins.manager import Registry
    from longslit.recipe import Recipe

REGISTRY = Registry(entry_points=False)


def one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        recipe = Recipe.from_toml(text).resolve(REGISTRY)
    except LongslitError:
        return
    written = recipe.to_toml(REGISTRY)
    back = Recipe.from_toml(written).resolve(REGISTRY)
    if back.digest() != recipe.digest() or (back.name, back.description) != (recipe.name, recipe.description):
        raise AssertionError(f"the round trip changed the recipe:\n{text!r}\n->\n{written}")


def main() -> None:
    warnings.simplefilter("ignore")
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
