"""The plot's cells drawn a run at a time (``plot._cell_rows``) against the per-cell loop it replaced:
the same Segments, so the same screen, on synthetic figures with every kind of cell."""

from __future__ import annotations

import numpy as np
import pytest
from rich.style import Style

from longslit.tui.widgets import plot
from longslit.tui.widgets.plot import Band, Figure, Series, Span, figure_lines
from longslit.tui.widgets.strips import Line


def per_cell(figure, patterns, cell_owner, marker_cells, shade, shade_char, cursor_cell, hline_row, colour):
    """The loop ``figure_lines`` ran before: one part per cell."""
    rows, cols = patterns.shape
    out = []
    for row in range(rows):
        text = Line()
        for col in range(cols):
            background = shade[row, col] if colour else ""
            style_bg = f" on {background}" if background else ""
            marked = marker_cells.get((row, col))
            if marked is not None:
                text.append(figure.series[marked].marker, Style.parse(figure.series[marked].color + style_bg))
                continue
            if cell_owner[row, col] >= 0:
                series = figure.series[int(cell_owner[row, col])]
                style = Style.parse(series.color + style_bg) if colour else None
                text.append(chr(0x2800 + int(patterns[row, col])), style)
            elif col == cursor_cell:
                text.append("│", Style.parse("bold white" + style_bg) if colour else None)
            elif row == hline_row and col % 2 == 0:
                text.append("·", Style.parse("dim" + style_bg) if colour else None)
            elif shade_char[row, col] and not colour:
                text.append(shade_char[row, col])
            else:
                text.append(" ", Style.parse(f"on {background}") if background else None)
        out.append(text.parts)
    return out


def figures():
    rng = np.random.default_rng(3)
    x = np.arange(4096.0)
    flux = 100 + 50 * np.sin(x / 300) + rng.normal(0, 10, x.size)
    flux[[100, 2000, 3000]] = [1e4, -500, np.nan]
    yield Figure(
        [Series(x, flux, "flux", plot.GOLD), Series(x, flux * 0.5, "half", plot.CYAN, marker="+")],
        bands=[Band(x, flux - 20, flux + 20, "1 sigma")],
        spans=[Span(500, 900, "aperture"), Span(2500, 2600, "sky", plot.SHADE_GOLD, "▒")],
        cursor=1234.0,
        hline=0.0,
        title="spectrum",
    )
    rows = np.arange(300.0)
    profile = 5 + 1000 * np.exp(-0.5 * ((rows - 150) / 3) ** 2) + rng.normal(0, 2, rows.size)
    yield Figure(
        [Series(rows, profile, "profile"), Series(rows[::10], profile[::10], "fit", plot.RED, points=True)],
        spans=[Span(140, 160, "aperture"), Span(10, 100, "background", plot.SHADE_GREY)],
        yscale="asinh",
    )
    yield Figure([Series(x, np.abs(flux) + 1, "log", plot.GREEN, marker="x")], yscale="log", hline=200.0)
    yield Figure([Series(rows, rows * 0 + 3.0, "flat")], cursor=0.0, xlim=(0, 299))


@pytest.mark.parametrize("colour", [True, False])
@pytest.mark.parametrize("size", [(80, 12), (160, 48), (47, 9)])
def test_runs_of_cells_draw_what_one_part_per_cell_drew(monkeypatch, colour, size):
    compared = []
    runs = plot._cell_rows

    def both(*args):
        fast, slow = runs(*args), per_cell(*args)
        compared.append([(_segments(a), _segments(b)) for a, b in zip(fast, slow, strict=True)])
        return fast

    monkeypatch.setattr(plot, "_cell_rows", both)
    for figure in figures():
        lines = figure_lines(figure, *size, colour=colour)
        assert len(lines) == size[1]
    assert len(compared) == 4
    for rows in compared:
        for fast, slow in rows:
            assert fast == slow
    # The figures draw what they should: dots, shades, the cursor, the markers without colour.
    drawn = "".join(text for rows in compared for fast, _ in rows for text, _ in fast)
    assert any(0x2800 < ord(c) <= 0x28FF for c in drawn) and "│" in drawn
    assert ("+" in drawn and "░" in drawn and "▒" in drawn) if not colour else ("·" in drawn)


def _segments(parts):
    line = Line()
    line.parts = list(parts)
    return [(s.text, s.style) for s in line.segments()]


def test_plot_times_log_records_each_redraw(tmp_path, monkeypatch):
    """``LONGSLIT_PLOT_TIMES``: the app appends each plot's redraw (id, wall ms, CPU ms, size)."""
    from pilot import run, settle

    from longslit.testing import make_frame
    from longslit.tui.app import LongslitApp

    log = tmp_path / "plots.log"
    monkeypatch.setenv(plot.PLOT_TIMES_ENV, str(log))
    frame = make_frame(seed=0).write(tmp_path / "example.fits")

    async def scenario():
        app = LongslitApp(str(frame), "tutorial")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)

    run(scenario())
    records = [line.split() for line in log.read_text().splitlines()]
    assert records and all(len(r) == 5 for r in records)
    assert {"frame-profile", "frame-raw"} <= {r[0] for r in records}
    assert all(float(r[1]) > 0 and float(r[2]) >= 0 and int(r[3]) > 0 and int(r[4]) > 0 for r in records)
