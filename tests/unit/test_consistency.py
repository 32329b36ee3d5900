"""ConsistencyProbe on a fake clock: when it compares, when it repairs, and that it never raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from media_tui.backends.base import CatalogDigest
from media_tui.consistency import ConsistencyProbe, store_digest
from media_tui.errors import TransientError
from media_tui.model import ConnectionState, MediaAsset, RemoteUpsert
from media_tui.store import MediaStore

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class FakeTime:
    """A clock that moves only when the test says so; `sleep` waits for it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        entry = (self.now + seconds, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        try:
            await entry[1]
        finally:
            self._sleepers.remove(entry)

    async def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, waking each sleeper at its deadline, in order."""
        target = self.now + seconds
        while True:
            await settle()
            due = [when for when, fut in self._sleepers if when <= target and not fut.done()]
            if not due:
                break
            self.now = max(self.now, min(due))
            for when, fut in self._sleepers:
                if when <= self.now and not fut.done():
                    fut.set_result(None)
        self.now = target
        await settle()


async def settle() -> None:
    """Let every other task run until it waits again (no real time passes)."""
    for _ in range(50):
        await asyncio.sleep(0)


class ScriptedCatalog:
    """A catalogue whose digest is the server's rows, or the next scripted error."""

    def __init__(self, rows: dict[str, MediaAsset]) -> None:
        self.rows = rows
        self.errors: list[Exception] = []
        self.reads = 0
        self.on_read: Callable[[], None] | None = None

    async def digest(self) -> CatalogDigest:
        self.reads += 1
        if self.on_read is not None:
            self.on_read()
        if self.errors:
            raise self.errors.pop(0)
        return store_digest_of(self.rows.values())


def store_digest_of(assets: object) -> CatalogDigest:
    store = MediaStore()
    store.snapshot_loaded(assets)  # type: ignore[arg-type]
    return store_digest(store)


def asset(public_id: str, minutes: int) -> MediaAsset:
    return MediaAsset(public_id=public_id, updated_at=T0 + timedelta(minutes=minutes))


class Rig:
    def __init__(self) -> None:
        self.time = FakeTime()
        self.server = {a.public_id: a for a in (asset("a", 1), asset("b", 2), asset("c", 3))}
        self.catalog = ScriptedCatalog(self.server)
        self.store = MediaStore()
        self.store.connection_changed(ConnectionState.LIVE)
        self.store.snapshot_loaded(self.server.values())
        self.resyncs = 0
        self.backlog = 0
        self.probe = ConsistencyProbe(
            self.store,
            self.catalog,
            self.request_resync,
            backlog=lambda: self.backlog,
            interval=30.0,
            quiet=2.0,
            confirm_delay=1.0,
            clock=self.time.clock,
            sleep=self.time.sleep,
        )

    def request_resync(self) -> None:
        self.resyncs += 1


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    task = asyncio.create_task(rig.probe.run())
    await settle()
    try:
        yield rig
    finally:
        rig.probe.stop()
        await asyncio.wait_for(task, 5)  # it ends at its next wait, without raising


async def test_a_store_in_step_is_compared_every_interval_and_left_alone(rig: Rig) -> None:
    await rig.time.advance(29)
    assert rig.catalog.reads == 0
    await rig.time.advance(1)
    assert rig.catalog.reads == 1 and rig.probe.rounds == 1
    await rig.time.advance(30)
    assert rig.catalog.reads == 2
    assert rig.resyncs == 0 and rig.probe.repairs == 0


async def test_a_confirmed_mismatch_asks_for_exactly_one_resync_and_says_so(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.store.remote_delete("b")  # a delete the server never made: the store is wrong
    with caplog.at_level(logging.WARNING, logger="media_tui.consistency"):
        await rig.time.advance(30)
        assert rig.resyncs == 0  # one mismatch is not enough: events may be in flight
        await rig.time.advance(1)
        assert rig.resyncs == 1 and rig.probe.repairs == 1
        await rig.time.advance(28)
    assert rig.resyncs == 1 and rig.catalog.reads == 2
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == (
        "consistency probe: store has 2 assets, newest 2026-01-02T03:07:05+00:00; "
        "catalogue has 3, newest 2026-01-02T03:07:05+00:00; resyncing"
    )


async def test_a_mismatch_that_was_only_in_flight_is_not_repaired(rig: Rig) -> None:
    late = asset("d", 4)
    rig.server["d"] = late  # committed; its realtime event is still on its way
    await rig.time.advance(30)
    assert rig.catalog.reads == 1
    rig.store.remote_upsert(late)  # ...and arrives before the second look
    await rig.time.advance(1)
    assert rig.catalog.reads == 2 and rig.resyncs == 0 and rig.probe.repairs == 0


async def test_catalogue_errors_are_logged_and_the_next_round_still_repairs(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.store.remote_delete("c")
    rig.catalog.errors = [TransientError("Supabase could not answer"), RuntimeError("boom")]
    with caplog.at_level(logging.WARNING, logger="media_tui.consistency"):
        await rig.time.advance(30)
        await rig.time.advance(30)
    assert rig.probe.failures == 2 and rig.resyncs == 0
    assert sum("cannot read the catalogue's digest" in r.getMessage() for r in caplog.records) == 2
    await rig.time.advance(31)
    assert rig.resyncs == 1


async def test_a_failing_resync_request_does_not_stop_the_probe(rig: Rig) -> None:
    def broken() -> None:
        raise RuntimeError("the feed is gone")

    rig.probe._request_resync = broken
    rig.store.remote_delete("a")
    await rig.time.advance(31)
    assert rig.probe.repairs == 1
    await rig.time.advance(30)
    assert rig.probe.repairs == 2  # still running, still trying


async def test_a_burst_is_checked_a_quiet_moment_after_it_ends(rig: Rig) -> None:
    newer = asset("a", 10)
    rig.server["a"] = newer
    for step in range(5):  # a burst: each event postpones the check
        rig.probe.saw(RemoteUpsert(asset(f"x{step}", 0)))
        await rig.time.advance(1)
    assert rig.catalog.reads == 0
    await rig.time.advance(1)
    assert rig.catalog.reads == 1  # 2 s after the last event, long before the 30 s tick
    await rig.time.advance(1)
    assert rig.resyncs == 1  # `a`'s newer version never arrived


async def test_no_comparison_while_events_wait_or_the_feed_is_not_live(rig: Rig) -> None:
    rig.store.remote_delete("a")
    rig.backlog = 3
    await rig.time.advance(30)
    assert rig.catalog.reads == 0
    await rig.time.advance(2)
    assert rig.catalog.reads == 0  # still behind: look again later
    rig.backlog = 0
    await rig.time.advance(2)
    assert rig.catalog.reads == 1
    await rig.time.advance(1)
    assert rig.resyncs == 1

    rig.store.connection_changed(ConnectionState.RECONNECTING)
    await rig.time.advance(60)
    assert rig.catalog.reads == 2 and rig.resyncs == 1  # the reconnect resyncs by itself


async def test_going_offline_between_the_two_looks_cancels_the_repair(rig: Rig) -> None:
    rig.store.remote_delete("a")
    rig.catalog.on_read = lambda: (
        rig.store.connection_changed(ConnectionState.RECONNECTING)
        if rig.catalog.reads == 1
        else None
    )
    await rig.time.advance(31)
    assert rig.catalog.reads == 1 and rig.resyncs == 0
