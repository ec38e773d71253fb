"""The headless command line: ``longslit reduce``, ``steps``, ``plugins``, ``example``, ``recipe``.

Only argparse is imported up front, so ``longslit --help`` answers at once; each command imports what
it needs. Errors the user can fix print one line, ``error: <file>: <what and what to do>``, and exit 2
(bad input or recipe) or 1 (a step failed); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ._version import __version__

_COMMANDS = ("reduce", "calibrate", "steps", "plugins", "example", "recipe", "tui")
_GLOBAL_FLAGS = ("--debug", "--no-plugins")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="longslit",
        description="Reduce 2D long-slit spectra (FITS) to calibrated 1D spectra.",
        epilog="Run 'longslit COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"longslit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--no-plugins",
        action="store_true",
        help="load the built-in methods only, no installed plugins (as LONGSLIT_NO_PLUGINS=1)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    reduce = commands.add_parser(
        "reduce",
        help="reduce one or more frames headless",
        description="Reduce frames with a recipe and write 1D spectra.",
    )
    reduce.add_argument(
        "inputs",
        nargs="+",
        metavar="IN",
        help="input FITS frame(s), folders (their *.fits, *.fits.gz, *.fit) or quoted glob patterns",
    )
    reduce.add_argument(
        "-r", "--recipe", default=None, help="preset name or recipe TOML file (default: the auto preset)"
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
        default=None,
        metavar="METHOD",
        help="output format: a write method, fits, ecsv or a plugin's (default: the recipe's write "
        "method, or the one whose suffix -o ends with); 'longslit steps' lists them",
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
    reduce.add_argument(
        "--stack",
        action="store_true",
        help="the inputs are exposures of one target: calibrate the first and combine the others into it "
        "(scaled by exposure time, aligned along the slit, cosmic rays rejected across them: "
        "calibrate.exposures), one output",
    )
    reduce.add_argument(
        "--split",
        action="store_true",
        help="several apertures: one file per aperture (NAME_AP1.fits, ...) instead of one holding all",
    )
    reduce.add_argument(
        "--strict",
        action="store_true",
        help="treat warnings (a trace that scatters, a cosmic step that replaced much of the frame, a "
        "median S/N below 2, an assumption about the input) as failures: exit 1",
    )
    batch = reduce.add_argument_group(
        "batches",
        "Several inputs (or a folder, or a pattern) make a batch: a file that fails is recorded and the "
        "rest go on, each result is a line of the manifest (OUTDIR/longslit_manifest.jsonl), a summary "
        "closes the run, and the exit code is 1 if any file failed. Ctrl-C stops cleanly.",
    )
    batch.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="worker processes (default: the number of cores; 1: this process); with --scheduler, "
        "files in flight (default: twice the cluster's threads)",
    )
    batch.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster, e.g. tcp://host:8786 (needs longslit[dask]; inputs and outputs "
        "on storage the workers share)",
    )
    batch.add_argument(
        "--resume",
        action="store_true",
        help="skip inputs the manifest records as reduced with the same recipe (output still there)",
    )
    batch.add_argument("--manifest", metavar="PATH", help="write the manifest here instead")
    _add_isolation_options(reduce)
    batch.add_argument(
        "-q", "--quiet", action="store_true", help="print only errors: no progress, lines or summary"
    )

    masters = commands.add_parser(
        "calibrate",
        help="build a night's master bias, dark and flat and write them as FITS",
        description=(
            "Run the read and calibrate steps of a recipe on one science frame and write the masters "
            "they built (SCI, VAR, MASK and their provenance) to a folder; name the frames in the recipe's "
            "[calibrate] table or with --set calibrate.bias=... calibrate.flat=...; with wavelength.method "
            "= arc, the arc solution too (arc_solution_*.fits, for wavelength.method = solution)"
        ),
    )
    masters.add_argument("input", metavar="IN", help="a science frame of the night (its setup and sections)")
    masters.add_argument("-r", "--recipe", default=None, help="preset name or recipe TOML file")
    masters.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="STEP.PARAM=VALUE",
        help="override a parameter, e.g. calibrate.bias=bias/*.fits",
    )  # fmt: skip
    masters.add_argument("--outdir", required=True, help="folder the masters are written to")
    masters.add_argument("--overwrite", action="store_true", help="replace existing master files")
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
    _add_isolation_options(tui)

    recipe = commands.add_parser("recipe", help="show presets as TOML, ready to edit")
    recipe_commands = recipe.add_subparsers(dest="recipe_command", metavar="ACTION", required=True)
    show = recipe_commands.add_parser("show", help="print a preset or recipe file as full TOML")
    show.add_argument("name", help="preset name or recipe file")
    recipe_commands.add_parser("list", help="list the built-in presets")
    return parser


def _add_isolation_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "plugins' methods",
        "Third-party methods run in a child process of their own (a crash, an exit or a hang there fails "
        "the step, naming the method and its package); longslit's own run in this one.",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        default=None,
        help="stop a third-party method (or, with --isolate process, any) that runs longer than this "
        "and fail its step (default: no limit, or LONGSLIT_TIMEOUT)",
    )
    group.add_argument(
        "--isolate",
        choices=("auto", "process", "inline"),
        default=None,
        help="where methods run: auto (third-party ones in a child process), process (all), inline "
        "(none: fastest, but a crashing plugin ends longslit); default auto, or LONGSLIT_ISOLATE",
    )


def _configure_isolation(args: argparse.Namespace) -> None:
    """The ``--timeout`` and ``--isolate`` of reduce and tui over the environment's: one policy for the
    process (the batch hands it to its workers)."""
    from . import isolation
    from .errors import InputError

    try:
        policy = isolation.Policy.from_env()
        timeout = policy.timeout
        if getattr(args, "timeout", None) is not None:
            timeout = isolation.parse_timeout(args.timeout, "--timeout")
        mode = getattr(args, "isolate", None) or policy.isolate
        isolation.configure(isolation.Policy(mode, timeout))
    except ValueError as exc:
        raise InputError(f"{exc}; give it in seconds, e.g. --timeout 300") from None


def console_main() -> int:
    """The ``longslit`` console script: :func:`main`, then a quick exit.

    Python's shutdown runs the cyclic garbage collector over every object still alive, and with
    astropy and scipy loaded that is 0.1-0.2 s after the work is done: a fifth of a one-file reduce.
    ``gc.freeze()`` moves them out of the collector's reach first; objects are still released, files
    closed and exit handlers run (the outputs are already closed and synced by then). Not in
    :func:`main` itself, which tests and scripts call in a process that goes on.
    """
    import gc

    code = main()
    gc.freeze()
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    for stream in (sys.stdout, sys.stderr):  # a file name may hold undecodable bytes: never crash on one
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((i for i, word in enumerate(argv) if word not in _GLOBAL_FLAGS), len(argv))
    if first < len(argv) and not argv[first].startswith("-") and argv[first] not in _COMMANDS:
        argv.insert(first, "tui")  # `longslit [--no-plugins] FILE` opens FILE in the terminal UI
    args = parser.parse_args(argv)
    if args.no_plugins:
        import os

        # Through the environment, so worker processes (batch) and the UI see the same choice.
        os.environ["LONGSLIT_NO_PLUGINS"] = "1"
    if args.command is None:
        parser.print_help()
        return 0
    handler = {
        "tui": cmd_tui,
        "reduce": cmd_reduce,
        "calibrate": cmd_calibrate,
        "steps": cmd_steps,
        "plugins": cmd_plugins,
        "example": cmd_example,
        "recipe": cmd_recipe,
    }[args.command]
    from .errors import LongslitError

    try:
        if args.command in ("reduce", "tui"):
            _configure_isolation(args)
        return handler(args)
    except LongslitError as exc:
        if args.debug:
            raise
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:  # `longslit steps | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug: say so in one line; --debug shows where
        if args.debug:
            raise
        _error(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it")
        return 1
    finally:
        if args.command in ("reduce", "tui"):
            from . import isolation

            isolation.configure(None)  # main() may be called again in this process (tests, scripts)


def cmd_tui(args: argparse.Namespace) -> int:
    from .recipe import Recipe

    recipe = Recipe.coerce(args.recipe)  # a bad recipe is refused here, before the screen opens
    from .tui import run  # Textual is imported on this path only

    return run(args.file, recipe)


def _error(text: str) -> None:
    print(f"error: {text}", file=sys.stderr)


# -- reduce ---------------------------------------------------------------------------------------
def _local_pool_likely(args: argparse.Namespace) -> bool:
    """Whether this run will most likely reduce several files in local worker processes."""
    import os

    from ._pool import available_cores

    if args.scheduler or (args.jobs or available_cores()) < 2:
        return False
    return len(args.inputs) > 1 or any(os.path.isdir(p) or set("*?[") & set(p) for p in args.inputs)


def cmd_reduce(args: argparse.Namespace) -> int:
    """``reduce``; with ``--json``, standard output carries the JSON lines and nothing else."""
    with _json_output(args.json) as stream:
        args.json_stream = stream
        return _reduce(args)


@contextlib.contextmanager
def _json_output(enabled: bool) -> Iterator[TextIO | None]:
    """With ``--json``: a private copy of standard output for the JSON lines, and the descriptor itself
    pointed at standard error for the run, so a plugin's ``print`` (or its compiled code's writes, or a
    worker's) cannot break the JSON. Done before any worker starts, so they inherit it; undone after.
    """
    import os

    try:
        fd = sys.stdout.fileno() if enabled else -1
        err = sys.stderr.fileno() if enabled else -1
    except (AttributeError, OSError, ValueError):  # not a real descriptor (a test's capture): as it is
        fd = -1
    if fd < 0:
        yield None
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    os.dup2(err, fd)
    stream = open(saved, "w", encoding="utf-8", errors="backslashreplace", buffering=1)  # noqa: SIM115
    try:
        yield stream
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            stream.flush()
        os.dup2(saved, fd)
        stream.close()


def _reduce(args: argparse.Namespace) -> int:
    """Reduce one input in this process, or several as a batch (``longslit.batch``).

    One input file behaves as it always has: its own exit code (2 bad input, 1 failed step), no
    manifest. Several inputs, a folder, a pattern, ``--resume``, ``--manifest`` or ``--scheduler``
    make a batch: failures are recorded and the rest go on, results stream in input order (the
    manifest records them as they finish), a summary table closes the run on standard error, and the
    exit code is 1 if any file failed (errors found before the batch starts still exit 2).
    """
    import os

    if _local_pool_likely(args):
        from . import _pool

        _pool.start()  # the workers' fork server: its imports run alongside ours

    import astropy  # noqa: F401  (its logger hooks warnings on import: do it before they are captured)

    from .batch import PluginSelection, Task, expand_inputs, output_name, reduce_file, reduce_many
    from .batch.progress import Progress, summary_table
    from .errors import RecipeError, printable
    from .plugins.manager import get_registry
    from .recipe import Recipe
    from .report import format_from_suffix

    registry = get_registry()
    recipe = Recipe.coerce(args.recipe)
    if args.assignments:
        _check_assignments(args.assignments, recipe, registry)
        try:
            recipe = recipe.with_assignments(args.assignments, registry)
        except RecursionError:
            raise RecipeError(
                "a --set value nests lists too deeply to be a parameter", path="--set"
            ) from None
    recipe = _resolve(recipe, registry)
    inputs = expand_inputs(args.inputs)
    if args.stack:
        stacked = _stack_recipe(args, inputs.paths, recipe, registry)
        if stacked is None:
            return 2
        recipe, inputs = stacked, dataclasses.replace(inputs, paths=inputs.paths[:1], batch=False)
    batch_mode = inputs.batch or bool(args.resume or args.manifest or args.scheduler)
    if args.output and batch_mode:
        _error("-o names one output file; use --outdir for several inputs (or a batch)")
        return 2
    if args.split and batch_mode:
        _error("--split writes one file per aperture of one input; a batch writes one file per input")
        return 2
    if args.no_write and (args.resume or args.manifest):
        _error("--resume and --manifest record written outputs; drop --no-write")
        return 2
    outdir = Path(args.outdir) if args.outdir else Path()
    suffix_format = format_from_suffix(args.output, registry)
    if args.format:
        chosen = registry.method("write", args.format, source="--format")  # unknown: exit 2, before any work
        if args.output and suffix_format not in (None, args.format):
            stem = Path(args.output).name[: -len(registry.method("write", suffix_format).file_suffix)]
            _error(
                f"-o {printable(args.output)} names a {suffix_format.upper()} file but --format "
                f"{args.format} writes {args.format.upper()}; name it {printable(stem)}{chosen.file_suffix}, "
                "or drop --format"
            )
            return 2
    fmt = args.format or suffix_format or recipe.config("write").method
    registry.method("write", fmt, source="--format")  # an unknown format: one line, exit 2, before any work

    if not batch_mode:
        source = inputs.paths[0]
        target = None if args.no_write else (args.output or str(outdir / output_name(source, fmt)))
        if target is not None and args.outdir:
            from .batch import _make_folder

            _make_folder(outdir)  # created when missing, as every tool does
        task = Task(
            index=0,
            input=source,
            output=target,
            recipe=recipe,
            format=fmt,
            overwrite=args.overwrite,
            write_params={"products": True} if args.products and fmt == "fits" else {},
            plugins=PluginSelection.of(registry),
            origin_pid=os.getpid(),
            raise_errors=args.debug,
            split=args.split,
        )
        result = reduce_file(task, registry)
        _show_result(result, args, Progress(1, enabled=False))
        if args.strict and result.ok and result.warnings:
            _error(f"--strict: {len(result.warnings)} warning(s) above; the reduction counts as failed")
            return 1
        return result.exit_code

    batch = reduce_many(
        inputs.paths,
        recipe,
        None if args.no_write else outdir,
        jobs=args.jobs,
        client=args.scheduler,
        format=fmt,
        overwrite=args.overwrite,
        products=args.products,
        manifest=args.manifest or not args.no_write,
        resume=args.resume,
        registry=registry,
        debug=args.debug,
    )
    progress = Progress(batch.total, enabled=not args.quiet)
    received: dict[int, Any] = {}  # results wait here to be shown in input order
    shown = 0
    failures: list[Any] = []
    warned = 0  # files reduced with warnings (--strict fails the batch for them)
    caught: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        if batch.stopped:
            raise KeyboardInterrupt  # a second Ctrl-C: abort now
        caught.append(signum)
        batch.stop()

    handlers = _install_signal_handlers(on_signal)
    try:
        for result in batch:
            if caught and caught[-1] > 0:
                progress.print(
                    "stopping: the files being reduced will finish; Ctrl-C again to abort now",
                    sys.stderr,
                )
                caught.append(0)
            progress.update(result)
            if result.status == "failed":
                failures.append(result)
            elif result.warnings:
                warned += 1
            received[result.index] = result
            while shown in received:
                _show_result(received.pop(shown), args, progress)
                shown += 1
    except BaseException:
        batch.abort()
        raise
    finally:
        _restore_signal_handlers(handlers)
        for index in sorted(received):  # an interrupted batch leaves gaps: show the rest anyway
            _show_result(received.pop(index), args, progress)
        progress.finish()
    if not args.quiet:
        print(summary_table(batch, sorted(failures, key=lambda r: r.index)), file=sys.stderr)
    if batch.manifest_error:
        left = len(batch.unfinished)
        _error(
            f"{batch.manifest_error}; the batch stopped with {left} input{'s' * (left != 1)} not reduced. "
            "Free some space and rerun with --resume: outputs written but not recorded are recognised by "
            "their headers"
        )
        return 1
    if caught:
        left = len(batch.unfinished)
        _error(f"interrupted: {left} input{'s' * (left != 1)} not reduced; rerun with --resume to finish")
        return 128 + next(signum for signum in caught if signum)
    if args.strict and warned:
        _error(f"--strict: {warned} file(s) reduced with warnings count as failed")
        return 1
    return 1 if batch.failed else 0


def _resolve(recipe: Any, registry: Any) -> Any:
    """``recipe.resolve``; a value nested too deeply for Python's recursion is a RecipeError (exit 2)."""
    from .errors import RecipeError

    try:
        resolved = recipe.resolve(registry)
        resolved.check_paths(registry)  # a calibration frame that is not there: one line, before any work
        return resolved
    except RecursionError:
        raise RecipeError("nests values too deeply to be a recipe", path=recipe.source) from None


