"""SupabaseCatalog and SupabaseChangeFeed through the real supabase client, against the emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from media_tui.backends.local import LocalStorage
from media_tui.backends.supabase_catalog import SupabaseCatalog
from media_tui.backends.supabase_feed import SupabaseChangeFeed
from media_tui.config import Secret, SupabaseSettings
from media_tui.model import ConnectionState, MediaAsset
from media_tui.operations import delete_asset
from media_tui.paths import expand
from media_tui.store import ChangeSet, MediaStore
from media_tui.uploads import UploadQueue
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.media_factory import make_png


async def until(condition: Callable[[], bool], limit: float = 30.0) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - the condition spans two processes' state
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), limit)
    except TimeoutError:
        raise AssertionError(f"condition not met within {limit} s") from None


def settings(emulator: SupabaseEmulator) -> SupabaseSettings:
    return SupabaseSettings(url=emulator.url, key=Secret(emulator.service_key), key_source="test")


class Operator:
    """One media-tui: a catalogue client, a live feed into its own store."""

    def __init__(self, emulator: SupabaseEmulator, **realtime_options: object) -> None:
        self.catalog = SupabaseCatalog(settings(emulator))
        self.feed = SupabaseChangeFeed(
            self.catalog, watchdog_interval=0.2, realtime_options=realtime_options
        )
        self.store = MediaStore()
        self.resyncs = 0
        self.states: list[ConnectionState] = []
        self.store.subscribe(self._count_resyncs)
        self._task: asyncio.Task[None] | None = None

    def _count_resyncs(self, changes: ChangeSet) -> None:
        self.resyncs += changes.reset
        if changes.connection:
            self.states.append(self.store.connection)

    async def recovers(self, emulator: SupabaseEmulator, resyncs_before: int) -> None:
        """Back to live after an outage, with a resync, and equal to the server's rows."""
        await until(lambda: self.resyncs > resyncs_before)
        await until(lambda: self.store.public_ids() == server_ids(emulator))
        assert self.store.connection is ConnectionState.LIVE
        assert ConnectionState.RECONNECTING in self.states

    async def _follow(self) -> None:
        async for event in self.feed.events():
            self.store.apply(event)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow())
        await until(lambda: self.store.connection is ConnectionState.LIVE)

    async def close(self) -> None:
        await self.feed.aclose()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.catalog.aclose()


@contextlib.asynccontextmanager
async def operators(emulator: SupabaseEmulator, count: int) -> AsyncIterator[list[Operator]]:
    team = [Operator(emulator) for _ in range(count)]
    try:
        for member in team:
            await member.start()
        yield team
    finally:
        for member in team:
            await member.close()


def server_ids(emulator: SupabaseEmulator) -> set[str]:
    return {str(row["public_id"]) for row in emulator.rows}


async def test_catalog_round_trip(supabase_emulator: SupabaseEmulator) -> None:
    catalog = SupabaseCatalog(settings(supabase_emulator))
    try:
        first = await catalog.upsert(
            MediaAsset(public_id="a/b", checksum="c" * 64, tags=("x",), bytes=3)
        )
        again = await catalog.upsert(
            MediaAsset(public_id="a/b", checksum="c" * 64, tags=("y",), bytes=4)
        )
        assert first.row_id == again.row_id and again.tags == ("y",)
        assert again.updated_at and first.updated_at and again.updated_at > first.updated_at
        assert (await catalog.get("a/b")) == again
        assert (await catalog.find_by_checksum("c" * 64)) == again
        await catalog.upsert(MediaAsset(public_id="other", folder="f"))
        page = await catalog.page(limit=1)
        assert page.total == 2 and len(page.assets) == 1
        assert (await catalog.page(folder="f")).total == 1
        assert await catalog.delete("a/b") and not await catalog.delete("a/b")
    finally:
        await catalog.aclose()


