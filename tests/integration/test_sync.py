"""`media-tui sync`: storage changed behind the catalogue's back is found, reported and fixed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cloudinary
import cloudinary.uploader
import pytest

from media_tui.backends.local import LocalCatalog, LocalStorage
from media_tui.paths import expand
from media_tui.store import MediaStore
from media_tui.sync import reconcile
from media_tui.uploads import UploadQueue
from tests.emulators.cloudinary import CloudinaryEmulator
from tests.integration.media_factory import make_png
from tests.integration.test_cli import assert_no_traceback, cli_env, json_lines


def sync_cli(
    args: list[str], library: Path, emulator: CloudinaryEmulator
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "media_tui", *args, "--library", str(library)],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env() | {"CLOUDINARY_URL": emulator.cloudinary_url},
    )


@pytest.fixture
def sdk(cloudinary_emulator: CloudinaryEmulator) -> Iterator[CloudinaryEmulator]:
    """The real SDK pointed at the emulator: another tool, not media-tui."""
    cloudinary.reset_config()
    cloudinary.config(
        cloud_name=cloudinary_emulator.cloud_name,
        api_key=cloudinary_emulator.api_key,
        api_secret=cloudinary_emulator.api_secret,
        upload_prefix=cloudinary_emulator.url,
    )
    yield cloudinary_emulator
    cloudinary.reset_config()


def catalogue_ids(library: Path, emulator: CloudinaryEmulator) -> set[str]:
    result = sync_cli(["ls", "--json"], library, emulator)
    assert result.returncode == 0, result.stderr
    return {str(row["public_id"]) for row in json_lines(result.stdout)}


def storage_ids(emulator: CloudinaryEmulator) -> set[str]:
    return {key[2] for key in emulator.assets}


def test_sync_reports_both_kinds_of_drift_and_prune_leaves_them_equal(
    tmp_path: Path, sdk: CloudinaryEmulator
) -> None:
    library = tmp_path / "lib"
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        make_png(photos / f"p{i}.png", seed=i)
    uploaded = sync_cli(["upload", str(photos), "--json"], library, sdk)
    assert uploaded.returncode == 0, uploaded.stderr
    assert catalogue_ids(library, sdk) == {"p0", "p1", "p2"}

    # Behind the catalogue's back: two assets arrive through another tool, one leaves.
    for i in (7, 8):
        cloudinary.uploader.upload(
            str(make_png(tmp_path / f"x{i}.png", seed=i)), public_id=f"console/x{i}"
        )
    assert cloudinary.uploader.destroy("p1")["result"] == "ok"

    report = sync_cli(["sync", "--json"], library, sdk)
    assert report.returncode == 0, report.stderr
    assert_no_traceback(report)
    lines = json_lines(report.stdout)
    items = {(line["public_id"], line["outcome"]) for line in lines if not line.get("summary")}
    assert items == {("console/x7", "added"), ("console/x8", "added"), ("p1", "gone")}
    summary = lines[-1]
    assert summary["summary"] is True
    assert (summary["in_storage"], summary["added"], summary["gone"]) == (4, 2, 1)
    # Reported, not deleted, without --prune.
    assert catalogue_ids(library, sdk) == {"p0", "p1", "p2", "console/x7", "console/x8"}

    pruned = sync_cli(["sync", "--prune", "--json"], library, sdk)
    assert pruned.returncode == 0, pruned.stderr
    assert json_lines(pruned.stdout)[-1]["pruned"] == 1
    assert (
        catalogue_ids(library, sdk) == storage_ids(sdk) == {"p0", "p2", "console/x7", "console/x8"}
    )

    again = sync_cli(["sync", "--json"], library, sdk)
    last = json_lines(again.stdout)
    assert len(last) == 1 and last[0]["unchanged"] == 4  # nothing left to do


def test_sync_updates_a_stale_row_and_keeps_what_only_the_catalogue_knows(
    tmp_path: Path, sdk: CloudinaryEmulator
) -> None:
    library = tmp_path / "lib"
    picture = make_png(tmp_path / "Sky at 6am.png", seed=3)
    assert sync_cli(["upload", str(picture)], library, sdk).returncode == 0
    # Replaced in place by another tool: new bytes and a new version under the same id.
    cloudinary.uploader.upload(
        str(make_png(tmp_path / "other.png", seed=4, size=(90, 30))),
        public_id="Sky_at_6am",
        overwrite=True,
        tags=["replaced"],
    )
    result = sync_cli(["sync", "--json"], library, sdk)
    assert result.returncode == 0, result.stderr
    items = [line for line in json_lines(result.stdout) if not line.get("summary")]
    assert items == [{"public_id": "Sky_at_6am", "outcome": "updated", "error": None}]
    rows = json_lines(sync_cli(["ls", "--json"], library, sdk).stdout)
    assert len(rows) == 1
    row = rows[0]
    assert (row["width"], row["height"], row["tags"]) == (90, 30, ["replaced"])
    assert row["original_filename"] == "Sky at 6am.png"


def test_sync_on_a_terminal_less_run_prints_lines_and_a_summary(
    tmp_path: Path, sdk: CloudinaryEmulator
) -> None:
    cloudinary.uploader.upload(str(make_png(tmp_path / "a.png", seed=1)), public_id="outside")
    result = sync_cli(["sync"], tmp_path / "lib", sdk)
    assert result.returncode == 0, result.stderr
    assert "outside: added to the catalogue" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("sync: 1 in storage")
    assert sdk.api_secret not in result.stdout + result.stderr


def test_sync_without_reachable_storage_is_one_clear_sentence(tmp_path: Path) -> None:
    env = cli_env() | {
        "CLOUDINARY_URL": "cloudinary://123456789012345:sekret@demo?upload_prefix=http://127.0.0.1:9"
    }
    result = subprocess.run(
        [sys.executable, "-m", "media_tui", "sync", "--library", str(tmp_path / "lib")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 1
    assert_no_traceback(result)
    assert result.stderr.count("\n") == 1 and "Cloudinary" in result.stderr
    assert "sekret" not in result.stderr


async def test_local_library_sync_matches_objects_by_checksum(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    storage = LocalStorage(library)
    catalog = await LocalCatalog(library).open()
    store = MediaStore()
    queue = UploadQueue(store, storage, catalog)
    files = [make_png(tmp_path / f"f{i}.png", seed=i) for i in range(3)]
    await queue.start()
    try:
        await queue.enqueue(expand([str(f) for f in files]).files)
        await asyncio.wait_for(queue.wait_idle(), 60)
    finally:
        await queue.aclose()
    f0, f1 = (await catalog.get("f0")), (await catalog.get("f1"))
    assert f0 is not None and f1 is not None and f0.checksum and f1.checksum
    await catalog.delete("f0")  # the row is lost; its object stays
    storage.object_path(f1.checksum, f1.format).unlink()  # the object is lost; its row stays

    phases: list[str] = []
    try:
        report = await reconcile(storage, catalog, progress=lambda p: phases.append(p.phase))
        assert {(i.public_id, i.outcome) for i in report.items} == {
            (f0.checksum, "added"),
            ("f1", "gone"),
        }
        assert phases[0] == "listing storage" and phases[-1] == "done"
        recovered = await catalog.get(f0.checksum)
        assert recovered is not None and recovered.bytes == f0.bytes

        report = await reconcile(storage, catalog, prune=True)
        assert [(i.public_id, i.outcome) for i in report.items] == [("f1", "pruned")]
        rows, _ = await catalog.snapshot()
        objects = [asset async for asset in storage.list_assets()]
        assert {r.checksum for r in rows} == {o.checksum for o in objects}
    finally:
        await catalog.aclose()