def _check_assignments(assignments: list[str], recipe: Any, registry: Any) -> None:
    """Refuse a ``--set`` that names an unknown step or parameter, saying what was probably meant.

    A parameter that the step's current method lacks but another method declares (``locate.aperture``
    with the default recipe's ``auto``, which measures it) is answered with the ``--set
    step.method=...`` that makes it apply. What is malformed is left to ``Recipe.with_assignments``.
    """
    from . import stepkinds
    from .errors import LongslitError, RecipeError

    kinds = stepkinds.names()  # the built-in kinds and those the loaded plugins add
    methods: dict[str, str] = {}
    wanted = []
    for text in assignments:
        key, sep, value = text.partition("=")
        step, dot, param = key.strip().partition(".")
        if not sep or not dot or not param:
            continue
        if step not in kinds:
            raise RecipeError(
                f"--set {text!r}: unknown step {step!r}{_did_you_mean(step, kinds)}; steps are "
                f"{', '.join(kinds)}"
            )
        if param == "method":
            methods[step] = value.strip()
        else:
            wanted.append((step, param.strip(), text))
    for step, param, text in wanted:
        try:
            method = registry.method(step, methods.get(step) or recipe.config(step).method)
        except LongslitError:
            continue  # with_assignments names the unknown method, with the known ones
        names = [p.name for p in method.params]
        if param in names:
            continue
        others = [m.name for m in registry.methods(step) if m.param(param) is not None]
        if others:
            hint = (
                f"; {step}.{param} is a parameter of method {others[0]!r}: add --set "
                f"{step}.method={others[0]}"
            )
        else:
            hint = _did_you_mean(param, names)
        raise RecipeError(
            f"--set {text!r}: method {method.name!r} of step {step} has no parameter {param!r}{hint} "
            f"(its parameters: {', '.join(names) or 'none'})"
        )