async def test_wrong_key_is_a_clear_permanent_error(supabase_emulator: SupabaseEmulator) -> None:
    catalog = SupabaseCatalog(SupabaseSettings(supabase_emulator.url, Secret("not-a-key"), "test"))
    try:
        with pytest.raises(Exception) as caught:
            await catalog.get("x")
        assert "check SUPABASE_URL and the key" in str(caught.value)
        assert "not-a-key" not in str(caught.value)
    finally:
        await catalog.aclose()


async def test_two_operators_see_each_others_uploads_and_deletes(
    tmp_path: Path, supabase_emulator: SupabaseEmulator
) -> None:
    picture = make_png(tmp_path / "shared.png", seed=8)
    async with operators(supabase_emulator, 2) as (alice, bob):
        storage = LocalStorage(tmp_path / "lib")
        queue = UploadQueue(alice.store, storage, alice.catalog)
        await queue.start()
        try:
            await queue.enqueue(expand([str(picture)]).files)
            await asyncio.wait_for(queue.wait_idle(), 30)
        finally:
            await queue.aclose()
        assert "shared" in alice.store.assets
        await until(lambda: "shared" in bob.store.assets)  # through realtime
        assert bob.store.assets["shared"].checksum == alice.store.assets["shared"].checksum

        await delete_asset(alice.store, storage, alice.catalog, "shared")
        await until(lambda: "shared" not in bob.store.public_ids())  # a DELETE with only the id
        assert server_ids(supabase_emulator) == set()
        await storage.aclose()


async def test_dropped_sockets_during_100_writes_converge(
    supabase_emulator: SupabaseEmulator,
) -> None:
    async with operators(supabase_emulator, 2) as team:
        assert all(member.resyncs == 1 for member in team)
        supabase_emulator.drop_all_sockets()
        for i in range(100):
            supabase_emulator.write_as_other(
                "INSERT", {"public_id": f"other/{i:03d}", "resource_type": "image"}
            )
        for i in range(0, 100, 10):
            supabase_emulator.write_as_other("DELETE", {"public_id": f"other/{i:03d}"})
        expected = server_ids(supabase_emulator)
        assert len(expected) == 90
        for member in team:
            await until(lambda member=member: member.store.public_ids() == expected)
            # The socket really went away and came back: a second resync after the rejoin.
            await until(lambda member=member: member.resyncs >= 2)
            assert member.store.public_ids() == expected
            assert member.store.connection is ConnectionState.LIVE


async def test_duplicated_and_reordered_events_change_nothing(
    supabase_emulator: SupabaseEmulator,
) -> None:
    async with operators(supabase_emulator, 1) as (alice,):
        supabase_emulator.duplicate_events = True
        supabase_emulator.pause_delivery()
        supabase_emulator.reorder_events = True
        for i in range(20):
            supabase_emulator.write_as_other(
                "INSERT", {"public_id": f"r/{i}", "resource_type": "image", "bytes": 1}
            )
        for i in range(20):
            supabase_emulator.write_as_other("UPDATE", {"public_id": f"r/{i}", "bytes": 2})
        supabase_emulator.write_as_other("DELETE", {"public_id": "r/0"})
        supabase_emulator.resume_delivery()
        expected = {str(row["public_id"]): int(row["bytes"]) for row in supabase_emulator.rows}
        await until(lambda: {pid: a.bytes for pid, a in alice.store.assets.items()} == expected)
        assert "r/0" not in alice.store.public_ids()


def write_rows(emulator: SupabaseEmulator, prefix: str, count: int) -> None:
    for i in range(count):
        emulator.write_as_other(
            "INSERT", {"public_id": f"{prefix}/{i:03d}", "resource_type": "image"}
        )


async def test_watchdog_resubscribes_a_channel_the_server_closed(
    supabase_emulator: SupabaseEmulator,
) -> None:
    """realtime-py leaves a channel closed by the server (an expired token) closed for good."""
    alice = Operator(supabase_emulator)
    await alice.start()
    try:
        before = alice.resyncs
        await asyncio.to_thread(supabase_emulator.expire_channels)
        await asyncio.to_thread(write_rows, supabase_emulator, "while-closed", 5)
        await alice.recovers(supabase_emulator, before)
        assert len(alice.store.public_ids()) == 5
    finally:
        await alice.close()


