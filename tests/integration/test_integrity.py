"""What is stored is what was hashed, and names are never overwritten: against the emulator.

A file rewritten, grown or cut while it streams to Cloudinary must fail with one sentence and
leave neither an asset nor a row; a file that changed while it waited in the queue is sent as it
is when its turn comes, with the row describing exactly those bytes. Bytes under a name that no
media-tui claimed (the console, another tool) are never replaced: the upload takes the name's
content-hash variant. Claims: granted once, renewed by their owner, taken over only after expiry.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from media_tui.backends.base import Catalog, ProgressCallback, UploadRequest
from media_tui.backends.cloudinary import MIN_CHUNK, CloudinaryStorage
from media_tui.backends.local import LocalCatalog, LocalStorage
from media_tui.backends.supabase_catalog import SupabaseCatalog
from media_tui.content import INLINE_LIMIT
from media_tui.model import JobState, MediaAsset, ResourceType
from media_tui.naming import disambiguated
from media_tui.paths import expand
from media_tui.store import MediaStore
from media_tui.uploads import UploadQueue
from tests.emulators.cloudinary import CloudinaryEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.media_factory import make_png, make_video
from tests.integration.test_cloudinary_pipeline import Pipeline, settings_for, stored_bytes
from tests.integration.test_supabase_pipeline import settings as supabase_settings

MiB = 1024 * 1024
LARGE = INLINE_LIMIT + MiB  # streamed from disk, not read whole


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MutatingStorage(CloudinaryStorage):
    """Cloudinary storage that lets the test change the file once `at` bytes have been sent."""

    def __init__(self, *args: object, at: int, mutate: Callable[[Path], None], **kw: object):
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.at = at
        self.mutate = mutate
        self.fired = threading.Event()

    async def upload(self, request: UploadRequest, progress: ProgressCallback) -> MediaAsset:
        def hooked(sent: int) -> None:
            progress(sent)
            if sent >= self.at and not self.fired.is_set():
                self.fired.set()
                self.mutate(request.path)

        return await super().upload(request, hooked)


def rewrite(path: Path) -> None:
    path.write_bytes(bytes(reversed(path.read_bytes())))


def grow(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"\x01" * MiB)


def cut(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - MiB)


@pytest.mark.parametrize("mutate", [rewrite, grow, cut], ids=["rewritten", "grown", "cut"])
@pytest.mark.parametrize("chunked", [False, True], ids=["one-request", "chunked"])
async def test_a_file_changed_while_it_streams_is_refused_and_stores_nothing(
    tmp_path: Path,
    cloudinary_emulator: CloudinaryEmulator,
    mutate: Callable[[Path], None],
    chunked: bool,
) -> None:
    source = tmp_path / "src" / "moving.mp4"
    source.parent.mkdir()
    make_video(source, size=LARGE + 2 * MIN_CHUNK)
    storage = MutatingStorage(
        settings_for(cloudinary_emulator),
        at=MIN_CHUNK + MiB,  # inside the second chunk when chunked
        mutate=mutate,
        chunk_threshold=MIN_CHUNK if chunked else 100 * MiB,
        chunk_size=MIN_CHUNK,
    )
    pipeline = Pipeline(tmp_path, storage, attempts=1)
    await pipeline.run([source])

    assert storage.fired.is_set()
    (job,) = pipeline.store.jobs.values()
    assert job.state is JobState.FAILED
    assert job.error is not None and "changed while it was uploading" in job.error
    assert not cloudinary_emulator.assets  # no asset, under any name
    catalog = LocalCatalog(tmp_path / "lib")
    try:
        assert (await catalog.page()).total == 0
        assert await catalog.live_claims() == []  # the failed job let go of its name
    finally:
        await catalog.aclose()


@pytest.mark.parametrize("size", [64 * 1024, LARGE], ids=["read-whole", "streamed"])
async def test_a_file_that_grew_while_queued_is_sent_as_it_is_now(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator, size: int
) -> None:
    source = make_video(tmp_path / "growing.mp4", size=size)
    pipeline = Pipeline(tmp_path, CloudinaryStorage(settings_for(cloudinary_emulator)))
    await pipeline.queue.start()
    try:
        pipeline.queue.pause()
        result = expand([str(source)])
        await pipeline.queue.enqueue(result.files)
        grow(source)  # after it was queued (and its size taken), before its turn
        pipeline.queue.resume()
        await asyncio.wait_for(pipeline.queue.wait_idle(), 60)
    finally:
        await pipeline.queue.aclose()
        await pipeline.storage.aclose()
        await pipeline.catalog.aclose()

    now = source.read_bytes()
    (job,) = pipeline.store.jobs.values()
    assert job.state is JobState.DONE, job.error
    row = pipeline.store.assets[job.public_id]
    assert stored_bytes(cloudinary_emulator, "video", job.public_id) == now
    assert (row.bytes, row.checksum) == (len(now), sha256(now))


async def test_a_local_library_stores_a_grown_file_as_it_is_now(tmp_path: Path) -> None:
    source = make_png(tmp_path / "growing.png", seed=3, padding=4096)
    store, library = MediaStore(), tmp_path / "lib"
    catalog = LocalCatalog(library)
    queue = UploadQueue(store, LocalStorage(library), catalog)
    await queue.start()
    try:
        queue.pause()
        await queue.enqueue(expand([str(source)]).files)
        grow(source)
        queue.resume()
        await asyncio.wait_for(queue.wait_idle(), 60)
        (job,) = store.jobs.values()
        row = await catalog.get(job.public_id)
    finally:
        await queue.aclose()
        await catalog.aclose()
    now = source.read_bytes()
    assert row is not None and (row.bytes, row.checksum) == (len(now), sha256(now))
    assert row.url is not None
    stored = await asyncio.to_thread(Path(row.url.removeprefix("file://")).read_bytes)
    assert stored == now


async def test_bytes_nobody_claimed_are_never_overwritten(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    """The console (or another tool) put other bytes under the name, with no catalogue row."""
    console = make_png(tmp_path / "console-shot.png", seed=1)
    other_tool = CloudinaryStorage(settings_for(cloudinary_emulator))
    try:
        data = console.read_bytes()
        request = UploadRequest(
            console, "shot", ResourceType.IMAGE, len(data), sha256(data), content=data
        )
        await other_tool.upload(request, lambda _sent: None)
    finally:
        await other_tool.aclose()

    (tmp_path / "src").mkdir()
    ours = make_png(tmp_path / "src" / "shot.png", seed=2)
    pipeline = Pipeline(tmp_path, CloudinaryStorage(settings_for(cloudinary_emulator)))
    await pipeline.run([ours])

    (job,) = pipeline.store.jobs.values()
    assert job.state is JobState.DONE, job.error
    assert job.public_id == disambiguated("shot", sha256(ours.read_bytes()))
    assert stored_bytes(cloudinary_emulator, "image", "shot") == console.read_bytes()
    assert stored_bytes(cloudinary_emulator, "image", job.public_id) == ours.read_bytes()


async def test_a_retried_upload_that_had_landed_counts_as_stored(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    """overwrite=0 answers `existing` with our own etag when an earlier attempt got through."""
    source = make_png(tmp_path / "again.png", seed=4)
    data = source.read_bytes()
    storage = CloudinaryStorage(settings_for(cloudinary_emulator))
    request = UploadRequest(
        source,
        "again",
        ResourceType.IMAGE,
        len(data),
        sha256(data),
        md5=hashlib.md5(data).hexdigest(),
        content=data,
    )
    try:
        first = await storage.upload(request, lambda _sent: None)
        second = await storage.upload(request, lambda _sent: None)
    finally:
        await storage.aclose()
    assert (second.public_id, second.version) == (first.public_id, first.version)


# ------------------------------------------------------------------------- claims, both stores


async def claim_semantics(catalog: Catalog) -> None:
    first = await catalog.claim_name("team/shot", "a" * 64, "job-1", 60)
    assert first.owner == "job-1"
    held = await catalog.claim_name("team/shot", "b" * 64, "job-2", 60)
    assert (held.owner, held.checksum) == ("job-1", "a" * 64)  # refused: the holder comes back
    renewed = await catalog.claim_name("team/shot", "a" * 64, "job-1", 120)
    assert renewed.owner == "job-1" and renewed.expires_at > first.expires_at
    assert [c.public_id for c in await catalog.live_claims()] == ["team/shot"]
    await catalog.release_name("team/shot", "job-2")  # not theirs: nothing happens
    assert len(await catalog.live_claims()) == 1
    await catalog.release_name("team/shot", "job-1")
    assert await catalog.live_claims() == []

    crashed = await catalog.claim_name("team/crash", "c" * 64, "dead-job", -1)  # already expired
    assert crashed.owner == "dead-job"
    adopted = await catalog.claim_name("team/crash", "d" * 64, "job-3", 60)
    assert (adopted.owner, adopted.checksum) == ("job-3", "d" * 64)


async def claim_race(catalogs: list[Catalog]) -> None:
    """Many callers at once, each with other bytes: exactly one is granted."""
    claims = await asyncio.gather(
        *(c.claim_name("race", f"{i:064x}", f"job-{i}", 60) for i, c in enumerate(catalogs))
    )
    winners = {c.owner for c in claims}
    assert len(winners) == 1
    assert sum(c.owner == f"job-{i}" for i, c in enumerate(claims)) == 1


async def test_local_claims(tmp_path: Path) -> None:
    catalogs = [LocalCatalog(tmp_path / "lib") for _ in range(6)]  # six connections, one file
    try:
        await claim_semantics(catalogs[0])
        await claim_race(list(catalogs))
    finally:
        for catalog in catalogs:
            await catalog.aclose()


async def test_supabase_claims(supabase_emulator: SupabaseEmulator) -> None:
    supabase_emulator.rest_latency = 0.01
    catalogs = [SupabaseCatalog(supabase_settings(supabase_emulator)) for _ in range(6)]
    try:
        await claim_semantics(catalogs[0])
        await claim_race(list(catalogs))
    finally:
        for catalog in catalogs:
            await catalog.aclose()
