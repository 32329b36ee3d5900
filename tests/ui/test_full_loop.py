"""The whole loop on both clouds (emulated): TUI or CLI upload → Cloudinary → Supabase row →
realtime → every open grid shows it synced."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from media_tui.model import ConnectionState
from media_tui.paths import expand
from media_tui.ui.app import MediaApp
from tests.emulators.cloudinary import CloudinaryEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.media_factory import make_png
from tests.ui.conftest import wait_until


@pytest.fixture
def clouds(
    monkeypatch: pytest.MonkeyPatch,
    cloudinary_emulator: CloudinaryEmulator,
    supabase_emulator: SupabaseEmulator,
) -> tuple[CloudinaryEmulator, SupabaseEmulator]:
    monkeypatch.setenv("CLOUDINARY_URL", cloudinary_emulator.cloudinary_url)
    monkeypatch.setenv("SUPABASE_URL", supabase_emulator.url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", supabase_emulator.service_key)
    return cloudinary_emulator, supabase_emulator


async def test_tui_upload_and_another_operators_cli_upload_both_appear(
    tmp_path: Path, clouds: tuple[CloudinaryEmulator, SupabaseEmulator]
) -> None:
    cloudinary, supabase = clouds
    mine = make_png(tmp_path / "mine.png", seed=21)
    theirs_dir = tmp_path / "theirs"
    theirs_dir.mkdir()
    make_png(theirs_dir / "theirs.png", seed=22)
    app = MediaApp()
    assert (app.settings.storage, app.settings.catalog) == ("cloudinary", "supabase")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.store.connection is ConnectionState.LIVE, 30)
        app.enqueue(expand([str(mine)]).files)
        await wait_until(
            pilot, lambda: "mine" in app.store.assets and app.store.job_for("mine") is None, 30
        )
        assert {row["public_id"] for row in supabase.rows} == {"mine"}
        assert ("image", "upload", "mine") in cloudinary.assets

        # Another operator, another process, same clouds: it reaches this grid through realtime.
        other_library = tmp_path / "other-lib"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "media_tui",
            "upload",
            str(theirs_dir),
            "--library",
            str(other_library),
            env=dict(os.environ),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        await wait_until(pilot, lambda: "theirs" in app.store.assets, 30)
        await wait_until(pilot, lambda: app.view.index_of("theirs") is not None)
        assert app.store.assets["theirs"].url and app.store.assets["theirs"].url.startswith(
            cloudinary.url
        )


async def test_tui_rides_out_a_realtime_outage_and_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, supabase_emulator: SupabaseEmulator
) -> None:
    monkeypatch.setenv("SUPABASE_URL", supabase_emulator.url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", supabase_emulator.service_key)
    monkeypatch.setenv("MEDIA_TUI_STORAGE", "local")
    app = MediaApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.store.connection is ConnectionState.LIVE, 30)
        badge = app.query_one("#badge-connection")

        # The sockets drop and stay refused while another operator writes 20 rows.
        supabase_emulator.refuse_sockets(3600)
        await asyncio.to_thread(supabase_emulator.drop_all_sockets)
        await wait_until(pilot, lambda: "reconnecting" in str(badge.render()), 30)
        for i in range(20):
            await asyncio.to_thread(
                supabase_emulator.write_as_other, "INSERT", {"public_id": f"gap/{i:02d}"}
            )
        assert app.view.index_of("gap/00") is None  # nothing can arrive while refused
        supabase_emulator.refuse_sockets(0)

        # Back: the resync after the rejoin brings in every row written during the outage.
        await wait_until(pilot, lambda: "live" in str(badge.render()), 30)
        await wait_until(pilot, lambda: len(app.view) == 20, 30)
        assert {a.public_id for a in app.view} == {f"gap/{i:02d}" for i in range(20)}