async def test_watchdog_reconnects_after_the_client_ran_out_of_retries(
    supabase_emulator: SupabaseEmulator,
) -> None:
    """Exhausted reconnect retries stop silently in realtime-py; the watchdog starts again."""
    alice = Operator(supabase_emulator, max_retries=2, initial_backoff=0.05)
    await alice.start()
    try:
        before = alice.resyncs
        supabase_emulator.refuse_sockets(3600)
        await asyncio.to_thread(supabase_emulator.drop_all_sockets)
        await until(lambda: alice.store.connection is ConnectionState.RECONNECTING)
        # Let both of realtime-py's attempts be refused, then the watchdog's too.
        await until(
            lambda: (
                sum(
                    1
                    for _, path, status in supabase_emulator.requests
                    if path.startswith("/realtime") and status == 503
                )
                >= 3
            )
        )
        await asyncio.to_thread(write_rows, supabase_emulator, "while-down", 5)
        supabase_emulator.refuse_sockets(0)
        await alice.recovers(supabase_emulator, before)
        assert len(alice.store.public_ids()) == 5
    finally:
        await alice.close()


async def test_watchdog_revives_a_dead_listener(supabase_emulator: SupabaseEmulator) -> None:
    """A listen task that died (a raising callback does this) while the socket looks open."""
    alice = Operator(supabase_emulator)
    await alice.start()
    try:
        before = alice.resyncs
        feed = alice.feed
        assert feed._thread is not None and feed._realtime is not None
        realtime = feed._realtime

        async def kill_listener() -> None:
            realtime._listen_task.cancel()

        await feed._thread.run(kill_listener())
        await asyncio.to_thread(write_rows, supabase_emulator, "while-deaf", 5)
        await alice.recovers(supabase_emulator, before)
        assert len(alice.store.public_ids()) == 5
    finally:
        await alice.close()


async def test_a_storm_arrives_complete_and_in_order(supabase_emulator: SupabaseEmulator) -> None:
    """Held, then released at once: 2,000 changes cross the realtime thread; none is lost."""
    async with operators(supabase_emulator, 1) as (alice,):
        supabase_emulator.pause_delivery()
        await asyncio.to_thread(write_rows, supabase_emulator, "storm", 2000)
        for i in range(0, 2000, 2):
            supabase_emulator.write_as_other("DELETE", {"public_id": f"storm/{i:03d}"})
        supabase_emulator.resume_delivery()
        await until(lambda: alice.store.public_ids() == server_ids(supabase_emulator))
        assert len(alice.store.public_ids()) == 1000
        assert alice.resyncs == 1  # it came through the feed, not a resync


def _doctor(emulator: SupabaseEmulator, key: str, tmp_path: Path) -> dict[str, dict[str, object]]:
    import json
    import os
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDINARY_", "SUPABASE_", "MEDIA_TUI_"))
    }
    env |= {"SUPABASE_URL": emulator.url, "SUPABASE_KEY": key, "MEDIA_TUI_CONFIG": os.devnull}
    result = subprocess.run(
        [sys.executable, "-m", "media_tui", "doctor", "--json", "--library", str(tmp_path / "lib")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert key not in result.stdout + result.stderr
    return {c["check"]: c for c in map(json.loads, result.stdout.splitlines())}


def test_doctor_checks_table_write_and_realtime(
    tmp_path: Path, supabase_emulator: SupabaseEmulator
) -> None:
    checks = _doctor(supabase_emulator, supabase_emulator.service_key, tmp_path)
    for name in ("catalog", "table", "write", "realtime"):
        assert checks[name]["status"] == "ok", checks[name]
    assert supabase_emulator.rows == []  # the write check wrote nothing
    anon = _doctor(supabase_emulator, supabase_emulator.anon_key, tmp_path)
    assert anon["table"]["status"] == "ok" and anon["write"]["status"] == "fail"
    assert "key" in str(anon["write"]["detail"])