def _did_you_mean(word: str, choices: Any) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _install_signal_handlers(handler: Any) -> dict[int, Any]:
    """Ctrl-C (and SIGTERM, as a batch scheduler's time limit sends) stop a batch cleanly."""
    import contextlib
    import signal

    saved = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Outside the main thread signal() refuses: Ctrl-C then stays a KeyboardInterrupt.
        with contextlib.suppress(ValueError, OSError):
            saved[signum] = signal.signal(signum, handler)
    return saved


def _restore_signal_handlers(saved: dict[int, Any]) -> None:
    import signal

    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _stack_recipe(args: argparse.Namespace, paths: list[str], recipe: Any, registry: Any) -> Any:
    """``reduce --stack``: the recipe with the inputs after the first as ``calibrate.exposures``."""
    import os

    from .errors import printable

    if len(paths) < 2:
        _error("--stack combines two or more exposures of one target; give them all (or drop --stack)")
        return None
    if args.resume or args.manifest or args.scheduler or args.split:
        _error("--stack makes one frame of the inputs: drop --resume, --manifest, --scheduler and --split")
        return None
    config = recipe.config("calibrate")
    method = registry.method("calibrate", config.method)
    if method.param("exposures") is None:
        _error(
            f"--stack needs a calibrate method that combines exposures; the recipe's is "
            f"{printable(config.method)} (set calibrate.method=ccd)"
        )
        return None
    named = [os.path.abspath(p) for p in config.params.get("exposures", [])]
    others = [os.path.abspath(p) for p in paths[1:]]
    return _resolve(recipe.with_step("calibrate", exposures=named + others), registry)


