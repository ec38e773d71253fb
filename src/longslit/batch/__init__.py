"""Reduce many frames: survive bad files, record everything, resume, run in processes or on Dask.

:func:`reduce_many` plans a batch (expands folders and patterns, names the outputs, reads the
manifest when resuming) and returns a :class:`Batch`, which yields one :class:`FileResult` per input
as each finishes. The command line's ``longslit reduce`` runs on it. The pieces:

- ``inputs``: which files, and their output names;
- ``worker``: :func:`reduce_file`, the per-file function every backend runs;
- ``manifest``: the JSON-lines record, written durably line by line;
- ``staging``: outputs written under hidden names, published by the batch when it records them;
- ``engine``: the loop: bounded files in flight, the manifest, clean stopping, suspects of a dead worker;
- ``backends``: this process, a local process pool, a Dask cluster;
- ``progress``: the progress line, log lines and closing summary the command line prints.

Nothing here imports a user interface; Dask is imported only when a client or address is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._pool import available_cores
from ..errors import InputError, OutputError
from .inputs import expand_inputs, output_name
from .manifest import MANIFEST_NAME, Manifest, resumable
from .staging import lock_folder, sweep_partials
from .worker import KILL_ENV, TEST_HOOKS_ENV, FileResult, PluginSelection, Task, reduce_file, summarize

if TYPE_CHECKING:
    from .engine import Batch

__all__ = [
    "KILL_ENV",
    "MANIFEST_NAME",
    "Batch",
    "FileResult",
    "default_jobs",
    "expand_inputs",
    "output_name",
    "reduce_file",
    "reduce_many",
    "summarize",
]


def __getattr__(name: str) -> Any:
    """``Batch`` on first use: ``engine`` brings the process pools (multiprocessing, concurrent.futures),
    which the command line's one-file reduce, running :func:`reduce_file` in its own process, never uses."""
    if name == "Batch":
        from .engine import Batch

        return Batch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_jobs() -> int:
    """The number of cores this process may use."""
    return available_cores()


