"""The app runs the consistency probe with its feed: a grid that drifted from the catalogue heals."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from media_tui.backends.local import LocalCatalog
from media_tui.model import MediaAsset
from media_tui.ui.app import MediaApp
from tests.ui.conftest import wait_until


def shown(app: MediaApp) -> set[str]:
    """The public ids the grid shows."""
    return {app.view[i].public_id for i in range(len(app.view))}


async def test_the_app_repairs_a_store_that_lost_an_asset(
    isolated_settings: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = await LocalCatalog(isolated_settings).open()
    try:
        for public_id in ("one", "two", "three"):
            await catalog.upsert(MediaAsset(public_id=public_id, checksum=public_id * 8))
    finally:
        await catalog.aclose()
    app = MediaApp(consistency_interval=0.3, thumbnails=False)
    with caplog.at_level(logging.WARNING, logger="media_tui.consistency"):
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: set(app.store.assets) == {"one", "two", "three"})
            app.store.remote_delete("two")  # a delete nobody made: the grid is now wrong
            await wait_until(
                pilot,
                lambda: "two" in app.store.assets and shown(app) == {"one", "two", "three"},
            )
            assert app.probe is not None and app.probe.repairs == 1
    assert any("resyncing" in r.getMessage() for r in caplog.records)
