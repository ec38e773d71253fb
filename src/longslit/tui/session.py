"""The state of an interactive reduction, with no widget code: what the screens show and edit.

A :class:`Session` holds the frame, the recipe being edited and the last good reduction. Screens change
the recipe through it (a parameter, a method, the aperture by keys) and ask it to run; the pipeline's
cache reruns only the steps from the first changed one. Keeping this logic free of Textual makes it
testable on its own and keeps the UI a thin face over the engine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IncompleteError, InputError, LongslitError
from ..frame import Frame
from ..pipeline import Pipeline, Reduction
from ..plugins.manager import Registry, get_registry
from ..plugins.records import Method
from ..recipe import Recipe
from ..report import output_name as spectrum_name
from ..report import output_suffix, recipe_name, spatial_profile, summarize
from ..stepkinds import StepKind, call_method


@dataclass
class Regions:
    """Row ranges being edited by hand (the ``rows`` locate method's parameters)."""

    aperture: list[int]
    background: list[list[int]]
    protected: list[list[int]] | None = None

    def as_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "aperture": list(self.aperture),
            "background": [list(r) for r in self.background],
        }
        params["protected"] = None if self.protected is None else [list(r) for r in self.protected]
        return params


@dataclass
class Session:
    """An interactive reduction: a frame, a recipe being edited, the last good result.

    The session is the one holder of the recipe being edited and of the region the keys act on; the
    screens read both from it and change them only through its methods.
    """

    recipe: Recipe
    registry: Registry = field(default_factory=get_registry)
    source: str | Path | None = None
    frame: Frame | None = None
    reduction: Reduction | None = None
    #: The last error (a message naming step and method), cleared by the next good run.
    error: str | None = None
    #: Whether the current result differs from what was last saved.
    unsaved: bool = False
    saved_paths: list[str] = field(default_factory=list)
    #: Why the recipe as edited cannot run yet (a method chosen without the files it needs), or None.
    incomplete: str | None = None
    #: Which region the keys act on: 0 = aperture, i >= 1 = background region i.
    selected_region: int = 0
    #: Which aperture the keys act on and the Extract screen shows, along the slit (None: the primary).
    selected_aperture: int | None = None
    #: Whether the frame is the built-in example (written to a temporary file when the UI opens).
    example: bool = False

    def __post_init__(self) -> None:
        self.pipeline = Pipeline(self.registry)
        self._lock = threading.Lock()
        #: The recipe the session started from: what another file opened with ``o`` starts from too.
        self.start_recipe = self.recipe
        self._profile: tuple[Frame, np.ndarray] | None = None
        self._shown_warnings: set[str] = set()
        #: The recipe that made :attr:`reduction` (as edited, before defaults were filled in).
        self.good_recipe = self.recipe
        #: The incomplete recipe being filled in (see :attr:`incomplete`), or None.
        self._pending: Recipe | None = None

    def reopen(self, source: str | Path) -> Session:
        """A new session on ``source``, from the recipe this one started from."""
        return Session(self.start_recipe, registry=self.registry, source=source)

    @property
    def working(self) -> Frame | None:
        """The frame the steps after calibration work on: the last result's (overscan subtracted,
        trimmed, in electrons, with the wavelength step's wavelengths), else the frame as read. The
        geometry, the cleaned frame and the models are on its pixels, not on the raw frame's."""
        if self.reduction is not None:
            return self.reduction.frame
        return self.frame

    @property
    def kinds(self) -> tuple[StepKind, ...]:
        """The step kinds of this session's registry, in pipeline order."""
        return self.registry.kinds

    def kind(self, name: str) -> StepKind:
        """The step kind ``name``."""
        return self.registry.kind(name)

    # -- running ------------------------------------------------------------------------------
    def load(self) -> Frame:
        """Read the source file with the recipe's read step (raises ``FrameError``)."""
        if isinstance(self.source, Frame):
            self.frame = self.source
            return self.frame
        recipe = self.recipe.resolve(self.registry)
        config = recipe.config("read")
        method = self.registry.method("read", config.method)
        self.frame = call_method(
            method, Path(self.source), where=str(self.source), expect=Frame, **config.params
        )
        return self.frame

    def run(self) -> Reduction:
        """Reduce the frame with the current recipe; only changed steps recompute.

        On failure the last good reduction stays in :attr:`reduction`, the message in :attr:`error`,
        and the recipe goes back to the one that made that reduction (unless it was edited again
        meanwhile), so the form, the result and a saved recipe never disagree; the exception is
        re-raised for the caller to show. A recipe that is only incomplete (a method chosen whose
        files are still to be named: ``IncompleteError``) is kept, so its form can be filled in; the
        result stays the last good one and :meth:`save` refuses until the recipe runs.
        """
        if self.frame is None:
            raise InputError("no frame is open")
        with self._lock:  # one run at a time: the pipeline's cache is not thread-safe
            tried = self.recipe
            try:
                result = self.pipeline.run(self.frame, tried.resolve(self.registry))
            except LongslitError as exc:
                self.error = exc.message
                if isinstance(exc, IncompleteError):
                    self.incomplete, self._pending = exc.message, tried
                elif self.reduction is not None and self.recipe is tried:
                    # A wrong value: back to the recipe before it (the one being completed, if any,
                    # so the files named so far stay; else the last one that ran).
                    self.recipe = self._pending if self._pending is not None else self.good_recipe
                raise
            self.reduction = result
            self.good_recipe = tried
            self.error = self.incomplete = self._pending = None
            self.unsaved = True
            return result

    def cancel(self) -> int:
        """Stop the method calls in progress (they fail as cancelled); returns how many there were."""
        from ..isolation import cancel_all

        return cancel_all()

    def new_warnings(self) -> list[str]:
        """The last result's warnings not yet shown (each is shown once, not after every nudge)."""
        if self.reduction is None:
            return []
        fresh = [w for w in self.reduction.warnings if w not in self._shown_warnings]
        self._shown_warnings.update(fresh)
        return fresh

    @property
    def computed(self) -> list[str]:
        """Steps the last run actually computed (the others came from the cache)."""
        return list(self.pipeline.computed)

    # -- what the screens show ---------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The last result's numbers, as the command line reports them (``longslit.report``)."""
        if self.reduction is None:
            raise InputError("nothing reduced yet")
        return summarize(self.reduction)

    def spatial_profile(self, raw: bool = False) -> np.ndarray:
        """The median spatial profile of the frame the steps work on (of the frame as read when
        ``raw``), computed once per frame, not per nudge."""
        if self.frame is None:
            raise InputError("no frame is open")
        frame = self.frame if raw else self.working
        if self._profile is None or self._profile[0] is not frame:
            self._profile = (frame, spatial_profile(frame))
        return self._profile[1]

    # -- saving ---------------------------------------------------------------------------------
    def default_targets(self, fmt: str) -> tuple[str, str]:
        """The spectrum and recipe file names for the open frame, as the command line names them."""
        source = self.frame.source if self.frame is not None else self.source
        return spectrum_name(source, fmt, self.registry), recipe_name(source)

    def renamed_for(self, name: str, fmt: str) -> str:
        """``name`` with the suffix of write method ``fmt`` in place of any other write suffix."""
        suffixes = sorted((m.file_suffix for m in self.methods("write")), key=len, reverse=True)
        for suffix in suffixes:
            if name.lower().endswith(suffix.lower()):
                name = name[: -len(suffix)]
                break
        return name + output_suffix(fmt, self.registry)

    def save(self, spectrum: Path, fmt: str, products: bool, recipe_path: Path, *, overwrite: bool) -> None:
        """Write the spectrum with write method ``fmt`` and the recipe that replays this result.

        Raises ``OutputError`` (a file exists and ``overwrite`` is false, a folder is missing, a disk
        is full) with nothing half-written; on success the result counts as saved.
        """
        from ..output import write_atomic

        if self.reduction is None:
            raise InputError("nothing to save yet")
        if self.incomplete is not None:
            raise InputError(
                f"not saved: {self.incomplete}; fill it in (or choose another method) so the result "
                "shown is the recipe's"
            )
        method = self.registry.method("write", fmt)
        params = {"products": products} if method.param("products") is not None else {}
        self.reduction.write(spectrum, fmt, overwrite=overwrite, **params)
        text = self.reduction.recipe.to_toml(self.registry)
        write_atomic(
            recipe_path,
            lambda tmp: tmp.write_text(text, encoding="utf-8"),
            overwrite=overwrite,
            inputs=[str(self.source)],
        )
        self.unsaved = False
        self.saved_paths += [str(spectrum), str(recipe_path)]

    # -- editing methods and parameters -------------------------------------------------------
    def methods(self, step: str) -> list[Method]:
        """Every method registered for ``step``: built-in and plugins alike."""
        return self.registry.methods(step)

    def method(self, step: str) -> Method:
        """The method the recipe uses for ``step``."""
        return self.registry.method(step, self.recipe.config(step).method)

    def params(self, step: str) -> dict[str, Any]:
        """The recipe's parameters for ``step``, defaults filled in."""
        method = self.method(step)
        return {**method.defaults(), **self.recipe.config(step).params}

    def set_method(self, step: str, name: str) -> None:
        """Switch ``step`` to method ``name`` (its own defaults)."""
        self.recipe = self.recipe.with_step(step, name)

    def set_param(self, step: str, name: str, text: str) -> Any:
        """Set a parameter from the text a user typed; raises ``ValueError`` saying what is allowed."""
        param = self.method(step).param(name)
        if param is None:
            raise ValueError(f"{step} has no parameter {name!r}")
        value = param.parse(text)
        self.recipe = self.recipe.with_step(step, **{name: value})
        return value

    # -- editing regions by keys (apall style) ------------------------------------------------
    def regions(self) -> Regions | None:
        """The hand-editable regions, when the locate method is ``rows``."""
        if self.recipe.config("locate").method != "rows":
            return None
        params = self.params("locate")
        if params.get("aperture") is None or not params.get("background"):
            return None
        return Regions(params["aperture"], params["background"], params.get("protected"))

    def _store(self, regions: Regions) -> None:
        self.recipe = self.recipe.with_step("locate", "rows", **regions.as_params())

    def nrows(self) -> int:
        """Rows of the frame the regions are on (the calibrated one: trimming may remove rows)."""
        frame = self.working
        return frame.shape[0] if frame is not None else 0

    # -- traced geometries: keys edit the ``trace`` method's offsets, so a tilt is kept ------------
    def _traced(self) -> dict[str, Any] | None:
        """The ``trace`` parameters being edited; an ``auto`` result is frozen into them first."""
        method = self.recipe.config("locate").method
        if method == "auto":
            if self.reduction is None:
                raise InputError("nothing located yet")
            frozen = self.reduction.geometry.to_trace_params()
            self.recipe = self.recipe.with_overrides({"locate": frozen})
            method = "trace"
        return self.params("locate") if method == "trace" else None

    # -- several apertures: the ``trace`` method's sources and apertures, edited by keys ------------
    def apertures(self) -> tuple:
        """Every aperture of the last result, along the slit (one for a single-aperture geometry)."""
        if self.reduction is None:
            return ()
        return self.reduction.geometry.each()

    def aperture_index(self) -> int:
        """The index of the selected aperture in :meth:`apertures` (the primary unless chosen)."""
        count = len(self.apertures())
        if self.selected_aperture is not None and 0 <= self.selected_aperture < count:
            return self.selected_aperture
        return self.reduction.geometry.primary if self.reduction is not None and count > 1 else 0

    def selected_spectrum(self):
        """The selected aperture's spectrum (the primary's when there is one aperture)."""
        spectra = self.reduction.spectrum.each()
        return spectra[min(self.aperture_index(), len(spectra) - 1)]

    def select_aperture(self, step: int) -> int:
        """Select the next (+1) or previous (-1) aperture along the slit; the keys then act on it."""
        count = len(self.apertures())
        if count < 2:
            raise InputError("there is one aperture; press i to add one at the cursor row")
        self.selected_aperture = (self.aperture_index() + step) % count
        self.selected_region = 0
        return self.selected_aperture

    def _layout(self) -> dict[str, Any]:
        """The ``trace`` method's several-aperture numbers being edited: the current geometry frozen
        into them first (an ``auto`` result, one traced aperture, or plain rows)."""
        config = self.recipe.config("locate")
        if config.method == "trace" and config.params.get("sources"):
            params = self.params("locate")
        else:
            if self.reduction is None:
                raise InputError("nothing located yet")
            geometry = self.reduction.geometry
            params = geometry.to_trace_params()
            if not params.get("sources"):  # one aperture: it becomes the first of a list
                below, above = params["aperture_below"], params["aperture_above"]
                inner, outer = params["background_inner"], params["background_outer"]
                protect = params.get("protect")
                protect = max(below, above) + 3.0 if protect is None else protect
                centre = [params[name] for name in ("centre", "slope", "curvature", "cubic")]
                fwhm = geometry.info.get("fwhm")
                params = {
                    "sources": [[*centre, inner, inner, protect, protect]],
                    "apertures": [[1.0, 0.0, below, above, float(fwhm) if isinstance(fwhm, float) else 0.0]],
                    "primary": 1,
                    "background_width": max(outer - inner, 1.0),
                }
        return {
            "sources": [list(map(float, line)) for line in params["sources"]],
            "apertures": [list(map(float, line)) for line in params["apertures"]],
            "primary": int(params["primary"]),
            "background_width": float(params["background_width"]),
        }

    def _store_layout(self, layout: dict[str, Any], select: int | None = None) -> None:
        """Keep ``layout`` as the ``trace`` method's only parameters, its lists in order along the slit
        (as the method orders them, so list line i is aperture AP{i+1}); ``select`` (a line of
        ``layout["apertures"]``) becomes the selected aperture."""
        sources, apertures = layout["sources"], layout["apertures"]
        by_row = sorted(range(len(sources)), key=lambda k: sources[k][0])
        number = {old + 1: new + 1 for new, old in enumerate(by_row)}
        sources = [sources[k] for k in by_row]
        apertures = [[float(number[int(line[0])]), *line[1:]] for line in apertures]
        order = sorted(
            range(len(apertures)), key=lambda i: sources[int(apertures[i][0]) - 1][0] + apertures[i][1]
        )
        params = {
            "sources": sources,
            "apertures": [apertures[i] for i in order],
            "primary": order.index(layout["primary"] - 1) + 1,
            "background_width": layout["background_width"],
        }
        # A change of method starts from its defaults: through "rows", the trace method keeps no single
        # trace's numbers (centre ...) beside the list.
        self.recipe = self.recipe.with_step("locate", "rows").with_step("locate", "trace", **params)
        if select is not None:
            self.selected_aperture = order.index(select)
        self.selected_region = 0

    def add_aperture(self, row: float, width: float | None = None) -> str:
        """Add an aperture centred on ``row`` (at the middle column), following the trace shape of the
        nearest source, as wide as the selected aperture (at most half-way to a neighbour); the
        background leaves it out with the nearest source's margin. Returns what was done."""
        layout = self._layout()
        sources, apertures = layout["sources"], layout["apertures"]
        if not 0 <= row <= self.nrows() - 1:
            raise InputError(f"row {row:.0f} is outside the frame's rows 0-{self.nrows() - 1}")
        rows = [sources[int(line[0]) - 1][0] + line[1] for line in apertures]
        for number, (line, centre) in enumerate(zip(apertures, rows, strict=True), start=1):
            if centre - line[2] <= row <= centre + line[3]:
                raise InputError(f"row {row:.1f} is inside AP{number}; move the cursor off it (J/K) first")
        current = apertures[min(self.aperture_index(), len(apertures) - 1)]
        half = width / 2.0 if width is not None else (current[2] + current[3]) / 2.0
        half = min(half, min(abs(row - r) for r in rows) / 2.0)
        if half < 0.5:
            raise InputError(f"row {row:.1f} is too close to another aperture for one of its own")
        near = min(range(len(sources)), key=lambda k: abs(sources[k][0] - row))
        reference = sources[near]
        own = [line for line in apertures if int(line[0]) == near + 1] or [current]
        edge = max(max(line[2] - line[1], line[3] + line[1]) for line in own)
        gap = max(min(reference[4], reference[5]) - edge, 1.0)
        margin = max(min(reference[6], reference[7]) - edge, 0.0)
        fwhm = own[0][4]
        sources.append([float(row), *reference[1:4], half + gap, half + gap, half + margin, half + margin])
        apertures.append([float(len(sources)), 0.0, half, half, fwhm])
        self._store_layout(layout, select=len(apertures) - 1)
        return f"added AP{self.selected_aperture + 1} at row {row:.1f} ({2 * half:.1f} rows wide)"

    def delete_aperture(self) -> str:
        """Delete the selected aperture. Its source's rows stay out of the background (a star not
        extracted is still not sky): edit ``locate.sources`` to give them back. Returns what was done."""
        layout = self._layout()
        apertures = layout["apertures"]
        if len(apertures) < 2:
            raise InputError("the last aperture cannot be deleted; add another (i) first")
        index = min(self.aperture_index(), len(apertures) - 1)
        rows = [layout["sources"][int(line[0]) - 1][0] + line[1] for line in apertures]
        primary = layout["primary"] - 1
        del apertures[index]
        if primary == index:  # the nearest one along the slit takes its place
            others = [i for i in range(len(rows)) if i != index]
            primary = min(others, key=lambda i: abs(rows[i] - rows[index]))
        layout["primary"] = (primary if primary < index else primary - 1) + 1
        self._store_layout(layout, select=min(index, len(apertures) - 1))
        return f"deleted AP{index + 1}; its source's rows stay out of the background"

    def _edit_layout(self, shift: float, grow: float) -> None:
        """Move or resize the selected aperture (its edges along its trace) or the background (every
        source's margin, and the width), as :meth:`_edit_trace` does for one aperture."""
        layout = self._layout()
        sources, apertures = layout["sources"], layout["apertures"]
        if self.selected_region == 0:
            line = apertures[min(self.aperture_index(), len(apertures) - 1)]
            source = sources[int(line[0]) - 1]
            below, above = line[2] - shift + grow, line[3] + shift + grow
            if below + above < 1.0:  # one row at least
                return
            old = (line[2] - line[1], line[3] + line[1])
            new = (below - line[1], above + line[1])
            # The rows kept from the background and from cleaning stay while they still hold the
            # aperture (a nudge then reruns only the extraction); when it reaches past them, they
            # move out with it, keeping their margins.
            for side in (0, 1):
                for column in (4 + side, 6 + side):
                    if new[side] > source[column]:
                        source[column] = new[side] + max(source[column] - old[side], 0.0)
            line[2], line[3] = below, above
        else:
            for source in sources:
                reach = [0.0, 0.0]
                for line in apertures:
                    if sources[int(line[0]) - 1] is source:
                        reach = [max(reach[0], line[2] - line[1]), max(reach[1], line[3] + line[1])]
                source[4] = max(source[4] + shift, reach[0])
                source[5] = max(source[5] + shift, reach[1])
            layout["background_width"] = max(layout["background_width"] + 2 * grow, 1.0)
        region = self.selected_region
        self._store_layout(layout, select=self.aperture_index() if region == 0 else None)
        self.selected_region = region

    def _edit_trace(self, shift: float, grow: float) -> bool:
        """Move or resize the selected region of a traced geometry; the trace itself stays.

        As with plain rows, the keys move the selected region and leave the others where they are:
        the aperture moves along the trace (its edges are offsets from it, so it may leave the trace
        for an off-nuclear region), the background pair stays, and so does the band protected from
        cosmic-ray cleaning while it still covers the aperture (then a nudge reruns only the
        extraction). To move the trace, edit ``centre``, or press ``a`` to locate it again.
        """
        params = self._traced()
        if params is None:
            return False
        if params.get("sources"):
            self._edit_layout(shift, grow)
            return True
        if self.selected_region == 0:
            below = params["aperture_below"] - shift + grow
            above = params["aperture_above"] + shift + grow
            if below + above < 1.0:  # one row at least, as for plain rows
                return True
            changes = {"aperture_below": below, "aperture_above": above}
            protect = params.get("protect")
            if protect is not None and max(below, above) > protect:
                # The aperture leaves the protected band: the band grows by as much, keeping its margin.
                margin = max(protect - max(params["aperture_below"], params["aperture_above"]), 0.0)
                changes["protect"] = max(below, above) + margin
        else:  # the background pair, symmetric about the trace: shift = farther, grow = wider
            inner = max(params["background_inner"] + shift - grow, 0.0)
            outer = max(params["background_outer"] + shift + grow, inner + 1.0)
            changes = {"background_inner": inner, "background_outer": outer}
        self.recipe = self.recipe.with_step("locate", "trace", **changes)
        return True

    def select_region(self, step: int) -> int:
        """Select the next (+1) or previous (-1) region: aperture, then background regions."""
        if self.regions() is None and self._traced() is not None:
            self.selected_region = (self.selected_region + step) % 2
            return self.selected_region
        regions = self._require_regions()
        self.selected_region = (self.selected_region + step) % (1 + len(regions.background))
        return self.selected_region

    def shift_region(self, rows: int) -> None:
        """Move the selected region by ``rows`` (positive = up the slit), kept inside the frame."""
        if self.regions() is None and self._edit_trace(rows, 0):
            return
        regions = self._require_regions()
        start, stop = self._selected_range(regions)
        rows = max(-start, min(rows, self.nrows() - stop))
        self._set_selected(regions, [start + rows, stop + rows])

    def resize_region(self, rows: int) -> None:
        """Grow (positive) or shrink the selected region by ``rows`` on each side (at least 1 row)."""
        if self.regions() is None and self._edit_trace(0, rows):
            return
        regions = self._require_regions()
        start, stop = self._selected_range(regions)
        start, stop = max(0, start - rows), min(self.nrows(), stop + rows)
        if stop - start < 1:
            return
        self._set_selected(regions, [start, stop])

    def add_background(self, width: int = 20, gap: int = 10) -> None:
        """Add a background region of up to ``width`` rows in the largest free stretch of rows.

        Free means outside every background region and at least ``gap`` rows from the aperture.
        """
        regions = self._require_regions()
        start, stop = regions.aperture
        taken = sorted([[start - gap, stop + gap], *regions.background])
        free, edge = [], 0
        for low, high in taken:
            if low > edge:
                free.append([edge, low])
            edge = max(edge, high)
        if edge < self.nrows():
            free.append([edge, self.nrows()])
        if not free:
            raise InputError("no free rows left for another background region")
        low, high = max(free, key=lambda rows: rows[1] - rows[0])
        size = min(width, high - low)
        middle = (low + high) // 2
        regions.background.append([middle - size // 2, middle - size // 2 + size])
        self.selected_region = len(regions.background)
        self._store(regions)

    def delete_background(self) -> None:
        """Delete the selected background region (the aperture and the last region stay)."""
        regions = self._require_regions()
        if self.selected_region == 0:
            raise InputError("select a background region first (with , or .)")
        if len(regions.background) == 1:
            raise InputError("the background needs at least one region")
        del regions.background[self.selected_region - 1]
        self.selected_region = min(self.selected_region, len(regions.background))
        self._store(regions)

    def adopt_geometry_as_rows(self) -> None:
        """Switch locate to ``rows``, starting from the current geometry rounded to whole rows."""
        if self.reduction is None:
            raise InputError("nothing located yet")
        geometry = self.reduction.geometry

        def rows(band) -> list[int]:
            return [
                max(0, round(band.lower.min() + 0.5)),
                min(self.nrows(), round(band.upper.max() + 0.5)),
            ]

        self.selected_region = 0
        self.recipe = self.recipe.with_step(
            "locate",
            "rows",
            aperture=rows(geometry.aperture),
            background=[rows(b) for b in geometry.background],
            protected=[rows(b) for b in geometry.protected] or None,
        )

    def _require_regions(self) -> Regions:
        regions = self.regions()
        if regions is None:
            raise InputError("a traced geometry has one background pair; press r to edit plain rows")
        return regions

    def _selected_range(self, regions: Regions) -> list[int]:
        index = min(self.selected_region, len(regions.background))
        return regions.aperture if index == 0 else regions.background[index - 1]

    def _set_selected(self, regions: Regions, rows: list[int]) -> None:
        index = min(self.selected_region, len(regions.background))
        if index == 0:
            # The protected rows stay with the source while they still cover the aperture (so a
            # nudge reruns only the extraction: the cleaning is the same); when the aperture leaves
            # them, they travel with it.
            shift = rows[0] - regions.aperture[0]
            covered = regions.protected is not None and any(
                a <= rows[0] and rows[1] <= b for a, b in regions.protected
            )
            if (
                regions.protected is not None
                and not covered
                and rows[1] - rows[0] == regions.aperture[1] - regions.aperture[0]
            ):
                regions.protected = [
                    [max(0, a + shift), min(self.nrows(), b + shift)] for a, b in regions.protected
                ]
            regions.aperture = rows
        else:
            regions.background[index - 1] = rows
        self._store(regions)