def reduce_many(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    recipe: Any = None,
    outdir: str | os.PathLike | None = None,
    *,
    jobs: int | None = None,
    client: Any = None,
    format: str | None = None,
    overwrite: bool = False,
    products: bool = False,
    manifest: bool | str | os.PathLike = True,
    resume: bool = False,
    registry: Any = None,
    debug: bool = False,
    isolation: Any = None,
) -> Batch:
    """Reduce many frames with one recipe; iterate over the result to run them.

    Parameters
    ----------
    paths : path, or iterable of paths
        Files, folders (their ``*.fits``, ``*.fits.gz``, ``*.fit``) and glob patterns.
    recipe : Recipe, preset name or TOML path, optional
        Default: the default preset.
    outdir : path, optional
        Folder for the outputs (``<name>_spectrum.fits``) and the manifest, created if missing, and
        locked while the batch runs (a second batch on it is refused). None: write nothing; the
        results still carry each spectrum.
    jobs : int, optional
        Local worker processes (default: the number of cores; 1 runs in this process). With a
        ``client``: how many files to keep in flight (default twice the cluster's threads).
    client : distributed.Client or str, optional
        Run on a Dask cluster (a client, or a scheduler address such as ``tcp://host:8786``).
        Inputs and ``outdir`` must be on storage the workers see at the same absolute paths.
    format : str, optional
        Output format (a write method: ``fits``, ``ecsv``); default the recipe's.
    overwrite : bool
        Replace existing outputs.
    products : bool
        Add the 2D products to FITS outputs.
    manifest : bool or path
        Record each result as a JSON line: True (default) in ``outdir/longslit_manifest.jsonl``,
        a path, or False.
    resume : bool
        Skip inputs the manifest records as reduced with the same recipe hash whose output exists
        (they are yielded with ``status == "skipped"``), and adopt outputs present without a line
        whose header records this input and recipe hash (a batch killed between the two).
    registry : Registry, optional
        The methods to use (default: the installed plugins); workers load the same plugins.
    debug : bool
        Keep each failure's traceback in ``FileResult.traceback``.
    isolation : longslit.isolation.Policy, optional
        Where methods run and their time limit, in every worker (default: the policy in force here).

    Returns
    -------
    Batch
        Yields a :class:`FileResult` per input as each finishes; ``stop()`` ends it cleanly. A
        failing file is a failed result, never an exception.

    Raises
    ------
    LongslitError
        Before anything runs: a bad recipe, an output folder that cannot be created or that another
        batch is writing, a folder or pattern with no frames, two inputs that would write the same
        output, a manifest that is an input, a link or not a manifest, ``resume`` without a manifest.

    Examples
    --------
    >>> for result in longslit.reduce_many("night1/", "mine.toml", "spectra/", jobs=4):  # doctest: +SKIP
    ...     print(result.input, result.status, result.error or result.output)
    """
    from .. import isolation as _isolation
    from ..plugins.manager import get_registry
    from ..recipe import Recipe

    policy = isolation or _isolation.current()
    registry = registry or get_registry()
    chosen = Recipe.coerce(recipe)
    if not chosen.resolved:
        chosen = chosen.resolve(registry)
    inputs = expand_inputs(paths).paths
    fmt = format or chosen.steps["write"].method
    registry.method("write", fmt)  # an unknown format is refused now, not once per file
    folder = Path(outdir) if outdir is not None else None
    outputs = [str(folder / output_name(p, fmt)) if folder is not None else None for p in inputs]
    _refuse_shared_outputs(inputs, outputs)

    manifest_path: Path | None = None
    if manifest is True and folder is not None:
        manifest_path = folder / MANIFEST_NAME
    elif manifest not in (True, False, None):
        manifest_path = Path(manifest)  # type: ignore[arg-type]
    if resume and manifest_path is None:
        raise InputError("resume needs a manifest: give an output folder (or a manifest path)")
    if manifest_path is not None:
        mine = os.path.abspath(manifest_path)
        if any(output and os.path.abspath(output) == mine for output in outputs):
            raise InputError("is also an output of this batch; give the manifest another name", path=mine)

    locks: list[int] = []
    handle: Manifest | None = None
    try:
        # A manifest elsewhere is checked before the folder is made: a refusal then leaves nothing behind.
        if manifest_path is not None and manifest_path.parent.is_dir():
            handle = Manifest(manifest_path, inputs=inputs)
        if folder is not None:
            _make_folder(folder)
            lock = lock_folder(folder)  # before anything in it is swept or decided
            if lock is not None:
                locks.append(lock)
        if manifest_path is not None and handle is None:
            # Can it be written, is it no input, is no other batch writing it? Said now, before anything runs.
            handle = Manifest(manifest_path, inputs=inputs)
        digest = chosen.digest()
        absolute = {
            index: (os.path.abspath(source), os.path.abspath(output) if output else None)
            for index, (source, output) in enumerate(zip(inputs, outputs, strict=True))
        }
        done = resumable(manifest_path, digest, absolute.values()) if resume and manifest_path else {}
        plugins = PluginSelection.of(registry)
        kill_on = _test_kill_on()
        tasks: list[Task] = []
        skipped: list[FileResult] = []
        for index, (source, output) in enumerate(zip(inputs, outputs, strict=True)):
            earlier, how = done.get(absolute[index][0], (None, ""))
            if earlier is not None:
                skipped.append(
                    FileResult(
                        index=index,
                        input=source,
                        output=output,
                        status="skipped",
                        recipe_digest=digest,
                        versions=earlier.get("versions") or {},
                        timings={"reduced": (earlier.get("timings") or {}).get("finished")},
                        note=(
                            "adopted: the output was written with this recipe (its header says so) but "
                            "never recorded; recorded now"
                            if how == "adopted"
                            else None
                        ),
                    )
                )
                continue
            tasks.append(
                Task(
                    index=index,
                    input=source,
                    output=output,
                    recipe=chosen,
                    format=fmt,
                    overwrite=overwrite,
                    write_params={"products": True} if products and fmt == "fits" else {},
                    plugins=plugins,
                    origin_pid=os.getpid(),
                    kill_on=kill_on,
                    with_traceback=debug,
                    stage=True,
                    # The workers share a night's masters here: each is built once per batch, not per
                    # process (the folder appears only when the recipe names calibration frames).
                    master_cache=None if folder is None else str(folder.resolve() / ".longslit-masters"),
                    isolation=policy,
                )
            )
    except BaseException:
        if handle is not None:
            handle.close()
        for lock in locks:
            os.close(lock)
        raise

    sweep_partials(task.output for task in tasks)  # what an earlier run, killed, left half-written
    close_client = False
    if isinstance(client, str):
        try:
            client, close_client = _connect(client), True
        except BaseException:
            if handle is not None:
                handle.close()
            for lock in locks:
                os.close(lock)
            raise
    from .engine import Batch  # the loop and its process pools: not imported for one file

    return Batch(
        tasks,
        skipped=skipped,
        jobs=jobs if jobs is not None else (0 if client is not None else default_jobs()),
        client=client,
        manifest=manifest_path,
        manifest_handle=handle,
        locks=locks,
        absolute=absolute,
        close_client=close_client,
        registry=registry,
    )


def _make_folder(folder: Path) -> None:
    """Create the output folder (and its parents) when missing, as every tool does."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(
            "is a file, not a folder; give a folder for the outputs", path=str(folder)
        ) from None
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder: {exc.strerror or exc}", path=str(folder)
        ) from None
    if not folder.is_dir():
        raise OutputError("is not a folder; give a folder for the outputs", path=str(folder))


def _test_kill_on() -> str | None:
    """The test-only kill switch (see ``worker.KILL_ENV``): armed only with ``LONGSLIT_TEST_HOOKS=1`` too."""
    name = os.environ.get(KILL_ENV)
    if not name:
        return None
    if os.environ.get(TEST_HOOKS_ENV) != "1":
        import warnings

        warnings.warn(
            f"{KILL_ENV} is set but ignored: it is a test-only switch, armed only with {TEST_HOOKS_ENV}=1",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return name


def _refuse_shared_outputs(inputs: list[str], outputs: list[str | None]) -> None:
    sources = {os.path.abspath(source): source for source in inputs}
    seen: dict[str, str] = {}
    for source, output in zip(inputs, outputs, strict=True):
        if output is None:
            continue
        key = os.path.abspath(output)
        if key in sources:
            raise InputError(
                f"the output of {source} would replace the input {sources[key]}; "
                "choose another output folder",
            )
        if key in seen:
            raise InputError(
                f"{seen[key]} and {source} would both be written to {output}; "
                "reduce them into separate output folders",
            )
        seen[key] = source


def _connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "running on a Dask cluster needs the dask extra: pip install 'longslit[dask]'"
        ) from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
