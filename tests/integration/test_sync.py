"""`media-tui sync`: storage changed behind the catalogue's back is found, reported and fixed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudinary
import cloudinary.uploader
import pytest

from media_tui.backends.cloudinary import CloudinaryStorage
from media_tui.backends.local import LocalCatalog, LocalStorage
from media_tui.config import CloudinarySettings, Secret
from media_tui.paths import expand
from media_tui.store import MediaStore
from media_tui.sync import Applied, apply_notification, reconcile
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


async def test_sync_leaves_an_upload_under_way_to_its_uploader(tmp_path: Path) -> None:
    """Bytes stored, row not yet written, name claimed: sync must not add a row of its own."""
    library = tmp_path / "lib"
    storage = LocalStorage(library)
    catalog = await LocalCatalog(library).open()
    store = MediaStore()
    queue = UploadQueue(store, storage, catalog)
    source = make_png(tmp_path / "busy.png", seed=9)
    await queue.start()
    try:
        await queue.enqueue(expand([str(source)]).files)
        await asyncio.wait_for(queue.wait_idle(), 60)
    finally:
        await queue.aclose()
    row = await catalog.get("busy")
    assert row is not None and row.checksum
    # Back to the moment between the upload and its row: the object is there, the name claimed.
    await catalog.delete("busy")
    await catalog.claim_name("busy", row.checksum, "job-under-way", 60)
    try:
        report = await reconcile(storage, catalog)
        assert (report.in_flight, report.items) == (1, [])
        assert "1 upload under way" in report.summary()
        assert (await catalog.page()).total == 0

        await catalog.release_name("busy", "job-under-way")  # the uploader gave up
        report = await reconcile(storage, catalog)
        assert [i.outcome for i in report.items] == ["added"]
    finally:
        await catalog.aclose()


# ------------------------------------------------------ notifications out of order (rule 4)
#
# Cloudinary redelivers a notification up to 3 times over ~9 minutes, and deliveries race each
# other, so an upload can arrive after the delete that ended it, and a delete after the upload
# that replaced it. Each case below is the order a real redelivery can produce.

V1, V2 = 1_700_000_000, 1_700_000_500  # asset versions: the Unix second of each upload


class MemoryTombstones:
    """`NotificationTombstones` in a dict: the highest deleted version per public id."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}

    def get(self, public_id: str) -> int | None:
        return self.versions.get(public_id)

    def record(self, public_id: str, version: int) -> None:
        self.versions[public_id] = max(version, self.versions.get(public_id, version))


def uploaded(public_id: str, version: int | None, width: int = 300) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "notification_type": "upload",
        "timestamp": "2027-01-15T08:00:00+00:00",
        "public_id": public_id,
        "width": width,
        "height": 400,
        "format": "png",
        "resource_type": "image",
        "type": "upload",
        "bytes": 1237,
        "secure_url": f"https://res.example/demo/image/upload/v{version}/{public_id}.png",
    }
    if version is not None:
        payload["version"] = version
    return payload


