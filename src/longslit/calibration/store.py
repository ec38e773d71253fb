"""Masters on disk and in memory: FITS files with their provenance, and the cache a batch shares.

:func:`write_master` writes SCI, VAR and MASK images and a PROVENANCE table (JSON), atomically;
:class:`MasterCache` keeps masters by :func:`~longslit.calibration.masters.cache_key`, so a batch whose
science frames name the same calibration files builds each master once.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..errors import OutputError
from .ccd import CCDParams, RawFrame, file_hash
from .masters import Master, build_master_bias, build_master_dark, build_master_flat, cache_key


def write_master(master: Master, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a master as FITS: SCI, VAR and MASK images, and its provenance in the header and a table.

    The file is written to a temporary name beside ``path`` and renamed, so no half-written master is left.

    Raises
    ------
    OutputError
        If ``path`` exists (and not ``overwrite``) or its folder is missing or not writable.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError("exists already; choose another name or replace it (--overwrite)", path=str(path))
    if not path.parent.is_dir():
        raise OutputError("the folder does not exist; create it first", path=str(path))
    primary = fits.PrimaryHDU()
    header = primary.header
    header["MASTER"] = (master.kind, "kind of master calibration")
    header["MASTKEY"] = master.key  # sha256 of the inputs' content and the parameters
    header["EXPTIME"] = (master.exptime, "seconds the data are for (dark)")
    for name, version in master.provenance["software"].items():
        header[f"HIERARCH VERSION {name.upper()}"] = version
    # Short keywords: a 64-character hash fills a card with an 8-character keyword.
    for i, item in enumerate(master.provenance["inputs"], start=1):
        header[f"INNAM{i}"] = item["name"][:68]
        header[f"INSHA{i}"] = item["sha256"]
    for i, key in enumerate(master.provenance["masters"], start=1):
        header[f"USES{i}"] = key
    header["HISTORY"] = "longslit master; parameters as JSON in the PROVENANCE table"
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="PROVENANCE", format=f"{len(json.dumps(master.provenance, default=str))}A")],
        nrows=1,
        name="PROVENANCE",
    )
    table.data["PROVENANCE"][0] = json.dumps(master.provenance, default=str)
    hdul = fits.HDUList(
        [
            primary,
            fits.ImageHDU(master.data.astype(np.float32), name="SCI"),
            fits.ImageHDU(master.variance.astype(np.float32), name="VAR"),
            fits.ImageHDU(master.mask.astype(np.uint8), name="MASK"),
            table,
        ]
    )
    tmp = None
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        hdul.writeto(tmp, overwrite=True)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write the master ({exc.strerror or exc})", path=str(path)) from None
    return path


def read_master(path: str | os.PathLike[str]) -> Master:
    """Read a master written by :func:`write_master` (data, variance, mask, provenance, key)."""
    with fits.open(path) as hdul:
        provenance = json.loads(hdul["PROVENANCE"].data["PROVENANCE"][0])
        return Master(
            hdul[0].header["MASTER"],
            hdul["SCI"].data.astype(np.float64),
            hdul["VAR"].data.astype(np.float64),
            hdul["MASK"].data.astype(bool),
            provenance,
            hdul[0].header["MASTKEY"],
            float(hdul[0].header["EXPTIME"]),
        )


#: Environment variable naming a folder where processes share masters (the batch sets it per task).
MASTER_CACHE_ENV = "LONGSLIT_MASTER_CACHE"


class MasterCache:
    """Masters by cache key: a batch asks for the same master per science frame and builds it once.

    ``builds`` counts the masters built (per kind), so a batch can report (and a test check) it. With a
    ``folder`` (:attr:`folder`, shared by processes on one machine or a cluster's shared storage) a master
    is also kept there, exactly (float64, ``.npz``), under a lock: the first process to need it builds it,
    the others wait and load it (``loads`` counts those), so a batch in several processes builds each
    master once.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self._masters: dict[str, Master] = {}
        self._hashes: dict[tuple[str, int, int], str] = {}
        self.builds: dict[str, int] = {}
        self.loads: dict[str, int] = {}
        #: Where masters are shared between processes (None: this process only).
        self.folder: str | None = None if folder is None else str(folder)

    def _hash(self, frame: RawFrame | str | os.PathLike[str]) -> str:
        if isinstance(frame, RawFrame):
            return frame.content_hash
        stat = os.stat(frame)
        ident = (os.path.realpath(frame), stat.st_size, stat.st_mtime_ns)
        if ident not in self._hashes:
            self._hashes[ident] = file_hash(frame)
        return self._hashes[ident]

    def get(
        self,
        kind: str,
        frames: Sequence[RawFrame | str | os.PathLike[str]],
        parameters: dict[str, Any],
        build: Callable[[], Master],
        masters: Sequence[Master] = (),
    ) -> Master:
        """The master for these frames and parameters: from the cache, else ``build()`` and keep it.

        ``parameters`` must be every parameter the build depends on (they form the key with the frames'
        content hashes and the keys of ``masters`` used).
        """
        key = cache_key(kind, [self._hash(f) for f in frames], parameters, [m.key for m in masters])
        if key not in self._masters:
            self._masters[key] = self._shared(kind, key, build) if self.folder else self._build(kind, build)
        return self._masters[key]

    def _build(self, kind: str, build: Callable[[], Master]) -> Master:
        master = build()
        self.builds[kind] = self.builds.get(kind, 0) + 1
        return master

    def _shared(self, kind: str, key: str, build: Callable[[], Master]) -> Master:
        def load(path: Path) -> Master | None:
            master, stored = _load_npz(path)
            return master if stored == key else None

        master, loaded = shared_product(
            Path(self.folder) / f"{kind}_{key[:32]}.npz",
            load,
            lambda: self._build(kind, build),
            lambda path, made: _save_npz(made, path, key),
            damaged=(OSError, ValueError, KeyError),
        )
        if loaded:
            self.loads[kind] = self.loads.get(kind, 0) + 1
        return master

    def bias(self, frames, params: CCDParams, **options) -> Master:
        """The master bias (see :func:`build_master_bias`), built at most once per content and parameters."""
        parameters = {"ccd": params.as_dict(), **options}
        return self.get("bias", frames, parameters, lambda: build_master_bias(frames, params, **options))

    def dark(self, frames, params: CCDParams, *, bias: Master | None = None, **options) -> Master:
        """The master dark (see :func:`build_master_dark`), cached."""
        parameters = {"ccd": params.as_dict(), **options}
        used = [bias] if bias is not None else []
        return self.get(
            "dark", frames, parameters, lambda: build_master_dark(frames, params, bias=bias, **options), used
        )

    def flat(self, frames, params: CCDParams, *, bias=None, dark=None, **options) -> Master:
        """The master flat (see :func:`build_master_flat`), cached."""
        parameters = {"ccd": params.as_dict(), **options}
        used = [m for m in (bias, dark) if m is not None]
        return self.get(
            "flat",
            frames,
            parameters,
            lambda: build_master_flat(frames, params, bias=bias, dark=dark, **options),
            used,
        )


def shared_product(
    path: Path,
    load: Callable[[Path], Any],
    build: Callable[[], Any],
    save: Callable[[Path, Any], None],
    *,
    damaged: tuple[type[BaseException], ...] = (OSError, ValueError),
) -> tuple[Any, bool]:
    """A product that the processes of a batch share through ``path``, built by one of them only.

    Under an exclusive lock beside ``path`` (released when its file closes, also if the process dies):
    ``load(path)``, when the file exists and ``load`` returns the product (None: the file holds another
    key's), else ``build()`` and ``save(path, product)``, which must write the file whole or not at all.
    A file that ``load`` finds damaged (one of ``damaged``) is built again. Returns the product and
    whether it was loaded. Serves the master calibrations and the arc solutions.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            try:
                found = load(path)
            except damaged:
                found = None  # a damaged cache file: build it again
            if found is not None:
                return found, True
        made = build()
        save(path, made)
        return made, False


def _save_npz(master: Master, path: Path, cache_key: str) -> None:
    """A master, exactly, for other processes of the batch (written whole or not at all)."""
    meta = {
        "kind": master.kind,
        "key": master.key,
        "exptime": master.exptime,
        "provenance": master.provenance,
    }
    meta = json.dumps({**meta, "cache_key": cache_key}, default=str)
    arrays = {f"info_{k}": np.asarray(v) for k, v in master.info.items() if isinstance(v, np.ndarray)}
    plain = {k: v for k, v in master.info.items() if not isinstance(v, np.ndarray)}
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(
                out,
                data=master.data,
                variance=master.variance,
                mask=master.mask,
                meta=np.array(meta),
                info=np.array(json.dumps(plain, default=str)),
                **arrays,
            )
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)  # the cache is an optimization: the master is still in memory


def _load_npz(path: Path) -> tuple[Master, str]:
    with np.load(path, allow_pickle=False) as saved:
        meta = json.loads(str(saved["meta"]))
        info = json.loads(str(saved["info"]))
        info.update({k[5:]: saved[k] for k in saved.files if k.startswith("info_")})
        master = Master(
            meta["kind"],
            saved["data"],
            saved["variance"],
            saved["mask"],
            meta["provenance"],
            meta["key"],
            float(meta["exptime"]),
            info,
        )
        return master, meta["cache_key"]
