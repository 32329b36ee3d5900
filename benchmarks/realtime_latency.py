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
built on) subscribed to the same table, taking the same storm with a callback that only counts.
The storm's ratio to it is what media-tui adds on top of the client library.

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
from pathlib import Path

from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.types import RealtimePostgresChangesListenEvent

from benchmarks.remote_emulator import RemoteEmulator
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


async def bare_client_storm(emulator: RemoteEmulator, storm: int) -> float:
    """Seconds for a bare realtime-py client to receive a storm (the baseline)."""
    received = 0
    done = asyncio.Event()
    subscribed = asyncio.Event()

    def on_change(_: object) -> None:
        nonlocal received
        received += 1
        if received == storm:
            done.set()

    def on_state(state: RealtimeSubscribeStates, _: Exception | None) -> None:
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            subscribed.set()

    client = AsyncRealtimeClient(f"{emulator.url}/realtime/v1", token=emulator.service_key)
    channel = client.channel("bench-baseline")
    channel.on_postgres_changes(RealtimePostgresChangesListenEvent.All, on_change, table=TABLE)
    await channel.subscribe(on_state)
    await asyncio.wait_for(subscribed.wait(), 30)
    await asyncio.to_thread(write_storm, emulator, "base", storm)
    started = time.perf_counter()
    await asyncio.to_thread(emulator.call, "resume_delivery")
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - started
    await client.remove_all_channels()
    return elapsed


async def run(events: int, storm: int) -> None:
    with RemoteEmulator(SupabaseEmulator) as emulator, tempfile.TemporaryDirectory() as tmp:
        baseline = await bare_client_storm(emulator, storm)
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

            to_store, to_grid = [], []
            for i in range(events):
                public_id = f"lat/{i:05d}"
                started = time.perf_counter()
                await asyncio.to_thread(
                    emulator.call, "write_as_other", "INSERT", {"public_id": public_id}
                )
                while public_id not in shown:  # noqa: ASYNC110 - a benchmark's busy wait
                    await asyncio.sleep(0.001)
                to_store.append(applied[public_id] - started)
                to_grid.append(shown[public_id] - started)
                # Space the writes past one frame (1/30 s), so each is a lone event, not a storm.
                await asyncio.sleep(0.04)

            # The storm: the server holds N committed changes, then delivers them back to back,
            # so what is timed is the app taking them in, not the emulator producing them.
            written = time.perf_counter()
            await asyncio.to_thread(write_storm, emulator, "storm", storm)
            write_time = time.perf_counter() - written
            ticks.clear()
            started = time.perf_counter()
            await asyncio.to_thread(emulator.call, "resume_delivery")
            last = f"storm/{storm - 1:05d}"
            while last not in shown or len(app.view) < events + 2 * storm:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            storm_time = time.perf_counter() - started
            gaps = [b - a for a, b in itertools.pairwise(ticks)]

        ms = 1000
        print(f"\n{events} single writes (write → store → grid), ms:")
        print(
            f"  store  p50 {statistics.median(to_store) * ms:6.1f}  p99 {percentile(to_store, 0.99) * ms:6.1f}  max {max(to_store) * ms:6.1f}"
        )
        print(
            f"  grid   p50 {statistics.median(to_grid) * ms:6.1f}  p99 {percentile(to_grid, 0.99) * ms:6.1f}  max {max(to_grid) * ms:6.1f}"
        )
        print(
            f"{storm:,}-event storm (held, then released; writing them took {write_time:.1f} s): "
            f"all in the grid {storm_time:.2f} s after release; longest tick gap {max(gaps, default=0) * ms:.0f} ms"
        )
        print(
            f"  baseline: a bare realtime-py client took the same storm in {baseline:.2f} s "
            f"(media-tui {storm_time / baseline:.2f}× that)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--storm", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.storm))


if __name__ == "__main__":
    main()
