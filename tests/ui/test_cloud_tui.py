"""The TUI on Cloudinary storage (the emulator): uploads sync and the grid shows real thumbnails."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_tui.paths import expand
from media_tui.ui.app import MediaApp
from tests.emulators.cloudinary import CloudinaryEmulator
from tests.integration.media_factory import make_png
from tests.ui.conftest import wait_until


async def test_cloud_upload_shows_a_fetched_thumbnail(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDINARY_URL", cloudinary_emulator.cloudinary_url)
    picture = make_png(tmp_path / "sky.png", seed=4, size=(300, 200))
    app = MediaApp()
    assert app.settings.storage == "cloudinary"
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, app.ready.is_set)
        app.enqueue(expand([str(picture)]).files)
        await wait_until(
            pilot, lambda: "sky" in app.store.assets and app.store.job_for("sky") is None
        )
        asset = app.store.assets["sky"]
        assert asset.url is not None and asset.url.startswith(cloudinary_emulator.url)
        assert asset.thumbnail is not None and "c_limit,w_256,h_256" in asset.thumbnail
        await pilot.pause()
        thumb_url = asset.thumbnail

        def thumbnail_drawn() -> bool:
            thumb = app.thumbs.get(thumb_url)
            return thumb is not None and thumb.rows(22, 6) is not None

        await wait_until(pilot, thumbnail_drawn)
        assert app.remote_thumbs.cached_path(thumb_url).exists()
    assert ("image", "upload", "sky") in cloudinary_emulator.assets
