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


async def test_an_asset_uploaded_behind_media_tuis_back_reaches_the_grid_through_the_webhook(
    tmp_path: Path, clouds: tuple[CloudinaryEmulator, SupabaseEmulator]
) -> None:
    """Another tool uploads straight to Cloudinary: webhook → catalogue → realtime → grid."""
    import cloudinary
    import cloudinary.uploader

    cloudinary_emulator, supabase = clouds
    receiver = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "media_tui",
        "webhook",
        "--port",
        "0",
        "--library",
        str(tmp_path / "webhook-lib"),
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert receiver.stderr is not None and receiver.stdout is not None
        banner = (await asyncio.wait_for(receiver.stderr.readline(), 60)).decode()
        assert "receiving Cloudinary notifications on http://127.0.0.1:" in banner, banner
        cloudinary_emulator.notification_url = banner.split(" on ", 1)[1].split()[0]

        app = MediaApp()
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.store.connection is ConnectionState.LIVE, 30)
            cloudinary.reset_config()
            cloudinary.config(
                cloud_name=cloudinary_emulator.cloud_name,
                api_key=cloudinary_emulator.api_key,
                api_secret=cloudinary_emulator.api_secret,
                upload_prefix=cloudinary_emulator.url,
            )
            try:
                picture = make_png(tmp_path / "console.png", seed=31)
                await asyncio.to_thread(
                    cloudinary.uploader.upload, str(picture), public_id="console/drop"
                )
                await wait_until(pilot, lambda: app.view.index_of("console/drop") is not None, 30)
                asset = app.store.assets["console/drop"]
                assert asset.url and asset.url.startswith(cloudinary_emulator.url)
                assert app.store.job_for("console/drop") is None  # not an upload of ours

                await asyncio.to_thread(cloudinary.uploader.destroy, "console/drop")
                await wait_until(pilot, lambda: "console/drop" not in app.store.assets, 30)
            finally:
                cloudinary.reset_config()
        assert {row["public_id"] for row in supabase.rows} == set()
        applied = (await asyncio.wait_for(receiver.stdout.readline(), 10)).decode()
        assert applied.startswith("200 applied upload: console/drop"), applied
    finally:
        receiver.terminate()
        _, err = await asyncio.wait_for(receiver.communicate(), 30)
    assert "Traceback" not in err.decode()
    assert cloudinary_emulator.api_secret not in err.decode()
    assert all(d.delivered for d in cloudinary_emulator.deliveries)
