"""Integration tests for the local library: LocalStorage, LocalCatalog, LocalChangeFeed, imaging.

Everything runs against real files and a real SQLite database in a temp folder. Nothing
sleeps to wait: tests wait on events or on the feed's next event, each with a timeout.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from media_tui.backends import local_feed, local_storage
from media_tui.backends.base import UploadRequest
from media_tui.backends.local import (
    CATALOG_FILENAME,
    SCHEMA_VERSION,
    ChangesPruned,
    LocalCatalog,
    LocalChangeFeed,
    LocalStorage,
)
from media_tui.errors import PermanentError, TransientError
from media_tui.imaging import make_thumbnail, probe_image
from media_tui.model import (
    ChangeEvent,
    ConnectionChanged,
    ConnectionState,
    MediaAsset,
    RemoteDelete,
    RemoteUpsert,
    ResourceType,
    Resync,
)

TIMEOUT = 10.0
MIB = 1 << 20
WRITER = Path(__file__).with_name("local_catalog_writer.py")


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return tmp_path / "library"


@pytest.fixture
def newer_library(library: Path) -> Path:
    """A library whose catalogue says a newer media-tui wrote it."""
    library.mkdir()
    run_sql(library / CATALOG_FILENAME, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    return library


@pytest.fixture
async def catalog(library: Path) -> AsyncIterator[LocalCatalog]:
    cat = LocalCatalog(library)
    yield cat
    await cat.aclose()


@pytest.fixture
async def feed(catalog: LocalCatalog) -> AsyncIterator[LocalChangeFeed]:
    f = LocalChangeFeed(catalog)
    yield f
    await f.aclose()


def request_for(
    path: Path, resource_type: ResourceType = ResourceType.RAW, **kw: Any
) -> UploadRequest:
    data = path.read_bytes()
    return UploadRequest(
        path=path,
        public_id=kw.pop("public_id", f"test/{path.stem}"),
        resource_type=resource_type,
        size=len(data),
        checksum=kw.pop("checksum", hashlib.sha256(data).hexdigest()),
        **kw,
    )


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_random(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def leftovers(storage: LocalStorage) -> list[Path]:
    """Every file under objects/ (temp files and objects alike)."""
    return [p for p in storage.objects_dir.rglob("*") if p.is_file()]


def temp_files(storage: LocalStorage) -> list[Path]:
    return [p for p in leftovers(storage) if p.name.endswith(".tmp")]


def asset(public_id: str, **kw: Any) -> MediaAsset:
    return MediaAsset(public_id=public_id, **kw)


async def next_event(events: AsyncIterator[ChangeEvent]) -> ChangeEvent:
    return await asyncio.wait_for(anext(events), TIMEOUT)


async def first_event(
    events: AsyncIterator[ChangeEvent], match: Callable[[ChangeEvent], bool]
) -> ChangeEvent:
    """The first event that matches, skipping others, within TIMEOUT overall."""

    async def scan() -> ChangeEvent:
        async for event in events:
            if match(event):
                return event
        raise AssertionError("the feed ended before the expected event")

    return await asyncio.wait_for(scan(), TIMEOUT)


async def start(feed: LocalChangeFeed) -> tuple[AsyncIterator[ChangeEvent], Resync]:
    """Open the stream and check it begins with LIVE then a Resync; return both."""
    events = feed.events()
    assert await next_event(events) == ConnectionChanged(ConnectionState.LIVE)
    resync = await next_event(events)
    assert isinstance(resync, Resync)
    assert feed.state is ConnectionState.LIVE
    return events, resync


def run_sql(db: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """A hand edit through a plain sqlite3 connection, as an operator's shell would do."""
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


# --- imaging ---------------------------------------------------------------------------------------


