"""The real upload pipeline (queue → CloudinaryStorage → catalogue → store) against the emulator."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx

from media_tui.backends.cloudinary import CloudinaryStorage
from media_tui.backends.local import LocalCatalog
from media_tui.config import CloudinarySettings, Secret, parse_cloudinary_url
from media_tui.model import JobState, ResourceType
from media_tui.paths import expand
from media_tui.store import ChangeSet, MediaStore
from media_tui.uploads import RetryPolicy, UploadQueue
from tests.emulators.cloudinary import CloudinaryEmulator
from tests.integration.media_factory import make_png, make_video

MiB = 1024 * 1024


async def no_sleep(_: float) -> None:
    return None


def settings_for(emulator: CloudinaryEmulator, *, secret: str | None = None) -> CloudinarySettings:
    parsed = parse_cloudinary_url(emulator.cloudinary_url)
    return (
        parsed
        if secret is None
        else CloudinarySettings(
            parsed.cloud_name, parsed.api_key, Secret(secret), parsed.upload_prefix
        )
    )


class Pipeline:
    def __init__(self, tmp_path: Path, storage: CloudinaryStorage, *, attempts: int = 8) -> None:
        self.store = MediaStore()
        self.storage = storage
        self.catalog = LocalCatalog(tmp_path / "lib")
        self.queue = UploadQueue(
            self.store,
            storage,
            self.catalog,
            concurrency=4,
            retry=RetryPolicy(max_attempts=attempts, base_delay=0.01),
            sleep=no_sleep,
        )
        self.progress: dict[str, list[int]] = {}
        self.store.subscribe(self._record)

    def _record(self, changes: ChangeSet) -> None:
        for job_id in changes.jobs:
            job = self.store.jobs.get(job_id)
            if job is not None:
                self.progress.setdefault(job.path.name, []).append(job.bytes_sent)

    async def run(self, paths: list[Path]) -> None:
        await self.queue.start()
        try:
            result = expand([str(p) for p in paths])
            assert not result.rejected, result.rejected
            await self.queue.enqueue(result.files)
            await asyncio.wait_for(self.queue.wait_idle(), 120)
        finally:
            await self.queue.aclose()
            await self.storage.aclose()
            await self.catalog.aclose()


def stored_bytes(emulator: CloudinaryEmulator, resource_type: str, public_id: str) -> bytes:
    return emulator.assets[(resource_type, "upload", public_id)].data


async def test_small_and_chunked_files_arrive_byte_identical(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    small = make_png(tmp_path / "small.png", seed=1, size=(64, 48))
    big = make_video(tmp_path / "big.mp4", size=12 * MiB + 12345, seed=3)
    storage = CloudinaryStorage(
        settings_for(cloudinary_emulator), chunk_threshold=6 * MiB, chunk_size=5 * MiB
    )
    pipeline = Pipeline(tmp_path, storage)
    await pipeline.run([small, big])

    assert stored_bytes(cloudinary_emulator, "image", "small") == small.read_bytes()
    assert stored_bytes(cloudinary_emulator, "video", "big") == big.read_bytes()
    assert cloudinary_emulator.chunk_count >= 3
    jobs = {job.path.name: job for job in pipeline.store.jobs.values()}
    assert {job.state for job in jobs.values()} == {JobState.DONE}
    for name, path in (("small.png", small), ("big.mp4", big)):
        seen = pipeline.progress[name]
        assert seen == sorted(seen), f"progress of {name} went backwards"
        assert seen[-1] == path.stat().st_size
    assert len(pipeline.progress["big.mp4"]) >= 4  # live progress across the chunks, not one jump
    image = pipeline.store.assets["small"]
    assert (image.width, image.height, image.format) == (64, 48, "png")
    assert image.url and image.url.startswith(cloudinary_emulator.url)
    assert image.checksum == hashlib.sha256(small.read_bytes()).hexdigest()
    assert pipeline.store.assets["big"].resource_type is ResourceType.VIDEO


async def test_transient_failures_and_drops_still_deliver_every_file_once(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    files = [make_png(tmp_path / f"f{i:02d}.png", seed=i) for i in range(24)]
    cloudinary_emulator.faults.seed(42)
    cloudinary_emulator.faults.failure_rate = 0.3
    cloudinary_emulator.faults.failure_status = 503
    cloudinary_emulator.faults.drop_rate = 0.1
    storage = CloudinaryStorage(settings_for(cloudinary_emulator), sleep=no_sleep)
    # Which request draws which fault depends on thread timing, so a file can meet a run of
    # faults: each attempt fails with p = 0.1 + 0.9 * 0.3 = 0.37. With 8 attempts, 24 files
    # failed about one run in 120 (0.37^8 * 24); with 24 attempts it is about 1e-9.
    pipeline = Pipeline(tmp_path, storage, attempts=24)
    await pipeline.run(files)

    assert cloudinary_emulator.faults.injected > 0
    failed = [
        (job.path.name, job.error)
        for job in pipeline.store.jobs.values()
        if job.state is not JobState.DONE
    ]
    assert not failed
    uploaded = {key[2] for key in cloudinary_emulator.assets}
    assert uploaded == {f"f{i:02d}" for i in range(24)}
    assert pipeline.store.public_ids() == uploaded


async def test_a_wrong_secret_fails_fast_with_a_clear_message(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    files = [make_png(tmp_path / f"w{i}.png", seed=i) for i in range(3)]
    storage = CloudinaryStorage(settings_for(cloudinary_emulator, secret="not-the-secret"))
    pipeline = Pipeline(tmp_path, storage)
    await pipeline.run(files)

    jobs = list(pipeline.store.jobs.values())
    assert {job.state for job in jobs} == {JobState.FAILED}
    assert all("check the API key and secret" in (job.error or "") for job in jobs)
    assert all("not-the-secret" not in (job.error or "") for job in jobs)
    assert cloudinary_emulator.upload_count == 0 and cloudinary_emulator.assets == {}
    uploads = [r for r in cloudinary_emulator.requests if r.path.endswith("/upload")]
    assert len(uploads) == 3, "a 401 is not retried"
    assert pipeline.store.public_ids() == set()  # nothing left half-shown


class FlakyTransport(httpx.AsyncBaseTransport):
    """Records each upload's Content-Range and fails the n-th request before it is sent."""

    def __init__(self, fail_on: set[int]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.fail_on = fail_on
        self.ranges: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.ranges.append(request.headers.get("Content-Range", ""))
        if len(self.ranges) in self.fail_on:
            raise httpx.ConnectError("injected")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_failed_chunk_is_resent_alone(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    big = make_video(tmp_path / "resume.mp4", size=11 * MiB, seed=9)
    transport = FlakyTransport(fail_on={2})
    storage = CloudinaryStorage(
        settings_for(cloudinary_emulator),
        chunk_threshold=6 * MiB,
        chunk_size=5 * MiB,
        transport=transport,
        sleep=no_sleep,
    )
    pipeline = Pipeline(tmp_path, storage)
    await pipeline.run([big])
    total = 11 * MiB
    ranges = [
        f"bytes 0-{5 * MiB - 1}/{total}",
        f"bytes {5 * MiB}-{10 * MiB - 1}/{total}",
        f"bytes {10 * MiB}-{total - 1}/{total}",
    ]
    # The second chunk failed once and was sent again alone: the file did not restart at byte 0.
    assert transport.ranges == [ranges[0], ranges[1], ranges[1], ranges[2]]
    assert stored_bytes(cloudinary_emulator, "video", "resume") == big.read_bytes()


def test_cli_upload_to_the_emulator(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        make_png(src / f"cli-{i}.png", seed=50 + i)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDINARY_", "SUPABASE_", "MEDIA_TUI_"))
    }
    env |= {"CLOUDINARY_URL": cloudinary_emulator.cloudinary_url, "MEDIA_TUI_CONFIG": os.devnull}
    library = tmp_path / "lib"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "media_tui",
            "upload",
            str(src),
            "--json",
            "--library",
            str(library),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"uploaded"') == 3
    assert {key[2] for key in cloudinary_emulator.assets} == {"cli-0", "cli-1", "cli-2"}
    assert cloudinary_emulator.api_secret not in result.stdout + result.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "media_tui", "ls", "--json", "--library", str(library)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listing.stdout.count(cloudinary_emulator.url) >= 3


async def test_delete_and_list_through_the_admin_api(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    files = [make_png(tmp_path / f"l{i}.png", seed=70 + i) for i in range(3)]
    pipeline = Pipeline(tmp_path, CloudinaryStorage(settings_for(cloudinary_emulator)))
    await pipeline.run(files)
    storage = CloudinaryStorage(settings_for(cloudinary_emulator))
    try:
        listed = [asset async for asset in storage.list_assets()]
        assert {a.public_id for a in listed} == {"l0", "l1", "l2"}
        assert all(a.checksum for a in listed), "the checksum travels in the asset's context"
        await storage.delete(pipeline.store.assets["l1"])
        await storage.delete(pipeline.store.assets["l1"])  # already gone counts as deleted
        assert {key[2] for key in cloudinary_emulator.assets} == {"l0", "l2"}
    finally:
        await storage.aclose()


def test_thumbnail_urls_are_derived() -> None:
    from media_tui.backends.cloudinary import thumbnail_url

    base = "https://res.cloudinary.com/demo/image/upload/v17/shots/a.jpg"
    assert (
        thumbnail_url(base, ResourceType.IMAGE)
        == "https://res.cloudinary.com/demo/image/upload/c_limit,w_256,h_256/v17/shots/a.jpg"
    )
    video = "https://res.cloudinary.com/demo/video/upload/v17/clip.mp4"
    assert (
        thumbnail_url(video, ResourceType.VIDEO)
        == "https://res.cloudinary.com/demo/video/upload/so_auto,c_limit,w_256,h_256/v17/clip.jpg"
    )
    assert thumbnail_url("https://x/raw/upload/v1/a.pdf", ResourceType.RAW) is None
