"""Realtime latency and an event storm, through the real app on the Supabase emulator.

`python -m benchmarks.realtime_latency [--events 500] [--storm 10000]` runs `MediaApp` headless
(local storage, Supabase catalogue on the emulator) and measures, for rows written by "another
operator" at the server:

- latency, one write at a time, 40 ms apart: write → the store has applied it → the grid has
  taken it (the app's frame-throttled apply step), as p50 / p99 / max;
- a storm of N inserts committed while delivery is held, then released at once: time from the
  release until every one is in the grid, and the longest gap between the app's 60 Hz ticks
  meanwhile (a stalled event loop shows up as a long gap: a frozen screen).

The baseline, run side by side: a bare realtime-py client (the library media-tui's feed is
built on) subscribed to the same table, taking the same lone writes (write → callback) and the
same storm with a callback that only counts. The ratios to it are what media-tui adds on top of
the client library.

Targets, from the README: write → grid p99 ≤ 50 ms; the 10,000-event storm all in the grid
≤ 2 s after release; no gap between 60 Hz ticks longer than 100 ms during it. `--json` prints
the measures as JSON, for `python -m benchmarks`.

The emulator runs in its own process, as a real server would: on a thread of this process it
would compete with the app for the interpreter lock.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.types import RealtimePostgresChangesListenEvent

from benchmarks.remote_emulator import RemoteEmulator
from benchmarks.results import Measure, Report, Target, emit
from media_tui.model import ConnectionState
from media_tui.store import ChangeSet
from media_tui.ui.app import MediaApp
from tests.emulators.supabase import SupabaseEmulator

TABLE = "media_assets"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write_storm(emulator: RemoteEmulator, prefix: str, count: int) -> None:
    """Commit `count` inserts while delivery is held; they go out back to back on release."""
    emulator.call("pause_delivery")
    emulator.call_many(
        "write_as_other", [("INSERT", {"public_id": f"{prefix}/{i:05d}"}) for i in range(count)]
    )


@dataclass
class Latencies:
    """Seconds from a write at the server to a point in the client, for lone writes."""

    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Latencies:
        return cls(statistics.median(values), percentile(values, 0.99), max(values))


@dataclass
class RealtimeResult:
    events: int
    storm: int
    to_store: Latencies  # write → the store has applied it
    to_grid: Latencies  # write → the grid has taken it
    storm_seconds: float  # release → every storm row in the grid
    storm_write_seconds: float  # committing the storm at the emulator (not timed above)
    longest_tick_gap: float
    baseline_latency: Latencies  # write → a bare realtime-py client's callback
    baseline_storm_seconds: float  # release → the bare client has counted every row


async def lone_writes(
    emulator: RemoteEmulator, prefix: str, count: int, arrived: Callable[[str], bool]
) -> dict[str, float]:
    """Write `count` rows one at a time, each once the last has `arrived`; when each was written."""
    started = {}
    for i in range(count):
        public_id = f"{prefix}/{i:05d}"
        started[public_id] = time.perf_counter()
        await asyncio.to_thread(emulator.call, "write_as_other", "INSERT", {"public_id": public_id})
        while not arrived(public_id):  # noqa: ASYNC110 - a benchmark's busy wait
            await asyncio.sleep(0.001)
        # Space the writes past one frame (1/30 s), so each is a lone event, not a storm.
        await asyncio.sleep(0.04)
    return started


async def bare_client(emulator: RemoteEmulator, events: int, storm: int) -> tuple[Latencies, float]:
    """A bare realtime-py client: lone-write latency to its callback, and seconds for a storm."""
    arrivals: list[float] = []
    done = asyncio.Event()
    subscribed = asyncio.Event()
    expected = events + storm

    def on_change(_: object) -> None:
        arrivals.append(time.perf_counter())
        if len(arrivals) == expected:
            done.set()

    def on_state(state: RealtimeSubscribeStates, _: Exception | None) -> None:
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            subscribed.set()

    client = AsyncRealtimeClient(f"{emulator.url}/realtime/v1", token=emulator.service_key)
    channel = client.channel("bench-baseline")
    channel.on_postgres_changes(RealtimePostgresChangesListenEvent.All, on_change, table=TABLE)
    await channel.subscribe(on_state)
    await asyncio.wait_for(subscribed.wait(), 30)
    # The callback only counts: the n-th lone write's row is the n-th arrival.
    started = await lone_writes(
        emulator, "base-lat", events, lambda public_id: len(arrivals) > int(public_id[-5:])
    )
    latency = Latencies.of([at - t for at, t in zip(arrivals, started.values(), strict=True)])
    await asyncio.to_thread(write_storm, emulator, "base", storm)
    released = time.perf_counter()
    await asyncio.to_thread(emulator.call, "resume_delivery")
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - released
    await client.remove_all_channels()
    return latency, elapsed


async def measure(events: int, storm: int) -> RealtimeResult:
    with RemoteEmulator(SupabaseEmulator) as emulator, tempfile.TemporaryDirectory() as tmp:
        baseline_latency, baseline_storm = await bare_client(emulator, events, storm)
        os.environ.update(
            SUPABASE_URL=emulator.url,
            SUPABASE_SERVICE_ROLE_KEY=emulator.service_key,
            MEDIA_TUI_LIBRARY=str(Path(tmp) / "lib"),
            MEDIA_TUI_CONFIG=os.devnull,
            MEDIA_TUI_STORAGE="local",
        )
        app = MediaApp(thumbnails=False)
        applied: dict[str, float] = {}
        shown: dict[str, float] = {}

        def on_store(changes: ChangeSet) -> None:
            now = time.perf_counter()
            for public_id in changes.assets:
                applied.setdefault(public_id, now)

        async with app.run_test(size=(120, 40)) as pilot:
            while app.store.connection is not ConnectionState.LIVE:
                await pilot.pause(0.01)
            app.store.subscribe(on_store)
            original = app.grid.apply_changes

            def grid_took(changes: ChangeSet) -> None:
                original(changes)
                now = time.perf_counter()
                for public_id in changes.assets:
                    shown.setdefault(public_id, now)

            app.grid.apply_changes = grid_took  # type: ignore[method-assign]

            ticks: list[float] = []
            app.set_interval(1 / 60, lambda: ticks.append(time.perf_counter()))

            started = await lone_writes(emulator, "lat", events, shown.__contains__)
            to_store = [applied[public_id] - t for public_id, t in started.items()]
            to_grid = [shown[public_id] - t for public_id, t in started.items()]

            # The storm: the server holds N committed changes, then delivers them back to back,
            # so what is timed is the app taking them in, not the emulator producing them.
            expected = len(app.view) + storm
            written = time.perf_counter()
            await asyncio.to_thread(write_storm, emulator, "storm", storm)
            write_time = time.perf_counter() - written
            ticks.clear()
            released = time.perf_counter()
            await asyncio.to_thread(emulator.call, "resume_delivery")
            last = f"storm/{storm - 1:05d}"
            while last not in shown or len(app.view) < expected:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            storm_time = time.perf_counter() - released
            gaps = [b - a for a, b in itertools.pairwise(ticks)]

    return RealtimeResult(
        events,
        storm,
        Latencies.of(to_store),
        Latencies.of(to_grid),
        storm_time,
        write_time,
        max(gaps, default=0.0),
        baseline_latency,
        baseline_storm,
    )


def collect(events: int, storm: int) -> RealtimeResult:
    return asyncio.run(measure(events, storm))


def measures(r: RealtimeResult) -> list[Measure]:
    bench = "realtime, lone writes"
    sizes = f"{r.events} lone writes 40 ms apart, Supabase emulator in its own process"
    base = "bare realtime-py client"
    storm_bench = "realtime, event storm"
    storm_sizes = f"{r.storm:,} inserts held at the server, then released at once"
    ms = 1000
    grid_target = Target("value", "≤", 50, "ms", "README")
    lone = [
        Measure(
            bench,
            f"write → {where} {q}",
            getattr(latencies, q) * ms,
            "ms",
            getattr(r.baseline_latency, q) * ms,
            base,
            grid_target if (where, q) == ("grid", "p99") else None,
            sizes,
        )
        for where, latencies in (("store", r.to_store), ("grid", r.to_grid))
        for q in ("p50", "p99")
    ]
    return [
        *lone,
        Measure(
            storm_bench,
            "release → all in grid",
            r.storm_seconds,
            "s",
            r.baseline_storm_seconds,
            base,
            Target("value", "≤", 2, "s", "README"),
            storm_sizes,
        ),
        Measure(
            storm_bench,
            "longest 60 Hz tick gap",
            r.longest_tick_gap * ms,
            "ms",
            None,
            None,
            Target("value", "≤", 100, "ms", "README"),
            storm_sizes,
        ),
    ]


def print_report(r: RealtimeResult) -> None:
    ms = 1000

    def row(name: str, lat: Latencies) -> str:
        return (
            f"  {name:<6} p50 {lat.p50 * ms:6.1f}  p99 {lat.p99 * ms:6.1f}  max {lat.max * ms:6.1f}"
        )

    print(f"\n{r.events} single writes (write → store → grid), ms:")
    print(row("store", r.to_store))
    print(row("grid", r.to_grid))
    print(
        row("bare", r.baseline_latency), "(baseline: write → a bare realtime-py client's callback)"
    )
    print(
        f"{r.storm:,}-event storm (held, then released; writing them took {r.storm_write_seconds:.1f} s): "
        f"all in the grid {r.storm_seconds:.2f} s after release; "
        f"longest tick gap {r.longest_tick_gap * ms:.0f} ms"
    )
    print(
        f"  baseline: a bare realtime-py client took the same storm in {r.baseline_storm_seconds:.2f} s "
        f"(media-tui {r.storm_seconds / r.baseline_storm_seconds:.2f}× that)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--storm", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print the measures as JSON")
    args = parser.parse_args()
    result = collect(args.events, args.storm)
    if args.json:
        params = {"events": args.events, "storm": args.storm}
        emit(Report("realtime_latency", params, result, measures(result)))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
