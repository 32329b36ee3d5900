"""Open a real local library in the real app: time to the first painted grid, and page-down.

`python -m benchmarks.open_library [--counts 100 100000]` seeds a fresh library per count, then
runs `MediaApp` headless at 120×40 against it and reports, side by side:

- open → first paint: from `run_test()` starting to the grid holding every asset and a frame
  painted (the catalogue snapshot is read on the feed's thread, applied to the store, sorted);
- page-down: the wall time of one PgDn press until the screen is idle again, over 30 presses.

The small library is the baseline: the ratios say how much 100,000 assets cost over 100. No
target is stated for these; `--json` prints the measures as JSON, for `python -m benchmarks`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.results import Measure, Report, emit
from benchmarks.seed_library import seed
from media_tui.config import Settings
from media_tui.ui.app import MediaApp


@dataclass(frozen=True)
class OpenResult:
    count: int
    first_paint: float
    page_down_median: float
    page_down_max: float


async def measure(library: Path, count: int, presses: int) -> OpenResult:
    app = MediaApp(Settings(library=library, storage="local", catalog="local"), thumbnails=False)
    started = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        while len(app.view) < count:
            await pilot.pause(0.005)
        await pilot.pause()
        first_paint = time.perf_counter() - started
        timings = []
        for _ in range(presses):
            before = time.perf_counter()
            await pilot.press("pagedown")
            await pilot.pause()
            timings.append(time.perf_counter() - before)
    return OpenResult(count, first_paint, statistics.median(timings), max(timings))


async def measure_all(counts: list[int], presses: int) -> list[OpenResult]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        # An untimed open first: the first app in a process pays for imports, CSS parsing and
        # caches, which would otherwise land on whichever size is measured first.
        await seed(Path(tmp) / "warm-up", 10, seed_value=1, batch=10, thumbnails=None)
        await measure(Path(tmp) / "warm-up", 10, 2)
        for count in counts:
            library = Path(tmp) / f"lib-{count}"
            await seed(library, count, seed_value=7, batch=20_000, thumbnails=None)
            results.append(await measure(library, count, presses))
    return results


def collect(counts: list[int], presses: int) -> list[OpenResult]:
    return asyncio.run(measure_all(counts, presses))


def measures(results: list[OpenResult], presses: int) -> list[Measure]:
    """The largest library against the smallest, its baseline."""
    if len(results) < 2:
        return []
    small, big = results[0], results[-1]
    sizes = f"{big.count:,} vs {small.count:,} assets (baseline), {presses} PgDn, real app headless 120×40"
    base = f"{small.count:,} assets"
    return [
        Measure(
            "open library",
            name,
            getattr(big, attr) * 1000,
            "ms",
            getattr(small, attr) * 1000,
            base,
            None,
            sizes,
        )
        for name, attr in (
            ("open → first painted grid", "first_paint"),
            ("PgDn median (wall)", "page_down_median"),
            ("PgDn max (wall)", "page_down_max"),
        )
    ]


def print_report(results: list[OpenResult]) -> None:
    base = results[0]
    print(f"\n{'assets':>9} {'open → first paint':>20} {'PgDn median':>12} {'PgDn max':>10}")
    for r in results:
        print(
            f"{r.count:>9,} {r.first_paint * 1000:>17.0f} ms {r.page_down_median * 1000:>9.1f} ms"
            f" {r.page_down_max * 1000:>7.1f} ms"
        )
    for r in results[1:]:
        print(
            f"ratio {r.count:,}/{base.count:,}: first paint ×{r.first_paint / base.first_paint:.1f}, "
            f"page-down median ×{r.page_down_median / base.page_down_median:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 100_000])
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the measures as JSON")
    args = parser.parse_args()
    results = collect(args.counts, args.presses)
    if args.json:
        params = {"counts": args.counts, "presses": args.presses}
        emit(Report("open_library", params, results, measures(results, args.presses)))
    else:
        print_report(results)


if __name__ == "__main__":
    main()
