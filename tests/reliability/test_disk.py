"""The local library on a bad day: a full disk (objects or catalogue) and a locked catalogue.

Each case ends the same way: a clear one-sentence error on the jobs it stopped, a catalogue that
passes SQLite's integrity check and names only objects that exist, no half-written object left
behind, and — once space is freed or the lock is gone — every file uploaded exactly once by
retrying or by running the upload again.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from media_tui.backends import local_db, local_storage
from media_tui.backends.local import LocalCatalog, LocalStorage
from media_tui.journal import Journal
from media_tui.model import JobState
from media_tui.paths import expand
from media_tui.store import MediaStore
from media_tui.uploads import RetryPolicy, UploadQueue
from tests.integration.media_factory import make_png

FILES = 8


async def no_sleep(_: float) -> None:
    return None


def make_files(folder: Path) -> list[Path]:
    folder.mkdir()
    return [make_png(folder / f"f{i}.png", seed=i, padding=200_000) for i in range(FILES)]


@asynccontextmanager
async def library_queue(
    library: Path, *, busy_timeout: float = 5.0, attempts: int = 3
) -> AsyncIterator[tuple[UploadQueue, MediaStore, LocalCatalog]]:
    """A queue on the library, with its journal, as `media-tui upload` builds it."""
    storage = LocalStorage(library)
    catalog = await LocalCatalog(library, busy_timeout=busy_timeout).open()
    store = MediaStore()
    queue = UploadQueue(
        store,
        storage,
        catalog,
        Journal(library / "journal"),
        concurrency=2,
        retry=RetryPolicy(max_attempts=attempts, base_delay=0.01),
        sleep=no_sleep,
    )
    await queue.start()
    try:
        yield queue, store, catalog
    finally:
        await queue.aclose()
        await catalog.aclose()


async def upload_all(queue: UploadQueue, files: list[Path], tags: tuple[str, ...] = ()) -> None:
    await queue.enqueue(expand([str(f) for f in files]).files, tags=tags)
    await asyncio.wait_for(queue.wait_idle(), 60)


def assert_library_consistent(library: Path) -> set[str]:
    """Integrity check passes; every row's object exists; no temp file is left. Returns ids."""
    conn = sqlite3.connect(library / "catalog.sqlite3")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT public_id, checksum, format FROM assets").fetchall()
    finally:
        conn.close()
    objects = library / "objects"
    for public_id, checksum, fmt in rows:
        assert (objects / checksum[:2] / f"{checksum}.{fmt}").is_file(), public_id
    leftovers = [p for p in objects.rglob("*") if p.is_file() and p.suffix == ".tmp"]
    assert leftovers == [], "a half-written object was left behind"
    return {public_id for public_id, _, _ in rows}


class FullDisk:
    """`_write_all` on a disk with `room` bytes left: past it, ENOSPC, as the kernel says it."""

    def __init__(self, room: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.room = room
        self.refused = 0
        self._lock = threading.Lock()
        original: Callable[[int, memoryview], None] = local_storage._write_all

        def write_all(fd: int, data: memoryview) -> None:
            with self._lock:
                fits = min(len(data), max(0, self.room))
                self.room -= fits
            if fits:
                original(fd, data[:fits])
            if fits < len(data):
                self.refused += 1
                raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(local_storage, "_write_all", write_all)


async def test_a_full_disk_fails_the_files_that_do_not_fit_and_resume_finishes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 files of ~200 KB, room for about 3: the rest fail with "disk is full"; after freeing
    space, retrying the failed ones uploads each exactly once."""
    files = make_files(tmp_path / "in")
    library = tmp_path / "lib"
    disk = FullDisk(room=650_000, monkeypatch=monkeypatch)
    async with library_queue(library) as (queue, store, _):
        await upload_all(queue, files)
        states = [job.state for job in store.jobs.values()]
        failed = [job for job in store.jobs.values() if job.state is JobState.FAILED]
        assert 0 < len(failed) < FILES and disk.refused >= len(failed)
        assert states.count(JobState.DONE) == FILES - len(failed)
        for job in failed:
            assert (
                job.error and "library disk is full" in job.error and "free some space" in job.error
            )
            assert "Traceback" not in job.error
        assert assert_library_consistent(library) == store.public_ids() - {
            job.public_id for job in failed
        }

        disk.room = 10**9  # space freed
        await queue.retry_failed()
        await asyncio.wait_for(queue.wait_idle(), 60)
        assert {job.state for job in store.jobs.values()} == {JobState.DONE}
    assert assert_library_consistent(library) == {f"f{i}" for i in range(FILES)}


async def test_a_full_disk_under_the_catalogue_is_a_clear_error_and_a_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own SQLITE_FULL (a page limit on the catalogue file): the uploads that cannot be
    catalogued fail with "disk … is full", the file stays intact, and a second run (a new
    process, as after the operator freed space) catalogues all 8, none twice."""
    files = make_files(tmp_path / "in")
    library = tmp_path / "lib"
    original = local_db.open_connection
    limit: dict[str, int | None] = {"extra_pages": 1}
    # Long tags make each row (and its change-log entry) fill a good part of a page.
    tags = tuple(f"{i:02d}-" + "x" * 200 for i in range(8))

    def capped(
        db_path: Path, busy_timeout: float = local_db.DEFAULT_BUSY_TIMEOUT
    ) -> sqlite3.Connection:
        conn = original(db_path, busy_timeout)
        if limit["extra_pages"] is not None:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages + limit['extra_pages']}")
        return conn

    # The schema is created first, with room; then the file may grow by one page only.
    await (await LocalCatalog(library).open()).aclose()
    monkeypatch.setattr(local_db, "open_connection", capped)
    async with library_queue(library) as (queue, store, _):
        await upload_all(queue, files, tags)
        failed = [job for job in store.jobs.values() if job.state is JobState.FAILED]
        assert failed, "the page limit was never reached"
        for job in failed:
            assert job.error and "catalogue" in job.error and "is full" in job.error
    before = assert_library_consistent(library)
    assert len(before) == FILES - len(failed)

    limit["extra_pages"] = None
    async with library_queue(library) as (queue, store, _):
        await upload_all(queue, files, tags)
        assert {job.state for job in store.jobs.values()} <= {JobState.DONE, JobState.DUPLICATE}
    assert assert_library_consistent(library) == {f"f{i}" for i in range(FILES)}


async def test_a_locked_catalogue_is_waited_out_or_reported_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """Another program holds the catalogue's write lock. While it does, uploads fail (after
    their retries) with "locked by another program"; once it lets go, retrying delivers all 8."""
    files = make_files(tmp_path / "in")
    library = tmp_path / "lib"
    async with library_queue(library, busy_timeout=0.05, attempts=2) as (queue, store, _):
        holder = sqlite3.connect(library / "catalog.sqlite3", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            await upload_all(queue, files)
            jobs = list(store.jobs.values())
            assert {job.state for job in jobs} == {JobState.FAILED}
            for job in jobs:
                assert job.error and "locked by another program" in job.error
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await queue.retry_failed()
        await asyncio.wait_for(queue.wait_idle(), 60)
        assert {job.state for job in store.jobs.values()} == {JobState.DONE}
    assert assert_library_consistent(library) == {f"f{i}" for i in range(FILES)}