def deleted(public_id: str, version: int | None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resource_type": "image", "type": "upload", "public_id": public_id}
    if version is not None:
        resource["version"] = version
    return {"notification_type": "delete", "resources": [resource]}


def renamed(source: str, target: str, version: int, width: int = 300) -> dict[str, Any]:
    return uploaded(target, version, width) | {
        "notification_type": "rename",
        "from_public_id": source,
        "to_public_id": target,
    }


@dataclass
class Notified:
    catalog: LocalCatalog
    storage: CloudinaryStorage
    tombstones: MemoryTombstones

    async def apply(self, payload: dict[str, Any]) -> Applied:
        return await apply_notification(
            payload, self.catalog, self.storage, tombstones=self.tombstones
        )

    async def version_of(self, public_id: str) -> int | None:
        row = await self.catalog.get(public_id)
        assert row is not None, f"{public_id} has no row"
        return row.version


@pytest.fixture
async def notified(tmp_path: Path) -> AsyncIterator[Notified]:
    catalog = await LocalCatalog(tmp_path / "lib").open()
    # Reading a notification needs no network: the API base is never called.
    storage = CloudinaryStorage(
        CloudinarySettings("demo", "123456789012345", Secret("s"), "http://127.0.0.1:9")
    )
    try:
        yield Notified(catalog, storage, MemoryTombstones())
    finally:
        await storage.aclose()
        await catalog.aclose()


async def test_a_late_upload_after_its_delete_does_not_bring_the_row_back(
    notified: Notified,
) -> None:
    await notified.apply(uploaded("sky", V1))
    await notified.apply(deleted("sky", V1))
    late = await notified.apply(uploaded("sky", V1))  # the upload's redelivery, after the delete
    assert late.ignored and "deleted" in late.describe()
    assert await notified.catalog.get("sky") is None


async def test_a_delayed_delete_keeps_the_row_of_an_asset_uploaded_again_since(
    notified: Notified,
) -> None:
    await notified.apply(uploaded("sky", V1))
    await notified.apply(uploaded("sky", V2))  # re-uploaded under the same public id
    late = await notified.apply(deleted("sky", V1))  # the delete of the first upload, delayed
    assert late.ignored and "newer" in late.describe()
    assert await notified.version_of("sky") == V2
    assert notified.tombstones.get("sky") == V1  # recorded either way


async def test_a_duplicate_delete_does_not_remove_what_came_after_the_first(
    notified: Notified,
) -> None:
    await notified.apply(uploaded("sky", V1))
    assert not (await notified.apply(deleted("sky", V1))).ignored
    assert await notified.catalog.get("sky") is None
    await notified.apply(uploaded("sky", V2))
    again = await notified.apply(deleted("sky", V1))  # the same delete, delivered once more
    assert again.ignored
    assert await notified.version_of("sky") == V2
    # The tombstone never moves back, and the upload it ended stays ended.
    assert notified.tombstones.get("sky") == V1
    assert (await notified.apply(uploaded("sky", V1))).ignored
    assert await notified.version_of("sky") == V2


async def test_an_older_upload_arriving_after_a_newer_one_is_ignored(notified: Notified) -> None:
    await notified.apply(uploaded("sky", V2, width=90))
    late = await notified.apply(uploaded("sky", V1, width=300))
    assert late.ignored and str(V2) in late.describe()
    row = await notified.catalog.get("sky")
    assert row is not None and (row.version, row.width) == (V2, 90)


async def test_an_upload_with_a_later_version_after_a_delete_is_a_re_upload(
    notified: Notified,
) -> None:
    await notified.apply(uploaded("sky", V1))
    await notified.apply(deleted("sky", V1))
    assert not (await notified.apply(uploaded("sky", V2))).ignored
    assert await notified.version_of("sky") == V2


async def test_a_late_upload_of_a_renamed_asset_does_not_bring_the_old_name_back(
    notified: Notified,
) -> None:
    await notified.apply(renamed("a", "b", V1))  # the rename overtook the upload it follows
    late = await notified.apply(uploaded("a", V1))
    assert late.ignored
    assert await notified.catalog.get("a") is None
    assert await notified.version_of("b") == V1


async def test_a_late_rename_does_not_overwrite_a_target_uploaded_since(
    notified: Notified,
) -> None:
    await notified.apply(uploaded("a", V1, width=300))
    await notified.apply(uploaded("b", V2, width=90))  # b was renamed away and uploaded again
    applied = await notified.apply(renamed("a", "b", V1, width=300))
    assert not applied.ignored and "b" in applied.describe()
    row = await notified.catalog.get("b")
    assert row is not None and (row.version, row.width) == (V2, 90)
    assert await notified.catalog.get("a") is None  # the source did move away at V1


async def test_a_late_rename_does_not_delete_a_source_uploaded_again_since(
    notified: Notified,
) -> None:
    await notified.apply(uploaded("a", V1))
    await notified.apply(uploaded("a", V2, width=90))  # a new asset under the old name
    await notified.apply(renamed("a", "b", V1))
    row = await notified.catalog.get("a")
    assert row is not None and (row.version, row.width) == (V2, 90)
    assert await notified.version_of("b") == V1
    assert notified.tombstones.get("a") == V1


async def test_a_late_rename_does_not_recreate_a_target_deleted_since(notified: Notified) -> None:
    await notified.apply(uploaded("a", V1))
    await notified.apply(deleted("b", V1))  # renamed to b, then deleted: the delete came first
    await notified.apply(renamed("a", "b", V1))
    assert await notified.catalog.get("b") is None
    assert await notified.catalog.get("a") is None


async def test_notifications_without_a_version_apply_as_they_come(notified: Notified) -> None:
    await notified.apply(uploaded("sky", V2, width=90))
    assert not (await notified.apply(uploaded("sky", None, width=300))).ignored
    row = await notified.catalog.get("sky")
    assert row is not None and row.width == 300
    await notified.apply(deleted("sky", None))
    assert await notified.catalog.get("sky") is None
    assert notified.tombstones.get("sky") is None  # nothing to record without a version


async def test_without_tombstones_the_row_versions_still_order_notifications(
    notified: Notified,
) -> None:
    async def apply(payload: dict[str, Any]) -> Applied:
        return await apply_notification(payload, notified.catalog, notified.storage)

    await apply(uploaded("sky", V2))
    assert (await apply(uploaded("sky", V1))).ignored
    assert (await apply(deleted("sky", V1))).ignored
    assert await notified.version_of("sky") == V2
