"""Shared pieces for pilot tests of the whole app on a real local library."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from media_tui.backends.base import ProgressCallback, UploadRequest
from media_tui.backends.factory import Backends, open_backends
from media_tui.config import Settings
from media_tui.model import MediaAsset


def isolate_app_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`MediaApp()` reads the environment: point it at a fresh library and no config file."""
    for name in list(os.environ):
        if name.startswith(("CLOUDINARY_", "SUPABASE_", "NEXT_PUBLIC_SUPABASE", "MEDIA_TUI_")):
            monkeypatch.delenv(name)
    library = tmp_path / "library"
    monkeypatch.setenv("MEDIA_TUI_LIBRARY", str(library))
    monkeypatch.setenv("MEDIA_TUI_CONFIG", os.devnull)
    return library


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_app_environment(tmp_path, monkeypatch)


async def wait_until(
    pilot: Pilot[object], condition: Callable[[], bool], limit: float = 15.0
) -> None:
    """Let the app run until `condition()` holds; fail with a clear message after `limit` s."""

    async def poll() -> None:
        while not condition():
            await pilot.pause(0.02)

    try:
        await asyncio.wait_for(poll(), limit)
    except TimeoutError:
        raise AssertionError(f"condition not met within {limit} s") from None


class ControlledStorage:
    """Wraps the real local storage so a test can hold an upload mid-way or make calls fail."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = "local"
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.upload_failures: list[Exception] = []
        self.delete_failures: list[Exception] = []

    async def upload(self, request: UploadRequest, progress: ProgressCallback) -> MediaAsset:
        self.started.set()
        if self.upload_failures:
            raise self.upload_failures.pop(0)
        if self.gate is not None:
            progress(request.size // 2)
            await self.gate.wait()
        return await self.inner.upload(request, progress)  # type: ignore[attr-defined, no-any-return]

    async def delete(self, asset: MediaAsset) -> None:
        if self.delete_failures:
            raise self.delete_failures.pop(0)
        await self.inner.delete(asset)  # type: ignore[attr-defined]

    def list_assets(self) -> object:
        return self.inner.list_assets()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self.inner.aclose()  # type: ignore[attr-defined]


def controlled_backends(holder: list[ControlledStorage]) -> Callable[[Settings], Backends]:
    def factory(settings: Settings) -> Backends:
        backends = open_backends(settings)
        storage = ControlledStorage(backends.storage)
        holder.append(storage)
        backends.storage = storage  # type: ignore[assignment]
        return backends

    return factory
