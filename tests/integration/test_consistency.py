"""Divergence heals itself: the catalogues' digests, the feeds' requested resyncs, and the
consistency probe keeping a store equal to the server through duplicated, reordered and
delayed realtime events (the Supabase emulator) — and repairing a store broken on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from media_tui.backends.base import CatalogDigest
from media_tui.backends.local import LocalCatalog, LocalChangeFeed
from media_tui.backends.supabase_catalog import SupabaseCatalog
from media_tui.backends.supabase_feed import SupabaseChangeFeed
from media_tui.consistency import ConsistencyProbe
from media_tui.model import ConnectionState, MediaAsset, Resync, parse_timestamp
from media_tui.store import MediaStore
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.test_supabase_pipeline import settings, until


class Follower:
    """One media-tui's view: a feed into a store, with the probe watching (short interval)."""

    def __init__(self, emulator: SupabaseEmulator, *, interval: float = 0.5) -> None:
        self.catalog = SupabaseCatalog(settings(emulator))
        self.feed = SupabaseChangeFeed(self.catalog, watchdog_interval=0.2)
        self.store = MediaStore()
        self.rounds_at_repair: list[int] = []
        self.probe = ConsistencyProbe(
            self.store,
            self.catalog,
            self._resync,
            backlog=lambda: self.feed.backlog,
            interval=interval,
            quiet=0.2,
            confirm_delay=0.2,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _resync(self) -> None:
        self.rounds_at_repair.append(self.probe.rounds)
        self.feed.request_resync()

    async def _follow(self) -> None:
        async for event in self.feed.events():
            self.store.apply(event)
            self.probe.saw(event)

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self.probe.run())]
        await until(lambda: self.store.connection is ConnectionState.LIVE)

    async def close(self) -> None:
        self.probe.stop()
        await self.feed.aclose()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.catalog.aclose()

    def versions(self) -> dict[str, datetime | None]:
        return {pid: a.updated_at for pid, a in self.store.assets.items()}


@contextlib.asynccontextmanager
async def follower(emulator: SupabaseEmulator, **options: float) -> AsyncIterator[Follower]:
    member = Follower(emulator, **options)
    try:
        await member.start()
        yield member
    finally:
        await member.close()


def server_versions(emulator: SupabaseEmulator) -> dict[str, datetime | None]:
    return {str(r["public_id"]): parse_timestamp(r["updated_at"]) for r in emulator.rows}


def row(public_id: str, **extra: object) -> dict[str, object]:
    return {"public_id": public_id, "resource_type": "image", "format": "jpg", **extra}


def churn(emulator: SupabaseEmulator, seed: int, operations: int) -> None:
    """Another operator's random inserts, updates and deletes, re-creating some public ids
    (so a row id's DELETE can arrive after the same name's newer row)."""
    rng = random.Random(seed)
    live: list[str] = []
    dead: list[str] = []
    for n in range(operations):
        choice = rng.random()
        if not live or choice < 0.4:
            public_id = dead.pop(rng.randrange(len(dead))) if dead and rng.random() < 0.5 else None
            public_id = public_id or f"churn/{n}"
            emulator.write_as_other("INSERT", row(public_id, bytes=n))
            live.append(public_id)
        elif choice < 0.7:
            emulator.write_as_other("UPDATE", {"public_id": rng.choice(live), "width": n})
        else:
            public_id = live.pop(rng.randrange(len(live)))
            emulator.write_as_other("DELETE", {"public_id": public_id})
            dead.append(public_id)


# --- the catalogues' digests and the feeds' requested resyncs ----------------------------------


