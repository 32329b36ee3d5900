""" "Sync now" in the TUI: progress and result on a card, catalogue changes in the grid."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from media_tui.backends.local import LocalCatalog, LocalStorage
from media_tui.paths import expand
from media_tui.ui.app import MediaApp
from media_tui.ui.dialogs import ConfirmDialog
from media_tui.ui.sync_card import SyncCard
from tests.integration.media_factory import make_png
from tests.ui.conftest import wait_until


async def uploaded(pilot: Pilot[object], app: MediaApp) -> None:
    """Both files in the grid *and* in the catalogue (the grid shows optimistic entries first)."""
    await wait_until(pilot, lambda: app.store.public_ids() == {"keep", "lose"})
    await wait_until(
        pilot,
        lambda: (
            bool(app.store.jobs) and all(not job.state.active for job in app.store.jobs.values())
        ),
    )


async def drift(app: MediaApp) -> tuple[str, str]:
    """Lose one catalogue row (its object stays) and one object (its row stays)."""
    assert app.backends is not None
    catalog, storage = app.backends.catalog, app.backends.storage
    assert isinstance(catalog, LocalCatalog) and isinstance(storage, LocalStorage)
    kept, lost = await catalog.get("keep"), await catalog.get("lose")
    assert kept is not None and lost is not None and kept.checksum and lost.checksum
    await catalog.delete("keep")
    storage.object_path(lost.checksum, lost.format).unlink()
    return kept.checksum, "lose"


async def test_sync_now_shows_progress_then_the_result_and_the_grid_follows(
    tmp_path: Path,
) -> None:
    files = [make_png(tmp_path / "keep.png", seed=1), make_png(tmp_path / "lose.png", seed=2)]
    app = MediaApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, app.ready.is_set)
        app.enqueue(expand([str(f) for f in files]).files)
        await uploaded(pilot, app)
        recovered, gone = await drift(app)
        await wait_until(pilot, lambda: app.store.public_ids() == {"lose"})

        app.action_sync()
        card = app.query_one(SyncCard)
        await wait_until(pilot, lambda: app.sync_status is not None and not app.sync_status.running)
        await pilot.pause()
        assert card.display
        shown = str(card.render())
        assert "Sync now" in shown and "1 added" in shown and "1 gone" in shown
        # The added row reaches the grid through the catalogue's change feed; the gone one stays.
        await wait_until(pilot, lambda: app.store.public_ids() == {recovered, gone})


async def test_sync_and_prune_asks_first_then_removes_rows_of_gone_assets(
    tmp_path: Path,
) -> None:
    files = [make_png(tmp_path / "keep.png", seed=1), make_png(tmp_path / "lose.png", seed=2)]
    app = MediaApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, app.ready.is_set)
        app.enqueue(expand([str(f) for f in files]).files)
        await uploaded(pilot, app)
        recovered, _ = await drift(app)

        app.action_sync(prune=True)
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmDialog))
        assert app.sync_status is None  # declined: nothing ran

        app.action_sync(prune=True)
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.sync_status is not None and not app.sync_status.running)
        assert app.sync_status is not None and app.sync_status.counts.get("pruned") == 1
        await wait_until(pilot, lambda: app.store.public_ids() == {recovered})
