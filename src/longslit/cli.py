"""The headless command line: ``longslit reduce``, ``steps``, ``plugins``, ``example``, ``recipe``.

Only argparse is imported up front, so ``longslit --help`` answers at once; each command imports what
it needs. Errors the user can fix print one line, ``error: <file>: <what and what to do>``, and exit 2
(bad input or recipe) or 1 (a step failed); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._version import __version__

_OUTPUT_SUFFIX = {"fits": ".fits", "ecsv": ".ecsv"}
_COMMANDS = ("reduce", "steps", "plugins", "example", "recipe", "tui")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="longslit",
        description="Reduce 2D long-slit spectra (FITS) to calibrated 1D spectra.",
        epilog="Run 'longslit COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"longslit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    reduce = commands.add_parser(
        "reduce",
        help="reduce one or more frames headless",
        description="Reduce frames with a recipe and write 1D spectra.",
    )
    reduce.add_argument("inputs", nargs="+", metavar="IN", help="input FITS frame(s)")
    reduce.add_argument(
        "-r", "--recipe", default=None, help="preset name or recipe TOML file (default: tutorial)"
    )
    reduce.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="STEP.PARAM=VALUE",
        help="override a parameter, e.g. cosmic.threshold=6 or locate.aperture=250:260",
    )
    where = reduce.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", help="output file (one input only)")
    where.add_argument("--outdir", help="output folder (default: the current folder)")
    reduce.add_argument(
        "--format",
        choices=sorted(_OUTPUT_SUFFIX),
        default=None,
        help="output format (default: the recipe's write method)",
    )
    reduce.add_argument(
        "--products",
        action="store_true",
        help="add the 2D products (cleaned frame, background, cosmic-ray mask) to FITS",
    )
    reduce.add_argument("--plot", action="store_true", help="print the spectrum as a text chart")
    reduce.add_argument("--json", action="store_true", help="print a JSON summary line per file")
    reduce.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    reduce.add_argument("--no-write", action="store_true", help="reduce without writing a file")

    steps = commands.add_parser("steps", help="list step kinds, methods and their parameters")
    steps.add_argument("--json", action="store_true", help="machine-readable output")
    plugins = commands.add_parser("plugins", help="list loaded plugins and any that failed")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")

    example = commands.add_parser("example", help="write the built-in synthetic example frame")
    example.add_argument(
        "path",
        nargs="?",
        default="longslit_example.fits",
        help="where to write it (default: longslit_example.fits)",
    )
    example.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    example.add_argument("--overwrite", action="store_true", help="replace an existing file")

    tui = commands.add_parser(
        "tui",
        help="reduce interactively in the terminal UI (also: longslit FILE)",
        description="Walk through a reduction step by step, keyboard first.",
    )
    tui.add_argument("file", nargs="?", default=None, help="FITS frame (default: the built-in example)")
    tui.add_argument("-r", "--recipe", default=None, help="preset name or recipe TOML file to start from")

    recipe = commands.add_parser("recipe", help="show presets as TOML, ready to edit")
    recipe_commands = recipe.add_subparsers(dest="recipe_command", metavar="ACTION", required=True)
    show = recipe_commands.add_parser("show", help="print a preset or recipe file as full TOML")
    show.add_argument("name", help="preset name or recipe file")
    recipe_commands.add_parser("list", help="list the built-in presets")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``longslit`` console script."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and not argv[0].startswith("-") and argv[0] not in _COMMANDS:
        argv = ["tui", *argv]  # `longslit FILE` opens FILE in the terminal UI
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = {
        "tui": cmd_tui,
        "reduce": cmd_reduce,
        "steps": cmd_steps,
        "plugins": cmd_plugins,
        "example": cmd_example,
        "recipe": cmd_recipe,
    }[args.command]
    from .errors import LongslitError

    try:
        return handler(args)
    except LongslitError as exc:
        if args.debug:
            raise
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # a bug: say so in one line; --debug shows where
        if args.debug:
            raise
        _error(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it")
        return 1


def cmd_tui(args: argparse.Namespace) -> int:
    from .recipe import Recipe

    recipe = Recipe.coerce(args.recipe)  # a bad recipe is refused here, before the screen opens
    from .tui import run  # Textual is imported on this path only

    return run(args.file, recipe)


def _error(text: str) -> None:
    print(f"error: {text}", file=sys.stderr)


# -- reduce ---------------------------------------------------------------------------------------
def cmd_reduce(args: argparse.Namespace) -> int:
    import warnings

    import astropy  # noqa: F401  (its logger hooks warnings on import: do it before they are captured)

    from .errors import LongslitError
    from .pipeline import Pipeline
    from .plugins.manager import get_registry
    from .recipe import Recipe

    registry = get_registry()
    recipe = Recipe.coerce(args.recipe)
    if args.assignments:
        recipe = recipe.with_assignments(args.assignments, registry)
    recipe = recipe.resolve(registry)
    if args.output and len(args.inputs) > 1:
        _error("-o names one output file; use --outdir for several inputs")
        return 2
    outdir = Path(args.outdir) if args.outdir else Path()
    if args.outdir and not outdir.is_dir():
        _error(f"{outdir}: output folder does not exist; create it first")
        return 2
    pipeline = Pipeline(registry)
    status = 0
    for source in args.inputs:
        summary: dict[str, Any] = {"input": source, "status": "ok", "output": None, "error": None}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = pipeline.run(source, recipe)
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
            if not args.no_write:
                fmt = args.format or _format_from_suffix(args.output) or recipe.steps["write"].method
                target = Path(args.output) if args.output else outdir / _output_name(source, fmt)
                params = {"products": True} if args.products and fmt == "fits" else {}
                result.write(target, fmt, overwrite=args.overwrite, **params)
                summary["output"] = str(target)
            summary.update(_summary(result))
            if args.plot:
                print(render_plot(result.spectrum, title=f"{Path(source).name}"))
            if not args.json:
                _report(source, summary)
        except LongslitError as exc:
            if args.debug:
                raise
            summary.update(status="failed", error=str(exc))
            _error(str(exc))
            status = max(status, exc.exit_code)
        if args.json:
            print(json.dumps(summary), flush=True)
    return status


def _format_from_suffix(output: str | None) -> str | None:
    """``-o spectrum.ecsv`` asks for ECSV even without ``--format``."""
    if output:
        for fmt, suffix in _OUTPUT_SUFFIX.items():
            if output.lower().endswith(suffix):
                return fmt
    return None


def _output_name(source: str, fmt: str) -> str:
    name = Path(source).name
    for suffix in (".gz", ".fz", ".fits", ".fit", ".fts"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return f"{name or 'frame'}_spectrum{_OUTPUT_SUFFIX.get(fmt, '.' + fmt)}"


def _summary(result: Any) -> dict[str, Any]:
    import numpy as np

    spectrum = result.spectrum
    good = ~spectrum.mask & np.isfinite(spectrum.flux)
    snr = spectrum.flux[good] / spectrum.uncertainty[good] if good.any() else np.array([np.nan])
    return {
        "recipe": result.recipe.name,
        "recipe_digest": result.recipe.digest(),
        "columns": len(spectrum),
        "masked_columns": int(spectrum.mask.sum()),
        "cosmic_rays_replaced": result.cosmic.n_replaced,
        "wavelength_unit": spectrum.wavelength_unit,
        "wavelength_range": [float(spectrum.wavelength[0]), float(spectrum.wavelength[-1])],
        # None (JSON null) when no uncertainties are known: NaN is not valid JSON.
        "median_snr": float(np.median(snr[np.isfinite(snr)])) if np.isfinite(snr).any() else None,
        "seconds": {r.step: round(r.seconds, 4) for r in result.records},
        "methods": {r.step: f"{r.method} ({r.package} {r.version})" for r in result.records},
    }


def _report(source: str, summary: dict[str, Any]) -> None:
    low, high = summary["wavelength_range"]
    unit = "A" if summary["wavelength_unit"] == "Angstrom" else "pix"
    wrote = f" -> {summary['output']}" if summary["output"] else ""
    print(
        f"{source}{wrote}: {summary['columns']} columns, {low:.1f}-{high:.1f} {unit}, "
        f"{summary['cosmic_rays_replaced']} cosmic-ray pixels replaced, "
        f"{summary['masked_columns']} columns masked, median S/N {_number(summary['median_snr'])}"
    )


def _number(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f}"


def render_plot(
    spectrum: Any,
    title: str = "",
    width: int | None = None,
    height: int = 20,
    color: bool | None = None,
) -> str:
    """The spectrum as a plotext chart (a string). Colour only on a terminal without NO_COLOR."""
    import os
    import shutil

    import numpy as np
    import plotext as plt

    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    good = np.isfinite(spectrum.flux) & np.isfinite(spectrum.wavelength)
    plt.clear_figure()
    plt.plotsize(width or min(shutil.get_terminal_size((100, 24)).columns, 120), height)
    plt.theme("clear")
    plt.plot(spectrum.wavelength[good].tolist(), spectrum.flux[good].tolist(), marker="braille")
    unit = "Angstrom" if spectrum.wavelength_unit == "Angstrom" else "column"
    plt.xlabel(f"wavelength ({unit})")
    plt.title(f"{title} flux ({spectrum.flux_unit})".strip())
    text = plt.build()
    plt.clear_figure()
    return text if color else plt.uncolorize(text)


# -- listing --------------------------------------------------------------------------------------
def cmd_steps(args: argparse.Namespace) -> int:
    from .plugins.manager import get_registry
    from .plugins.records import STEP_KINDS
    from .recipe import DEFAULT_METHODS

    registry = get_registry()
    if args.json:
        data = {
            kind: [
                {
                    "name": m.name,
                    "summary": m.summary,
                    "package": m.package,
                    "version": m.version,
                    "params": [p.describe() for p in m.params],
                }
                for m in registry.methods(kind)
            ]
            for kind in STEP_KINDS
        }
        print(json.dumps(data, indent=2, default=str))
        return 0
    for kind in STEP_KINDS:
        print(f"{kind}:")
        for method in registry.methods(kind):
            default = " (default)" if method.name == DEFAULT_METHODS[kind] else ""
            print(f"  {method.name}{default} [{method.package} {method.version}]: {method.summary}")
            for param in method.params:
                value = json.dumps(param.default)
                if param.default is None:
                    value = "(required)" if param.required else "auto"
                unit = f" {param.unit}" if param.unit else ""
                print(f"      {param.name} = {value}{unit}  -- {param.help} ({param.allowed()})")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins.manager import get_registry

    registry = get_registry()
    if args.json:
        print(
            json.dumps(
                {
                    "plugins": [vars(p) | {"methods": list(p.methods)} for p in registry.plugins],
                    "problems": [vars(p) for p in registry.problems],
                },
                indent=2,
            )
        )
        return 0
    print("loaded:")
    for plugin in registry.plugins:
        print(
            f"  {plugin.name} [{plugin.package} {plugin.version}]: "
            f"{', '.join(plugin.methods) or 'no methods'}"
        )
    if registry.problems:
        print("problems:")
        for problem in registry.problems:
            print(f"  {problem.name} [{problem.package}]: {problem.reason}")
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    from .errors import OutputError
    from .testing import make_frame

    path = Path(args.path)
    if path.exists() and not args.overwrite:
        raise OutputError("exists already; use --overwrite to replace it", path=str(path))
    from .output import write_atomic

    frame = make_frame(seed=args.seed)

    def produce(temporary: Path) -> None:
        if path.name.lower().endswith(".gz"):
            import gzip

            with gzip.open(temporary, "wb") as handle:
                frame.hdul.writeto(handle)
        else:
            frame.hdul.writeto(temporary)

    write_atomic(path, produce, overwrite=args.overwrite)
    print(
        f"wrote {path}: synthetic {frame.truth.source.shape[0]}x{frame.truth.source.shape[1]} "
        f"long-slit frame (seed {args.seed}), source at row {frame.truth.trace.mean():.1f}"
    )
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    from .plugins.manager import get_registry
    from .recipe import Recipe, preset_names

    if args.recipe_command == "list":
        for name in preset_names():
            recipe = Recipe.preset(name)
            print(f"{name}: {recipe.description}")
        return 0
    registry = get_registry()
    recipe = Recipe.coerce(args.name).resolve(registry)
    print(recipe.to_toml(registry), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
