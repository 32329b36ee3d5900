"""Deterministic scenes of the real app, for snapshot tests and `screenshots/make.py`.

Every scene runs the real `MediaApp` with in-memory backends whose catalogue is fixed, a frozen
clock, pinned half-block thumbnails made from generated images, and upload jobs placed straight
into the store, so the same scene renders the same picture on every machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw
from textual.pilot import Pilot

from media_tui.backends.factory import Backends
from media_tui.config import Settings
from media_tui.model import (
    ChangeEvent,
    ConnectionChanged,
    ConnectionState,
    JobState,
    MediaAsset,
    ResourceType,
    Resync,
    UploadJob,
)
from media_tui.ui.app import MediaApp
from media_tui.ui.sync_card import SyncStatus
from tests.fakes import FakeCatalog, FakeStorage

FROZEN = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SIZE = (120, 40)
PALETTE = [
    ((231, 111, 81), (38, 70, 83)),
    ((42, 157, 143), (233, 196, 106)),
    ((244, 162, 97), (38, 70, 83)),
    ((69, 123, 157), (241, 250, 238)),
    ((230, 57, 70), (29, 53, 87)),
    ((106, 76, 147), (255, 202, 58)),
    ((25, 130, 196), (138, 201, 38)),
    ((255, 89, 94), (255, 202, 58)),
]
NAMES = [
    "harbour-dawn.jpg",
    "market-stall.jpg",
    "team-offsite.png",
    "product-hero.png",
    "launch-teaser.mp4",
    "city-night.jpg",
    "press-kit.pdf",
    "portrait-07.jpg",
    "aerial-coast.jpg",
    "interview-cut.mp4",
]


def make_picture(path: Path, index: int) -> Path:
    """A small, distinct, deterministic picture: a diagonal split with a sun."""
    top, bottom = PALETTE[index % len(PALETTE)]
    image = Image.new("RGB", (128, 96), bottom)
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, 0), (128, 0), (0, 60 + 4 * index % 30)], fill=top)
    draw.ellipse((80 - 3 * index, 14, 108 - 3 * index, 42), fill=(250, 240, 200))
    image.save(path, "PNG")
    return path


def library_assets(thumb_dir: Path) -> list[MediaAsset]:
    thumb_dir.mkdir(parents=True, exist_ok=True)
    assets = []
    for i, name in enumerate(NAMES):
        stem, ext = name.rsplit(".", 1)
        kind = {"mp4": ResourceType.VIDEO, "pdf": ResourceType.RAW}.get(ext, ResourceType.IMAGE)
        thumb = (
            str(make_picture(thumb_dir / f"{stem}.png", i)) if kind is ResourceType.IMAGE else None
        )
        created = FROZEN - timedelta(hours=i * 7)
        assets.append(
            MediaAsset(
                public_id=f"shoots/{stem}",
                resource_type=kind,
                format=ext,
                bytes=180_000 * (i + 1) + 4_321 * i,
                width=1920 if kind is ResourceType.IMAGE else None,
                height=1280 if kind is ResourceType.IMAGE else None,
                duration=42.5 if kind is ResourceType.VIDEO else None,
                url=f"https://res.example.com/demo/{stem}.{ext}",
                folder="shoots",
                tags=("client-x", "2026") if i % 2 else ("2026",),
                checksum=f"{i:02x}" * 32,
                original_filename=name,
                version=1_700_000_000 + i,
                thumbnail=thumb,
                row_id=i + 1,
                created_at=created,
                updated_at=created,
            )
        )
    return assets


class StaticFeed:
    """A change feed that is live at once with a fixed snapshot, then quiet."""

    name = "static"

    def __init__(self, assets: list[MediaAsset]) -> None:
        self.assets = assets
        self._closed = asyncio.Event()

    @property
    def state(self) -> ConnectionState:
        return ConnectionState.LIVE

    async def events(self) -> AsyncIterator[ChangeEvent]:
        yield ConnectionChanged(ConnectionState.LIVE)
        yield Resync(tuple(self.assets), FROZEN)
        await self._closed.wait()

    @property
    def backlog(self) -> int:
        return 0

    def request_resync(self) -> None:
        """Nothing to re-read: the scene's catalogue never changes."""

    async def aclose(self) -> None:
        self._closed.set()


@dataclass
class SceneBackends(Backends):
    assets: list[MediaAsset] | None = None

    def change_feed(self) -> StaticFeed:  # type: ignore[override]
        return StaticFeed(self.assets or [])


def scene_app(workdir: Path, *, with_assets: bool) -> MediaApp:
    assets = library_assets(workdir / "thumbs") if with_assets else []
    settings = Settings(library=workdir / "library", storage="local", catalog="local")

    def factory(settings: Settings) -> Backends:
        return SceneBackends(settings, FakeStorage(), FakeCatalog(), assets)  # type: ignore[arg-type]

    return MediaApp(settings, backends_factory=factory, now=lambda: FROZEN, thumbnails=True)


