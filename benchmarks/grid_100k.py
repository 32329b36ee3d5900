"""How the asset grid's cost grows with the library: 100 assets against 100,000.

    python -m benchmarks.grid_100k [--counts 100,100000] [--pages 50]

For each size it builds a MediaStore of synthetic assets, builds the LibraryView, mounts the
AssetGrid headless at 120×40 and reports:

- view build: `LibraryView(store)` (a full sort; runs only on reset, sort or filter changes);
- first paint: from starting the app to the first settled frame;
- page-down: one PgDn keypress until the app is idle again (key dispatch, cursor move, scroll,
  compositing and the repaint of the new lines), mean and max over `--pages` presses;
- grid pgdn: the grid's own share of that: the page-down action plus rendering every visible
  line from a cold line cache;

First paint and page-down are measured in process CPU time, not wall time: the pilot waits for
the app to go idle by sleeping in small steps, and that sleeping is not the app's cost.
- upsert: one store upsert through `LibraryView.apply` and `refresh_entries`, mean over 1,000.

The last row is the ratio between the largest and the smallest size: the Line-API grid and the
bisect-maintained view should keep it near 1 for everything but the view build. As a target
(`--json`, `python -m benchmarks`) "near 1" is read as ≤ 1.5×: more would mean a cost that grows
with the library.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from textual.app import App, ComposeResult

from benchmarks.results import Measure, Report, Target, emit
from benchmarks.seed_library import synthetic_assets
from media_tui.store import MediaStore
from media_tui.ui.grid import AssetGrid
from media_tui.ui.library_view import LibraryView
from media_tui.ui.thumbs import ThumbnailCache

SIZE = (120, 40)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


class GridApp(App[None]):
    def __init__(self, view: LibraryView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        yield AssetGrid(self.view, ThumbnailCache(enabled=False))


@dataclass
class Result:
    count: int
    view_build: float
    first_paint: float
    pgdn_mean: float
    pgdn_median: float
    pgdn_max: float
    grid_pgdn: float
    upsert_mean: float


async def measure(count: int, pages: int, freeze_gc: bool = False) -> Result:
    store = MediaStore()
    assets = synthetic_assets(count)
    store.snapshot_loaded(assets)
    started = time.perf_counter()
    view = LibraryView(store)
    view_build = time.perf_counter() - started
    if freeze_gc:
        # What an app can do after loading a big library: move the long-lived objects out of
        # the collector's sight, so a full collection does not walk 100,000 assets mid-frame.
        gc.collect()
        gc.freeze()

    app = GridApp(view)
    started = time.process_time()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first_paint = time.process_time() - started
        grid = app.query_one(AssetGrid)

        page_times: list[float] = []
        keys = ("pagedown", "pageup")
        while len(page_times) < pages:
            # A small library runs out of pages: bounce between the ends (a press that moves
            # nothing is not counted). Each press starts with a cold line cache, so revisited
            # pages cost what new ones do at 100,000.
            grid.refresh_entries(None)
            await pilot.pause()
            before = grid.cursor_index
            started = time.process_time()
            await pilot.press(keys[0])
            await pilot.pause()
            elapsed = time.process_time() - started
            if grid.cursor_index == before:
                keys = (keys[1], keys[0])
            else:
                page_times.append(elapsed)

        grid_times = []
        await pilot.press("home")
        for _ in range(pages):
            if grid.cursor_index >= len(view) - 1:
                grid.action_first()
                grid.scroll_home(animate=False, immediate=True)
            grid.refresh_entries(None)
            started = time.perf_counter()
            grid.action_page_down()
            for y in range(grid.size.height):
                grid.render_line(y)
            grid_times.append(time.perf_counter() - started)

        store.subscribe(lambda changes: grid.refresh_entries(view.apply(changes)))
        rng = random.Random(1)
        upserts = []
        for i in range(1_000):
            old = assets[rng.randrange(count)]
            # Always newer than anything stored, so the store accepts it; a new size moves the
            # entry only under the SIZE sort, so under NEWEST this is an in-place repaint.
            later = T0 + timedelta(days=400, seconds=i)
            changed = old.replace(bytes=old.bytes + i + 1, updated_at=later)
            started = time.perf_counter()
            store.remote_upsert(changed)
            upserts.append(time.perf_counter() - started)
        await pilot.pause()
    if freeze_gc:
        gc.unfreeze()
    return Result(
        count,
        view_build,
        first_paint,
        statistics.fmean(page_times),
        statistics.median(page_times),
        max(page_times),
        statistics.fmean(grid_times),
        statistics.fmean(upserts),
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.2f}"


COLUMNS = (
    ("assets", "count"),
    ("view build", "view_build"),
    ("1st paint", "first_paint"),
    ("pgdn mean", "pgdn_mean"),
    ("pgdn median", "pgdn_median"),
    ("pgdn max", "pgdn_max"),
    ("grid pgdn", "grid_pgdn"),
    ("upsert", "upsert_mean"),
)


def print_table(results: list[Result]) -> None:
    widths = [max(11, len(title)) for title, _ in COLUMNS]
    print("times in ms, headless 120×40 (1st paint and pgdn: process CPU time)")
    print(" ".join(title.rjust(w) for (title, _), w in zip(COLUMNS, widths, strict=True)))
    for r in results:
        cells = [f"{r.count:,}"] + [f"{getattr(r, attr) * 1000:.2f}" for _, attr in COLUMNS[1:]]
        print(" ".join(cell.rjust(w) for cell, w in zip(cells, widths, strict=True)))
    if len(results) > 1:
        small, big = results[0], results[-1]
        cells = [f"{big.count // small.count:,}×"]
        for _, attr in COLUMNS[1:]:
            a, b = getattr(small, attr), getattr(big, attr)
            cells.append(f"{b / a:.2f}" if a > 0 else "-")
        print(" ".join(cell.rjust(w) for cell, w in zip(cells, widths, strict=True)), "(ratio)")


async def measure_all(counts: list[int], pages: int, freeze_gc: bool) -> list[Result]:
    await measure(10, 3)  # warm-up: imports, CSS parsing and caches are paid here, not below
    return [await measure(count, pages, freeze_gc) for count in counts]


def collect(counts: list[int], pages: int, freeze_gc: bool = False) -> list[Result]:
    return asyncio.run(measure_all(counts, pages, freeze_gc))


NEAR_ONE = Target("ratio", "≤", 1.5, source="grid_100k docstring: near 1")
MEASURES = (
    ("view build (full sort)", "view_build", None),
    ("first paint, CPU", "first_paint", NEAR_ONE),
    ("PgDn mean, CPU", "pgdn_mean", NEAR_ONE),
    ("PgDn max, CPU", "pgdn_max", NEAR_ONE),
    ("grid's own PgDn", "grid_pgdn", NEAR_ONE),
    ("one upsert", "upsert_mean", NEAR_ONE),
)


def measures(results: list[Result], pages: int) -> list[Measure]:
    """The largest library against the smallest, its baseline."""
    if len(results) < 2:
        return []
    small, big = results[0], results[-1]
    sizes = f"{big.count:,} vs {small.count:,} assets (baseline), {pages} PgDn, headless 120×40"
    return [
        Measure(
            "grid alone",
            name,
            getattr(big, attr) * 1000,
            "ms",
            getattr(small, attr) * 1000,
            f"{small.count:,} assets",
            target,
            sizes,
        )
        for name, attr, target in MEASURES
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="100,100000", help="comma-separated library sizes")
    parser.add_argument("--pages", type=int, default=50, help="page-downs to time per size")
    parser.add_argument(
        "--freeze-gc", action="store_true", help="gc.freeze() after loading (see the max column)"
    )
    parser.add_argument("--json", action="store_true", help="print the measures as JSON")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    results = collect(counts, args.pages, args.freeze_gc)
    if args.json:
        params = {"counts": counts, "pages": args.pages, "freeze_gc": args.freeze_gc}
        emit(Report("grid_100k", params, results, measures(results, args.pages)))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