async def test_supabase_digest_is_the_count_and_the_newest_write(
    supabase_emulator: SupabaseEmulator,
) -> None:
    catalog = SupabaseCatalog(settings(supabase_emulator))
    try:
        assert await catalog.digest() == CatalogDigest(count=0, newest=None)
        for public_id in ("a", "b", "c"):
            await catalog.upsert(MediaAsset(public_id=public_id))
        newest = await catalog.upsert(MediaAsset(public_id="a", tags=("again",)))
        before = len(supabase_emulator.requests)
        assert await catalog.digest() == CatalogDigest(count=3, newest=newest.updated_at)
        # One request: the newest row's stamp, with the exact count in Content-Range.
        assert [r[0] for r in supabase_emulator.requests[before:]] == ["GET"]
    finally:
        await catalog.aclose()


async def test_local_digest_and_a_requested_resync(tmp_path: Path) -> None:
    catalog = await LocalCatalog(tmp_path / "lib").open()
    feed = LocalChangeFeed(catalog)
    events = feed.events()
    try:
        assert await catalog.digest() == CatalogDigest(count=0, newest=None)
        await catalog.upsert(MediaAsset(public_id="x"))
        newest = await catalog.upsert(MediaAsset(public_id="y"))
        assert await catalog.digest() == CatalogDigest(count=2, newest=newest.updated_at)

        first = [await anext(events), await anext(events)]
        assert isinstance(first[1], Resync) and len(first[1].assets) == 2
        feed.request_resync()
        again = await asyncio.wait_for(anext(events), 10)
        assert isinstance(again, Resync) and {a.public_id for a in again.assets} == {"x", "y"}
        assert feed.backlog == 0
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        await feed.aclose()
        await catalog.aclose()


async def test_supabase_feed_sends_a_requested_resync(supabase_emulator: SupabaseEmulator) -> None:
    async with follower(supabase_emulator, interval=3600) as member:
        resyncs: list[int] = []
        member.store.subscribe(lambda changes: resyncs.append(1) if changes.reset else None)
        supabase_emulator.write_as_other("INSERT", row("r/1"))
        await until(lambda: "r/1" in member.store.assets)
        member.feed.request_resync()
        await until(lambda: len(resyncs) == 1)
        assert set(member.store.assets) == {"r/1"}


# --- the probe, end to end ----------------------------------------------------------------------


async def test_the_store_equals_the_server_through_duplicated_reordered_late_events(
    supabase_emulator: SupabaseEmulator,
) -> None:
    emulator = supabase_emulator
    assert not emulator.replica_identity_full  # DELETEs (and UPDATEs' old_record) carry only id
    emulator.duplicate_events = True
    emulator.reorder_window = 8
    emulator.delivery_jitter = 0.01
    async with follower(emulator, interval=0.5) as member:
        await asyncio.to_thread(churn, emulator, 7, 300)
        expected = server_versions(emulator)  # nothing writes from here on

        def quiescent_and_equal() -> bool:
            return (
                emulator.undelivered == 0
                and member.feed.backlog == 0
                and member.versions() == expected
            )

        await until(quiescent_and_equal, limit=60)
        # How many repairs it took is the store's business (each one logged); it must converge.
        print(f"probe repairs: {member.probe.repairs}, rounds: {member.probe.rounds}")


async def test_the_probe_repairs_a_broken_store_at_its_next_round(
    supabase_emulator: SupabaseEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(5):
        supabase_emulator.write_as_other("INSERT", row(f"h/{i}"))
    async with follower(supabase_emulator, interval=0.3) as member:
        await until(lambda: member.versions() == server_versions(supabase_emulator))
        with caplog.at_level(logging.WARNING, logger="media_tui.consistency"):
            rounds_before = member.probe.rounds
            member.store.remote_delete("h/2")  # as if a delete arrived that nobody made
            assert "h/2" not in member.store.assets
            await until(lambda: "h/2" in member.store.assets)
        assert member.versions() == server_versions(supabase_emulator)
        assert member.probe.repairs == 1
        # The first round that started after the break (or one already under way) repaired it.
        assert member.rounds_at_repair[0] <= rounds_before + 2
        (line,) = [r.getMessage() for r in caplog.records if "consistency probe" in r.getMessage()]
        assert "store has 4 assets" in line and "catalogue has 5" in line
        assert line.endswith("resyncing")