def _show_result(result: Any, args: argparse.Namespace, progress: Any) -> None:
    """Print one result as ``reduce`` always has: warnings, error or plot and line, ``--json``."""
    from .errors import printable

    summary: dict[str, Any] = {
        "input": result.input,
        "status": result.status,
        "output": result.output,
        "error": result.error,
        "warnings": list(result.warnings),
    }
    if not args.quiet:
        for warning in result.warnings:
            progress.print(f"warning: {warning}", sys.stderr)
    if result.status == "failed":
        progress.print(f"error: {result.error}", sys.stderr)
        if result.traceback:
            progress.print(result.traceback.rstrip(), sys.stderr)
    elif result.status == "skipped":
        if not args.json and not args.quiet:
            progress.print(
                f"{printable(result.input)}: skipped, reduced earlier with this recipe -> "
                f"{printable(result.output)}"
            )
    else:
        summary.update(result.summary)
        if args.plot:
            progress.print(render_plot(result.spectrum, title=f"{Path(result.input).name}"))
        if not args.json and not args.quiet:
            progress.print(_report_line(result.input, summary))
    if args.json:
        progress.print(json.dumps(summary), getattr(args, "json_stream", None))


def _report_line(source: str, summary: dict[str, Any]) -> str:
    from .report import report_line

    return report_line(source, summary)


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
def cmd_calibrate(args: argparse.Namespace) -> int:
    """Build the masters a recipe's calibrate step names, from one science frame, and write them."""
    from .errors import printable
    from .pipeline import Pipeline
    from .plugins.manager import get_registry
    from .recipe import Recipe

    registry = get_registry()
    recipe = Recipe.coerce(args.recipe)
    if args.assignments:
        _check_assignments(args.assignments, recipe, registry)
        recipe = recipe.with_assignments(args.assignments, registry)
    recipe = _resolve(recipe, registry)
    outdir = Path(args.outdir)
    if not outdir.is_dir():
        _error(f"{printable(str(outdir))}: the folder does not exist; create it first")
        return 2
    from .batch.worker import capture_warnings

    arcs = recipe.config("wavelength").method == "arc"  # the arc solution too (it needs the trace)
    with capture_warnings() as caught:
        reduction = Pipeline(registry).run(args.input, recipe, until="wavelength" if arcs else "calibrate")
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    written = reduction.write_masters(outdir, overwrite=args.overwrite)
    solution = reduction.write_wavelength_solution(outdir, overwrite=args.overwrite) if arcs else None
    if solution is not None:
        written["arc solution"] = solution
    if not written:
        _error(
            "the recipe names no calibration frames: set calibrate.bias, calibrate.dark or calibrate.flat, "
            "or wavelength.method = arc with its arcs"
        )
        return 2
    for kind, path in written.items():
        print(f"{'' if kind == 'arc solution' else 'master '}{kind} -> {printable(str(path))}")
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    from .plugins.manager import get_registry

    registry = get_registry()
    if args.json:
        data = {
            kind.name: [
                {
                    "name": m.name,
                    "summary": m.summary,
                    "package": m.package,
                    "version": m.version,
                    "params": [p.describe() for p in m.params],
                    **({"suffix": m.file_suffix} if kind.name == "write" else {}),
                }
                for m in registry.methods(kind.name)
            ]
            for kind in registry.kinds
        }
        print(json.dumps(data, indent=2, default=str))
        return 0
    from .recipe import DEFAULT_PRESET, Recipe

    preset = Recipe.preset(DEFAULT_PRESET).resolve(registry)
    defaults = ", ".join(f"{kind.name} {kind.default_method}" for kind in registry.kinds)
    print(f"(preset {DEFAULT_PRESET}: the methods used when no recipe is given; a recipe table that")
    print(f" names no method uses: {defaults})")
    for kind in registry.kinds:
        print(f"{kind.name}:")
        print(f"  -- {kind.summary}")
        for method in registry.methods(kind.name):
            default = f" (preset {DEFAULT_PRESET})" if method.name == preset.config(kind.name).method else ""
            suffix = f", writes *{method.file_suffix}" if kind.name == "write" else ""
            print(f"  {method.name}{default} [{method.package} {method.version}{suffix}]: {method.summary}")
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
    if not registry.entry_points_enabled:
        selection = "off: built-in methods only (--no-plugins or LONGSLIT_NO_PLUGINS=1)"
    elif registry.only is not None:
        selection = f"only {', '.join(registry.only) or 'none'} (LONGSLIT_PLUGINS)"
    else:
        selection = "all installed"
    if args.json:
        print(
            json.dumps(
                {
                    "third_party": selection,
                    "plugins": [vars(p) | {"methods": list(p.methods)} for p in registry.plugins],
                    "problems": [vars(p) for p in registry.problems],
                    "skipped": [vars(p) for p in registry.skipped],
                },
                indent=2,
            )
        )
        return 0
    print(f"third-party plugins: {selection}")
    print("loaded:")
    for plugin in registry.plugins:
        origin = f" from {plugin.source}" if plugin.source and plugin.source != plugin.name else ""
        print(
            f"  {plugin.name} [{plugin.package} {plugin.version}]{origin}: "
            f"{', '.join(plugin.methods) or 'no methods'}"
        )
    if registry.skipped:
        print("not loaded:")
        for skipped in registry.skipped:
            print(f"  {skipped.name} [{skipped.package} {skipped.version}]: {skipped.reason}")
    if registry.problems:
        print("failed:")
        for problem in registry.problems:
            package = f" [{problem.package}]" if problem.package and problem.package != problem.name else ""
            print(f"  {problem.name}{package}: {problem.reason}")
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
