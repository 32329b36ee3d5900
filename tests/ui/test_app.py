"""The whole TUI under the pilot, on a real local library: paste → cards → synced, and every action."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from textual import events
from textual.widgets import DataTable, Input

from media_tui.errors import PermanentError, TransientError
from media_tui.model import JobState
from media_tui.ui.app import MediaApp
from media_tui.ui.detail import AssetDetail
from media_tui.ui.dialogs import ConfirmDialog, HelpScreen
from media_tui.ui.grid import AssetGrid
from media_tui.ui.prompt import UploadPrompt
from media_tui.ui.tasks import TasksScreen
from media_tui.ui.upload_cards import UploadCard
from tests.integration.media_factory import make_png
from tests.ui.conftest import ControlledStorage, controlled_backends, wait_until

SIZE = (120, 40)


def photos(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        paths.append(make_png(folder / name, seed=100 + i, size=(32, 24)))
    return paths


def synced(app: MediaApp, public_id: str) -> bool:
    return public_id in app.store.assets and app.store.job_for(public_id) is None


async def paste_and_upload(app: MediaApp, pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    await wait_until(pilot, app.ready.is_set)
    app.post_message(events.Paste(text))
    await wait_until(pilot, lambda: isinstance(app.screen, UploadPrompt))
    prompt = app.screen
    assert isinstance(prompt, UploadPrompt)
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, UploadPrompt))


@pytest.mark.parametrize(
    ("fmt", "names", "expected"),
    [
        ("iterm", ["my photo.png", "b.png"], {"my_photo", "b"}),
        ("gnome", ["it's.png", "b c.png"], {"it_s", "b_c"}),
        ("kitty", ["a b.png", "c.png"], {"a_b", "c"}),
        ("uri", ["x y.png"], {"x_y"}),
        ("windows", ["quoted name.png"], {"quoted_name"}),
    ],
)
async def test_each_paste_format_ends_synced_in_the_grid(
    tmp_path: Path, fmt: str, names: list[str], expected: set[str]
) -> None:
    paths = photos(tmp_path / "drop", *names)
    text = {
        "iterm": " ".join(str(p).replace(" ", "\\ ").replace("'", "\\'") for p in paths) + " ",
        "gnome": " ".join("'" + str(p).replace("'", "'\\''") + "'" for p in paths) + " ",
        "kitty": "\n".join(str(p) for p in paths),
        "uri": "\n".join(p.as_uri() for p in paths),
        "windows": " ".join(f'"{p}"' for p in paths),
    }[fmt]
    app = MediaApp()
    async with app.run_test(size=SIZE) as pilot:
        await paste_and_upload(app, pilot, text)
        assert expected <= app.store.public_ids()  # optimistic entries, at once
        await wait_until(pilot, lambda: all(synced(app, pid) for pid in expected))
        assert app.store.public_ids() == expected
        await wait_until(
            pilot, lambda: {app.view[i].public_id for i in range(len(app.view))} == expected
        )
        grid = app.query_one(AssetGrid)
        assert grid.cursor_public_id in expected


async def test_a_mixed_paste_uploads_the_valid_file(tmp_path: Path) -> None:
    (good,) = photos(tmp_path / "drop", "good.png")
    (tmp_path / "notes.txt").write_text("hello")
    text = f"{good}\n{tmp_path / 'missing.png'}\n{tmp_path / 'notes.txt'}"
    app = MediaApp()
    async with app.run_test(size=SIZE) as pilot:
        await paste_and_upload(app, pilot, text)
        await wait_until(pilot, lambda: synced(app, "good"))
        assert app.store.public_ids() == {"good"}


async def test_upload_key_opens_the_prompt_and_escape_closes_it() -> None:
    app = MediaApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, UploadPrompt))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, UploadPrompt))
        assert app.store.jobs == {}


async def test_cards_show_progress_and_cancel_from_the_tasks_view(tmp_path: Path) -> None:
    (path,) = photos(tmp_path / "drop", "slow.png")
    storages: list[ControlledStorage] = []
    app = MediaApp(backends_factory=controlled_backends(storages))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set)
        storages[0].gate = asyncio.Event()
        await paste_and_upload(app, pilot, str(path))
        await wait_until(
            pilot, lambda: any(j.state is JobState.UPLOADING for j in app.store.jobs.values())
        )
        await wait_until(pilot, lambda: any(c.display for c in app.query(UploadCard)))
        card = next(c for c in app.query(UploadCard) if c.display)
        assert "slow.png" in str(card.render()) and card.has_class("-uploading")
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, TasksScreen))
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        await pilot.press("x")
        (job,) = app.store.jobs.values()
        await wait_until(pilot, lambda: app.store.jobs[job.job_id].state is JobState.CANCELLED)
        assert app.store.public_ids() == set()
        storages[0].gate.set()


async def test_retry_after_a_failure(tmp_path: Path) -> None:
    (path,) = photos(tmp_path / "drop", "flaky.png")
    storages: list[ControlledStorage] = []
    app = MediaApp(backends_factory=controlled_backends(storages))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set)
        storages[0].upload_failures = [PermanentError("the server said no; check the file")]
        await paste_and_upload(app, pilot, str(path))
        await wait_until(
            pilot, lambda: any(j.state is JobState.FAILED for j in app.store.jobs.values())
        )
        await wait_until(pilot, lambda: any(c.has_class("-failed") for c in app.query(UploadCard)))
        assert app.store.public_ids() == set()  # rolled back
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, TasksScreen))
        await pilot.press("r")
        await wait_until(pilot, lambda: synced(app, "flaky"))


async def test_delete_with_confirmation_and_rollback(tmp_path: Path) -> None:
    paths = photos(tmp_path / "drop", "keep.png", "gone.png")
    storages: list[ControlledStorage] = []
    app = MediaApp(backends_factory=controlled_backends(storages))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await paste_and_upload(app, pilot, "\n".join(map(str, paths)))
        await wait_until(pilot, lambda: synced(app, "keep") and synced(app, "gone"))
        grid = app.query_one(AssetGrid)
        await wait_until(pilot, lambda: grid.cursor_public_id is not None)
        target = grid.cursor_public_id
        assert target is not None
        storages[0].delete_failures = [TransientError("storage unreachable; try again")]
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: not storages[0].delete_failures)  # the delete was tried
        await wait_until(pilot, lambda: target in app.store.assets)  # restored after the failure
        assert app.store.public_ids() == {"keep", "gone"}
        # The cursor may have moved while the card was gone: delete whatever it is on now.
        await wait_until(pilot, lambda: app.view.index_of(target) is not None)
        second = grid.cursor_public_id
        assert second in {"keep", "gone"}
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: second not in app.store.public_ids())
        assert app.store.public_ids() == {"keep", "gone"} - {second}


async def test_an_upload_by_another_process_appears(
    tmp_path: Path, isolated_settings: Path
) -> None:
    (path,) = photos(tmp_path / "elsewhere", "remote.png")
    app = MediaApp()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set)
        env = dict(os.environ)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "media_tui",
            "upload",
            str(path),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert await process.wait() == 0
        await wait_until(pilot, lambda: "remote" in app.store.public_ids())
        # The grid catches up at its next frame (store changes are applied 30 times a second).
        await wait_until(pilot, lambda: app.view.index_of("remote") is not None)


async def test_filter_sort_help_and_palette(tmp_path: Path) -> None:
    paths = photos(tmp_path / "drop", "zebra.png", "apple.png", "mango.png")
    app = MediaApp()
    async with app.run_test(size=SIZE) as pilot:
        await paste_and_upload(app, pilot, "\n".join(map(str, paths)))
        await wait_until(pilot, lambda: all(synced(app, p) for p in ("zebra", "apple", "mango")))
        await pilot.press("slash")
        box = app.query_one("#filter", Input)
        assert box.has_focus
        await pilot.press(*"app")
        await wait_until(pilot, lambda: len(app.view) == 1)
        assert app.view[0].public_id == "apple"
        await pilot.press("enter", "escape")
        await wait_until(pilot, lambda: len(app.view) == 3)
        await pilot.press("s")  # newest -> name
        await wait_until(pilot, lambda: app.view.sort.value == "name")
        assert [app.view[i].public_id for i in range(3)] == ["apple", "mango", "zebra"]
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press(*"cycle sort", "enter")
        await wait_until(pilot, lambda: app.view.sort.value == "size")


async def test_resize_changes_the_columns(tmp_path: Path) -> None:
    paths = photos(tmp_path / "drop", *(f"p{i}.png" for i in range(8)))
    app = MediaApp()
    async with app.run_test(size=SIZE) as pilot:
        await paste_and_upload(app, pilot, "\n".join(map(str, paths)))
        await wait_until(pilot, lambda: len(app.store.assets) == 8)
        grid = app.query_one(AssetGrid)
        wide = grid.columns
        await pilot.resize_terminal(60, 30)
        await wait_until(pilot, lambda: grid.columns < wide)
        assert grid.columns >= 1


async def test_hostile_names_render_as_plain_text(tmp_path: Path) -> None:
    names = ["[/].png", "a[/b.png", "x\x1b[31mred.png", "bold[b]x[/b].png", "rtl\u202eevil.png"]
    paths = photos(tmp_path / "drop", *names)
    app = MediaApp()
    async with app.run_test(size=SIZE) as pilot:
        await paste_and_upload(app, pilot, "\n".join(map(str, paths)))
        await wait_until(pilot, lambda: len(app.view) == len(names))
        await pilot.pause()
        svg = app.export_screenshot()
        assert "\x1b" not in svg and "\u202e" not in svg
        await pilot.press("enter")  # the detail view of one of them
        await wait_until(pilot, lambda: isinstance(app.screen, AssetDetail))
        assert "\x1b" not in app.export_screenshot()


async def test_mediaapp_reads_the_environment(isolated_settings: Path) -> None:
    app = MediaApp()
    assert app.settings.library == isolated_settings
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set)
        assert (isolated_settings / "catalog.sqlite3").exists()
        assert app.store.public_ids() == set()


async def test_actions_after_a_failed_start_say_why_instead_of_waiting(tmp_path: Path) -> None:
    from media_tui.config import Settings
    from media_tui.errors import ConfigError
    from media_tui.model import ConnectionState
    from media_tui.paths import expand

    def broken(settings: Settings) -> object:
        raise ConfigError("the library cannot be opened; pick another with --library.")

    (path,) = photos(tmp_path / "drop", "late.png")
    app = MediaApp(backends_factory=broken)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.store.connection is ConnectionState.OFFLINE)
        worker = app.enqueue(expand([str(path)]).files)
        await wait_until(pilot, lambda: worker.is_finished)  # it returns, it does not hang
        assert app.store.jobs == {} and not app.ready.is_set()
        assert "library cannot be opened" in (app.store.connection_detail or "")