def in_flight_jobs(workdir: Path) -> list[UploadJob]:
    base = workdir / "incoming"
    return [
        UploadJob(
            job_id="job-queued",
            path=base / "wedding-reel-final.mov",
            public_id="shoots/wedding-reel-final",
            size=734_003_200,
            resource_type=ResourceType.VIDEO,
            state=JobState.QUEUED,
            queued_at=FROZEN,
        ),
        UploadJob(
            job_id="job-uploading",
            path=base / "studio-session-042.jpg",
            public_id="shoots/studio-session-042",
            size=24_117_248,
            bytes_sent=int(24_117_248 * 0.42),
            bytes_per_second=3_400_000.0,
            state=JobState.UPLOADING,
            queued_at=FROZEN,
            started_at=FROZEN,
        ),
        UploadJob(
            job_id="job-failed",
            path=base / "scan-0193.tif",
            public_id="shoots/scan-0193",
            size=98_566_144,
            bytes_sent=0,
            state=JobState.FAILED,
            error="Cloudinary refused the file (400: File size too large); shrink it below 100 MB.",
            queued_at=FROZEN,
            finished_at=FROZEN,
        ),
    ]


async def until(pilot: Pilot[object], condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition`, failing loudly (never a silently different picture) after 30 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"the scene never settled: waited 30 s for {what}")
        await pilot.pause(0.02)


async def settle(pilot: Pilot[object]) -> None:
    """Wait for startup, the snapshot, and every visible thumbnail, then let the screen repaint."""
    app = pilot.app
    assert isinstance(app, MediaApp)
    await asyncio.wait_for(app.ready.wait(), 30)
    await until(
        pilot,
        lambda: not app.thumbs._pending and app.store.connection is ConnectionState.LIVE,
        "the thumbnails decoded and the feed live",
    )
    # Store changes reach the screen on the app's 30 Hz tick; wait for it, or the picture
    # depends on whether the last change was painted alone or with the full repaint below.
    await until(pilot, lambda: not app._dirty, "the last store change painted")
    await pilot.pause()
    app.grid.refresh_entries(None)
    # One full repaint of everything last, so no widget's picture is a left-over partial update.
    for widget in app.screen.walk_children():
        widget.refresh()
    await pilot.pause()


async def place_jobs(pilot: Pilot[object], workdir: Path) -> None:
    app = pilot.app
    assert isinstance(app, MediaApp)
    # The library first, then the jobs: where the cursor ends up depends on whether the
    # snapshot was on screen before the optimistic tiles arrived, so the order is fixed.
    await settle(pilot)
    for job in in_flight_jobs(workdir):
        app.store.upload_queued(job)  # shows it optimistically, as the queue would
        app.store.job_updated(
            job.job_id,
            **{
                k: getattr(job, k)
                for k in ("state", "bytes_sent", "bytes_per_second", "error", "finished_at")
            },
        )
    await settle(pilot)


async def place_sync(pilot: Pilot[object], workdir: Path) -> None:
    """A "Sync now" part-way through, next to one upload in flight."""
    app = pilot.app
    assert isinstance(app, MediaApp)
    await settle(pilot)
    status = SyncStatus(prune=False, started_at=FROZEN, phase="reconciling", done=37, total=52)
    status.counts = {"added": 3, "updated": 1, "gone": 2}
    app.sync_status = status
    job = in_flight_jobs(workdir)[1]
    app.store.upload_queued(job)
    app.store.job_updated(job.job_id, state=job.state, bytes_sent=job.bytes_sent)
    await settle(pilot)


Scene = tuple[
    Callable[[Path], MediaApp], tuple[str, ...], Callable[[Pilot[object], Path], Awaitable[None]]
]

SCENES: dict[str, Scene] = {
    "empty-library": (lambda d: scene_app(d, with_assets=False), (), lambda p, d: settle(p)),
    "grid": (lambda d: scene_app(d, with_assets=True), (), lambda p, d: settle(p)),
    "uploads-in-flight": (lambda d: scene_app(d, with_assets=True), (), place_jobs),
    "detail": (lambda d: scene_app(d, with_assets=True), ("enter",), lambda p, d: settle(p)),
    "tasks": (lambda d: scene_app(d, with_assets=True), ("w",), place_jobs),
    "sync-now": (lambda d: scene_app(d, with_assets=True), (), place_sync),
    "confirm-delete": (lambda d: scene_app(d, with_assets=True), ("d",), lambda p, d: settle(p)),
    "keys": (lambda d: scene_app(d, with_assets=False), ("question_mark",), lambda p, d: settle(p)),
}