def test_probe_and_thumbnail_of_non_images_say_no(tmp_path: Path) -> None:
    junk = write_random(tmp_path / "junk.png", 4096)
    assert probe_image(junk) is None
    assert make_thumbnail(junk, tmp_path / "t.png") is False
    assert not (tmp_path / "t.png").exists()
    assert list(tmp_path.iterdir()) == [junk]  # no temp file either


def test_thumbnail_honours_exif_orientation(tmp_path: Path) -> None:
    src = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.new("RGB", (800, 400), "blue").save(src, "JPEG", exif=exif)
    assert probe_image(src) == ("jpg", 800, 400)  # the stored pixel size
    assert make_thumbnail(src, tmp_path / "thumb.png")
    with Image.open(tmp_path / "thumb.png") as thumb:
        assert thumb.format == "PNG"
        assert thumb.size == (128, 256)  # as displayed: portrait


def test_thumbnail_keeps_transparency(tmp_path: Path) -> None:
    src = tmp_path / "clear.png"
    Image.new("RGBA", (600, 600), (255, 0, 0, 0)).save(src)
    assert make_thumbnail(src, tmp_path / "thumb.png")
    with Image.open(tmp_path / "thumb.png") as thumb:
        assert thumb.mode == "RGBA"
        assert thumb.size == (256, 256)


# --- LocalStorage ------------------------------------------------------------------------------------


async def test_upload_stores_identical_bytes_at_content_address(
    library: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(library)
    src = write_random(tmp_path / "data.bin", 3 * MIB + 12345)
    request = request_for(src, folder="docs", tags=("a", "b"))
    seen: list[int] = []

    stored = await storage.upload(request, seen.append)

    sha = request.checksum
    target = library / "objects" / sha[:2] / f"{sha}.bin"
    assert storage.object_path(sha, "bin") == target
    assert target.read_bytes() == src.read_bytes()
    assert seen == sorted(seen) and seen[-1] == request.size and len(seen) == 4
    assert stored.public_id == request.public_id
    assert (stored.folder, stored.tags, stored.checksum) == ("docs", ("a", "b"), sha)
    assert (stored.resource_type, stored.format, stored.bytes) == (
        ResourceType.RAW,
        "bin",
        request.size,
    )
    assert (stored.width, stored.height, stored.thumbnail) == (None, None, None)
    assert stored.url == target.as_uri()
    assert stored.original_filename == "data.bin"
    assert stored.created_at is not None and stored.created_at.tzinfo is not None
    assert temp_files(storage) == []


async def test_upload_of_stored_content_reuses_the_object(library: Path, tmp_path: Path) -> None:
    storage = LocalStorage(library)
    src = write_random(tmp_path / "clip.mp4", 2 * MIB)
    first = await storage.upload(request_for(src, ResourceType.VIDEO), lambda _n: None)
    target = storage.object_path(first.checksum or "", "mp4")
    before = target.stat()
    seen: list[int] = []

    again = await storage.upload(
        request_for(src, ResourceType.VIDEO, public_id="test/copy"), seen.append
    )

    assert seen == [2 * MIB]
    assert again.url == first.url and again.format == "mp4" and again.width is None
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize(
    ("name", "pillow_format", "size", "expected_format", "thumb_size"),
    [
        ("wide.png", "PNG", (640, 480), "png", (256, 192)),
        ("photo.jpeg", "JPEG", (1000, 300), "jpg", (256, 77)),
        ("small.jpg", "JPEG", (100, 50), "jpg", (100, 50)),  # never enlarged
        ("lying.jpg", "PNG", (300, 600), "png", (128, 256)),  # named by its real format
    ],
)
async def test_upload_probes_images_and_writes_thumbnail(
    library: Path,
    tmp_path: Path,
    name: str,
    pillow_format: str,
    size: tuple[int, int],
    expected_format: str,
    thumb_size: tuple[int, int],
) -> None:
    src = tmp_path / name
    Image.new("RGB", size, "green").save(src, pillow_format)
    storage = LocalStorage(library)

    stored = await storage.upload(request_for(src, ResourceType.IMAGE), lambda _n: None)

    assert (stored.format, stored.width, stored.height) == (expected_format, *size)
    assert stored.url and stored.url.endswith(f".{expected_format}")
    assert stored.thumbnail == str(library / "thumbs" / f"{stored.checksum}.png")
    with Image.open(stored.thumbnail) as thumb:
        assert thumb.size == thumb_size


async def test_undecodable_image_is_stored_without_size(library: Path, tmp_path: Path) -> None:
    src = write_random(tmp_path / "broken.png", 5000)
    stored = await LocalStorage(library).upload(
        request_for(src, ResourceType.IMAGE), lambda _n: None
    )
    assert (stored.format, stored.width, stored.height, stored.thumbnail) == (
        "png",
        None,
        None,
        None,
    )
    assert not (library / "thumbs").exists() or list((library / "thumbs").iterdir()) == []


async def test_checksum_mismatch_fails_and_leaves_nothing(library: Path, tmp_path: Path) -> None:
    storage = LocalStorage(library)
    src = write_random(tmp_path / "moving.bin", 2 * MIB)
    request = request_for(src, checksum=hashlib.sha256(b"what it used to be").hexdigest())

    with pytest.raises(PermanentError, match="changed while it was uploading"):
        await storage.upload(request, lambda _n: None)

    assert leftovers(storage) == []


async def test_cancel_mid_copy_stops_promptly_and_leaves_nothing(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(library)
    src = write_random(tmp_path / "big.bin", 32 * MIB)
    # Hold the copy at its second chunk until the upload has told the thread to stop, so the
    # test proves the copy stops at a chunk boundary instead of racing a fast disk.
    flags: list[threading.Event] = []

    def watched_flag() -> threading.Event:
        flags.append(threading.Event())
        return flags[-1]

    writes = 0
    real_write = local_storage._write_all

    def held_write(fd: int, data: memoryview) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:
            flags[0].wait(TIMEOUT)
        real_write(fd, data)

    monkeypatch.setattr(local_storage, "_new_cancel_flag", watched_flag)
    monkeypatch.setattr(local_storage, "_write_all", held_write)
    first_progress = asyncio.Event()
    seen: list[int] = []

    def progress(total: int) -> None:
        seen.append(total)
        first_progress.set()

    task = asyncio.create_task(storage.upload(request_for(src), progress))
    await asyncio.wait_for(first_progress.wait(), TIMEOUT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, TIMEOUT)

    # Stopped at the next chunk boundary (1 if the cancel beat the second read), not 32 MiB on.
    assert writes in (1, 2)
    assert seen == [MIB]  # no progress reported after the cancellation
    assert leftovers(storage) == []


async def test_disk_full_is_permanent_and_leaves_no_partial_object(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(library)
    src = write_random(tmp_path / "big.bin", 3 * MIB)
    calls = 0
    real_write = local_storage._write_all

    def fills_up(fd: int, data: memoryview) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(fd, data)

    monkeypatch.setattr(local_storage, "_write_all", fills_up)

    with pytest.raises(PermanentError, match=r"library disk is full .*objects.*free some space"):
        await storage.upload(request_for(src), lambda _n: None)

    assert leftovers(storage) == []


async def test_unwritable_library_is_a_clear_error(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(fd: int, data: memoryview) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(local_storage, "_write_all", denied)
    storage = LocalStorage(library)
    src = write_random(tmp_path / "a.bin", 10)
    with pytest.raises(PermanentError, match="may not write to the library folder"):
        await storage.upload(request_for(src), lambda _n: None)
    assert leftovers(storage) == []


async def test_missing_source_is_a_clear_error(library: Path, tmp_path: Path) -> None:
    src = write_random(tmp_path / "gone.bin", 10)
    request = request_for(src)
    src.unlink()
    with pytest.raises(PermanentError, match=r"gone\.bin no longer exists"):
        await LocalStorage(library).upload(request, lambda _n: None)


async def test_delete_removes_object_and_thumbnail(library: Path, tmp_path: Path) -> None:
    storage = LocalStorage(library)
    src = tmp_path / "pic.png"
    Image.new("RGB", (300, 300), "white").save(src)
    stored = await storage.upload(request_for(src, ResourceType.IMAGE), lambda _n: None)
    assert stored.thumbnail is not None

    await storage.delete(stored)
    await storage.delete(stored)  # already gone counts as deleted

    assert leftovers(storage) == []
    assert not await asyncio.to_thread(Path(stored.thumbnail).exists)
    # A format read back from a hand-edited catalogue must never turn into a path.
    with pytest.raises(PermanentError, match="not a file format"):
        await storage.delete_object(stored.checksum or "", "../../etc")


async def test_list_assets_reports_stored_objects(library: Path, tmp_path: Path) -> None:
    storage = LocalStorage(library)
    raw = await storage.upload(request_for(write_random(tmp_path / "a.bin", 100)), lambda _n: None)
    video = await storage.upload(
        request_for(write_random(tmp_path / "b.mp4", 200), ResourceType.VIDEO), lambda _n: None
    )

    listed = {a.checksum: a async for a in storage.list_assets()}

    assert set(listed) == {raw.checksum, video.checksum}
    assert listed[video.checksum].resource_type is ResourceType.VIDEO
    assert listed[video.checksum].bytes == 200
    assert listed[raw.checksum].url == raw.url


# --- LocalCatalog ----------------------------------------------------------------------------------


async def test_fresh_catalog_is_wal_with_current_schema(
    catalog: LocalCatalog, library: Path
) -> None:
    await catalog.open()
    conn = sqlite3.connect(library / CATALOG_FILENAME)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


async def test_upsert_get_find_page_delete(catalog: LocalCatalog) -> None:
    stored = await catalog.upsert(asset("pics/cat", checksum="c1", folder="pics", tags=("x", "y")))

    assert stored.row_id is not None
    assert stored.tags == ("x", "y")
    assert stored.created_at is not None and stored.updated_at is not None
    assert await catalog.get("pics/cat") == stored
    assert await catalog.get("nope") is None
    assert await catalog.find_by_checksum("c1") == stored
    assert await catalog.find_by_checksum("c2") is None
    assert await catalog.count_by_checksum("c1") == 1
    page = await catalog.page()
    assert (page.assets, page.total) == ((stored,), 1)

    assert await catalog.delete("pics/cat") is True
    assert await catalog.delete("pics/cat") is False
    assert (await catalog.page()).total == 0


async def test_updated_at_strictly_increases_and_created_at_is_kept(catalog: LocalCatalog) -> None:
    first = await catalog.upsert(asset("a", bytes=1))
    second = await catalog.upsert(asset("a", bytes=2))
    third = await catalog.upsert(asset("a", bytes=3))

    assert first.updated_at and second.updated_at and third.updated_at
    assert first.updated_at < second.updated_at < third.updated_at
    assert first.created_at == second.created_at == third.created_at
    assert first.row_id == third.row_id and third.bytes == 3


async def test_page_is_newest_first_with_folder_filter_and_total(catalog: LocalCatalog) -> None:
    for i in range(5):
        await catalog.upsert(asset(f"id{i}", folder="even" if i % 2 == 0 else "odd"))

    page = await catalog.page(offset=1, limit=2)
    assert [a.public_id for a in page.assets] == ["id3", "id2"]
    assert page.total == 5
    evens = await catalog.page(folder="even")
    assert [a.public_id for a in evens.assets] == ["id4", "id2", "id0"]
    assert evens.total == 3
    assert (await catalog.page(folder="")).total == 0


async def test_upsert_many_in_one_transaction(catalog: LocalCatalog) -> None:
    await catalog.upsert(asset("seed-0", bytes=1))
    before = await catalog.get("seed-0")
    rows = [asset(f"seed-{i}", bytes=i) for i in range(2000)]

    assert await catalog.upsert_many(rows) == 2000

    page = await catalog.page(limit=1)
    assert page.total == 2000
    after = await catalog.get("seed-0")
    assert before and after and before.updated_at and after.updated_at
    assert after.updated_at > before.updated_at and after.created_at == before.created_at
    assert len(await catalog.changes_since(0, limit=5000)) == 2001


async def test_newer_schema_is_refused(newer_library: Path) -> None:
    catalog = LocalCatalog(newer_library)
    try:
        with pytest.raises(PermanentError, match=r"newer media-tui.*upgrade media-tui"):
            await catalog.get("x")
    finally:
        await catalog.aclose()


async def test_corrupt_file_is_a_permanent_error_naming_it(library: Path) -> None:
    await asyncio.to_thread(write_file, library / CATALOG_FILENAME, b"not sqlite\n" * 200)
    catalog = LocalCatalog(library)
    try:
        with pytest.raises(PermanentError, match=re.escape(str(library / CATALOG_FILENAME))):
            await catalog.page()
    finally:
        await catalog.aclose()


async def test_locked_database_is_transient(library: Path) -> None:
    catalog = await LocalCatalog(library, busy_timeout=0.1).open()
    holder = sqlite3.connect(library / CATALOG_FILENAME, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        with pytest.raises(TransientError, match="locked"):
            await catalog.upsert(asset("a"))
        holder.execute("ROLLBACK")
        assert (await catalog.upsert(asset("a"))).public_id == "a"
    finally:
        holder.close()
        await catalog.aclose()


async def test_closed_catalog_says_so(library: Path) -> None:
    catalog = LocalCatalog(library)
    await catalog.aclose()
    with pytest.raises(PermanentError, match="closed"):
        await catalog.get("a")


async def test_changes_since_and_pruning(library: Path) -> None:
    catalog = LocalCatalog(library, keep_changes=3)
    try:
        for i in range(6):
            await catalog.upsert(asset(f"a{i}"))
        assert [seq for seq, _ in await catalog.changes_since(0)] == [1, 2, 3, 4, 5, 6]
        assert await catalog.prune_changes() == 3
        assert [seq for seq, _ in await catalog.changes_since(3)] == [4, 5, 6]
        with pytest.raises(ChangesPruned):
            await catalog.changes_since(2)
        assets, seq = await catalog.snapshot()
        assert (len(assets), seq) == (6, 6)
    finally:
        await catalog.aclose()


# --- LocalChangeFeed -----------------------------------------------------------------------------


async def test_feed_starts_live_with_resync_then_streams_changes(
    catalog: LocalCatalog, feed: LocalChangeFeed
) -> None:
    existing = await catalog.upsert(asset("old"))
    assert feed.state is ConnectionState.CONNECTING
    events, resync = await start(feed)
    assert resync.assets == (existing,)

    added = await catalog.upsert(asset("new", tags=("t",)))
    assert await next_event(events) == RemoteUpsert(added)
    changed = await catalog.upsert(asset("new", bytes=7))
    assert await next_event(events) == RemoteUpsert(changed)
    await catalog.delete("new")
    deleted = await next_event(events)
    assert isinstance(deleted, RemoteDelete)
    assert (deleted.public_id, deleted.row_id) == ("new", added.row_id)
    assert deleted.committed_at is not None


async def test_feed_sees_own_writes_without_polling(catalog: LocalCatalog) -> None:
    # With a one-hour poll interval only the catalogue's commit notification can be that fast.
    feed = LocalChangeFeed(catalog, poll_interval=3600)
    try:
        events, _ = await start(feed)
        stored = await catalog.upsert(asset("mine"))
        assert await next_event(events) == RemoteUpsert(stored)
    finally:
        await feed.aclose()


async def test_feed_sees_another_process_write(feed: LocalChangeFeed, library: Path) -> None:
    events, _ = await start(feed)
    for action in ("upsert", "delete"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(WRITER), str(library), "from/elsewhere", action
        )
        event = await first_event(events, lambda e: isinstance(e, RemoteUpsert | RemoteDelete))
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        if action == "upsert":
            assert isinstance(event, RemoteUpsert)
            assert (event.asset.public_id, event.asset.folder) == ("from/elsewhere", "elsewhere")
        else:
            assert isinstance(event, RemoteDelete) and event.public_id == "from/elsewhere"


async def test_feed_sees_hand_edits_made_with_sqlite3(
    catalog: LocalCatalog, feed: LocalChangeFeed, library: Path
) -> None:
    db = library / CATALOG_FILENAME
    before = await catalog.upsert(asset("edited", tags=("old",)))
    events, _ = await start(feed)

    await asyncio.to_thread(
        run_sql, db, "UPDATE assets SET tags = '[\"new\"]' WHERE public_id = 'edited'"
    )
    event = await next_event(events)
    assert isinstance(event, RemoteUpsert)
    assert event.asset.tags == ("new",)
    # The edit did not touch updated_at; the catalogue moved it on so the version still wins.
    assert event.asset.updated_at and before.updated_at
    assert event.asset.updated_at > before.updated_at

    await asyncio.to_thread(run_sql, db, "INSERT INTO assets (public_id) VALUES ('typed-in')")
    event = await next_event(events)
    assert isinstance(event, RemoteUpsert) and event.asset.public_id == "typed-in"
    assert event.asset.created_at is not None

    await asyncio.to_thread(run_sql, db, "DELETE FROM assets WHERE public_id = 'edited'")
    event = await next_event(events)
    assert isinstance(event, RemoteDelete) and event.row_id == before.row_id


async def test_feed_resyncs_after_falling_behind_the_pruned_log(library: Path) -> None:
    catalog = LocalCatalog(library, keep_changes=5)
    feed = LocalChangeFeed(catalog)
    try:
        events, _ = await start(feed)
        # The feed reads only when pulled, so these all land before it looks again.
        for i in range(20):
            await catalog.upsert(asset(f"a{i}"))
        await catalog.prune_changes()

        resync = await next_event(events)
        assert isinstance(resync, Resync)
        assert {a.public_id for a in resync.assets} == {f"a{i}" for i in range(20)}

        later = await catalog.upsert(asset("later"))
        assert await next_event(events) == RemoteUpsert(later)
    finally:
        await feed.aclose()
        await catalog.aclose()


async def test_feed_sends_a_long_backlog_as_one_resync(
    catalog: LocalCatalog, feed: LocalChangeFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_feed, "RESYNC_THRESHOLD", 10)
    events, _ = await start(feed)
    await catalog.upsert_many(asset(f"bulk{i}") for i in range(50))
    resync = await next_event(events)
    assert isinstance(resync, Resync) and len(resync.assets) == 50


async def test_feed_aclose_ends_the_stream(feed: LocalChangeFeed) -> None:
    seen: list[ChangeEvent] = []
    resynced = asyncio.Event()

    async def consume() -> None:
        async for event in feed.events():
            seen.append(event)
            if isinstance(event, Resync):
                resynced.set()

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(resynced.wait(), TIMEOUT)
    await feed.aclose()
    await asyncio.wait_for(consumer, TIMEOUT)
    assert feed.state is ConnectionState.OFFLINE
    assert len(seen) == 2


async def test_feed_on_a_newer_schema_goes_offline_with_the_reason(newer_library: Path) -> None:
    catalog = LocalCatalog(newer_library)
    feed = LocalChangeFeed(catalog)
    try:
        event = await next_event(feed.events())
        assert isinstance(event, ConnectionChanged)
        assert event.state is ConnectionState.OFFLINE
        assert event.detail and "upgrade media-tui" in event.detail
    finally:
        await feed.aclose()
        await catalog.aclose()
