"""The notification receiver: what it applies, what it refuses and with which status."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from media_tui.backends.cloudinary import CloudinaryStorage
from media_tui.backends.local import LocalCatalog
from media_tui.config import CloudinarySettings, Secret
from media_tui.model import MediaAsset
from media_tui.webhook import (
    MAX_BODY,
    DeletedVersions,
    Receiver,
    SeenNotifications,
    build_app,
    signature_for,
)

SECRET = "webhook-test-secret"
NOW = 1_800_000_000


def upload_payload(public_id: str = "shots/sky", **extra: Any) -> dict[str, Any]:
    return {
        "notification_type": "upload",
        "timestamp": "2027-01-15T08:00:00+00:00",
        "request_id": "a1e5ca1e429f000125097f846b7327f3",
        "asset_id": "eb8fa7e7cb1c9a54243039f53381f4e3",
        "public_id": public_id,
        "version": 1618505146,
        "width": 300,
        "height": 400,
        "format": "png",
        "resource_type": "image",
        "created_at": "2027-01-15T08:00:00Z",
        "tags": ["blue"],
        "bytes": 1237,
        "type": "upload",
        "url": f"http://res.example/demo/image/upload/v1618505146/{public_id}.png",
        "secure_url": f"https://res.example/demo/image/upload/v1618505146/{public_id}.png",
        "original_filename": "sky",
        **extra,
    }


@dataclass
class Sent:
    status: int
    body: dict[str, Any]


class Harness:
    def __init__(self, catalog: LocalCatalog, receiver: Receiver) -> None:
        self.catalog = catalog
        self.receiver = receiver
        self.results: list[dict[str, Any]] = []
        receiver.on_result = self.results.append
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(receiver, "local")),
            base_url="http://webhook.test",
        )

    async def post(
        self,
        payload: Any,
        *,
        timestamp: int | str = NOW,
        secret: str = SECRET,
        algorithm: str = "sha1",
        body: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Sent:
        text = json.dumps(payload, separators=(",", ":")) if body is None else body
        ts = str(timestamp)
        sent_headers = {
            "Content-Type": "application/json",
            "X-Cld-Timestamp": ts,
            "X-Cld-Signature": signature or signature_for(text, ts, secret, algorithm),
            **(headers or {}),
        }
        response = await self.client.post("/", content=text.encode(), headers=sent_headers)
        return Sent(response.status_code, response.json())

    async def ids(self) -> set[str]:
        assets, _ = await self.catalog.snapshot()
        return {asset.public_id for asset in assets}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    catalog = await LocalCatalog(tmp_path / "lib").open()
    storage = CloudinaryStorage(
        CloudinarySettings("demo", "123456789012345", Secret(SECRET), "http://127.0.0.1:9")
    )
    seen = SeenNotifications(tmp_path / "lib" / "seen.sqlite3", clock=lambda: NOW)
    receiver = Receiver(SECRET, catalog, storage, seen, clock=lambda: NOW)
    h = Harness(catalog, receiver)
    try:
        yield h
    finally:
        await h.client.aclose()
        seen.close()
        await storage.aclose()
        await catalog.aclose()


def test_signature_matches_the_reference_worked_example() -> None:
    body = (
        '{"notification_type":"eager","eager":[{"transformation":"sp_full_hd/mp4","bytes":1055,'
        '"url":"http://res.cloudinary.com/demo/video/upload/sp_full_hd/v1533125278/dog.mp4",'
        '"secure_url":"https://res.cloudinary.com/demo/video/upload/sp_full_hd/v1533125278/dog.mp4"}],'
        '"public_id":"dog","batch_id":"9b11fa058c61fa577f4ec516bf6ee756ac2aefef095af99aef1302142cc1694a"}'
    )
    assert (
        signature_for(body, "1549533514", "X7qLTrsES31MzxxkxPPA-pAGGfU")
        == "dfe82de1d9083fe0b7ea68070649f9a15b8874da"
    )


async def test_a_signed_upload_is_applied(harness: Harness) -> None:
    sent = await harness.post(upload_payload())
    assert sent.status == 200, sent.body
    asset = await harness.catalog.get("shots/sky")
    assert asset is not None
    assert (asset.width, asset.height, asset.bytes, asset.format) == (300, 400, 1237, "png")
    assert asset.tags == ("blue",) and asset.folder == "shots"
    assert asset.url and asset.url.startswith("https://res.example/")
    assert asset.original_filename == "sky.png"
    assert harness.results[-1]["kind"] == "upload"


async def test_sha256_signatures_are_accepted(harness: Harness) -> None:
    sent = await harness.post(upload_payload(), algorithm="sha256")
    assert sent.status == 200
    assert await harness.ids() == {"shots/sky"}


async def test_an_upload_keeps_what_only_the_catalogue_knows(harness: Harness) -> None:
    await harness.catalog.upsert(
        MediaAsset(public_id="shots/sky", checksum="c" * 64, original_filename="Sky at 6am.png")
    )
    assert (await harness.post(upload_payload())).status == 200
    asset = await harness.catalog.get("shots/sky")
    assert asset is not None and asset.checksum == "c" * 64
    assert asset.original_filename == "Sky at 6am.png" and asset.bytes == 1237


async def test_delete_and_rename_are_applied(harness: Harness) -> None:
    await harness.post(upload_payload("a/one"))
    await harness.post(upload_payload("a/two"), timestamp=NOW + 1)
    rename = {**upload_payload("b/renamed"), "notification_type": "rename"}
    rename |= {"from_public_id": "a/two", "to_public_id": "b/renamed"}
    assert (await harness.post(rename, timestamp=NOW + 2)).status == 200
    assert await harness.ids() == {"a/one", "b/renamed"}
    moved = await harness.catalog.get("b/renamed")
    assert moved is not None and moved.folder == "b" and moved.original_filename == "sky.png"
    # A real delete names the version it deleted (cloudinary.md §8): the one uploaded above.
    delete = {
        "notification_type": "delete",
        "resources": [
            {
                "resource_type": "image",
                "type": "upload",
                "public_id": "a/one",
                "version": 1618505146,
            }
        ],
    }
    assert (await harness.post(delete, timestamp=NOW + 3)).status == 200
    assert await harness.ids() == {"b/renamed"}


async def test_other_notification_types_are_acknowledged_and_change_nothing(
    harness: Harness,
) -> None:
    sent = await harness.post({"notification_type": "eager", "public_id": "dog"})
    assert sent.status == 200 and "ignored" in sent.body["result"]
    assert await harness.ids() == set()


async def test_a_tampered_body_is_refused(harness: Harness) -> None:
    text = json.dumps(upload_payload(), separators=(",", ":"))
    signature = signature_for(text, str(NOW), SECRET)
    tampered = text.replace('"bytes":1237', '"bytes":9999')
    sent = await harness.post(None, body=tampered, signature=signature)
    assert sent.status == 401 and "altered" in sent.body["error"]
    assert await harness.ids() == set()


async def test_a_wrong_secret_is_refused(harness: Harness) -> None:
    sent = await harness.post(upload_payload(), secret="someone-elses-secret")
    assert sent.status == 401
    assert await harness.ids() == set()
    assert SECRET not in json.dumps(sent.body) and SECRET not in json.dumps(harness.results)


async def test_a_missing_signature_or_timestamp_is_refused(harness: Harness) -> None:
    text = json.dumps(upload_payload())
    response = await harness.client.post("/", content=text, headers={"X-Cld-Timestamp": str(NOW)})
    assert response.status_code == 401
    response = await harness.client.post("/", content=text)
    assert response.status_code == 401
    assert await harness.ids() == set()


@pytest.mark.parametrize(
    ("timestamp", "why"),
    [(NOW - 2 * 3600 - 1, "old"), (NOW + 3600, "future"), ("1.8e9", "whole"), ("-5", "whole")],
)
async def test_a_stale_future_or_malformed_timestamp_is_refused(
    harness: Harness, timestamp: int | str, why: str
) -> None:
    sent = await harness.post(upload_payload(), timestamp=timestamp)
    assert sent.status == 401 and why in sent.body["error"]
    assert await harness.ids() == set()


async def test_a_timestamp_just_inside_the_window_is_accepted(harness: Harness) -> None:
    assert (await harness.post(upload_payload(), timestamp=NOW - 2 * 3600 + 5)).status == 200


async def test_a_replay_is_refused_and_changes_nothing(harness: Harness) -> None:
    assert (await harness.post(upload_payload())).status == 200
    delete = {"notification_type": "delete", "resources": [{"public_id": "shots/sky"}]}
    assert (await harness.post(delete, timestamp=NOW + 1)).status == 200
    replayed = await harness.post(upload_payload())  # same body, timestamp and signature
    assert replayed.status == 409
    assert await harness.ids() == set()  # the replayed upload did not bring the asset back


async def test_a_replay_is_refused_after_a_restart(harness: Harness, tmp_path: Path) -> None:
    assert (await harness.post(upload_payload())).status == 200
    harness.receiver.seen.close()
    harness.receiver.seen = SeenNotifications(tmp_path / "lib" / "seen.sqlite3", clock=lambda: NOW)
    assert (await harness.post(upload_payload())).status == 409


async def test_an_oversized_body_is_refused_before_it_is_read(harness: Harness) -> None:
    big = upload_payload(padding="x" * (MAX_BODY + 1))
    sent = await harness.post(big)
    assert sent.status == 413
    assert await harness.ids() == set()


async def test_bodies_that_are_not_json_objects_are_refused(harness: Harness) -> None:
    assert (await harness.post(None, body="not json")).status == 400
    assert (await harness.post(None, body="[1, 2]")).status == 400
    sent = await harness.post({"notification_type": "upload"})  # no public_id
    assert sent.status == 422 and "public_id" in sent.body["error"]
    assert await harness.ids() == set()


async def test_a_catalogue_failure_answers_503_and_a_redelivery_applies(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from media_tui.errors import TransientError

    original = harness.catalog.upsert

    async def unreachable(asset: MediaAsset) -> MediaAsset:
        raise TransientError("the catalogue is unreachable")

    monkeypatch.setattr(harness.catalog, "upsert", unreachable)
    assert (await harness.post(upload_payload())).status == 503
    monkeypatch.setattr(harness.catalog, "upsert", original)
    assert (await harness.post(upload_payload())).status == 200  # the same notification again
    assert await harness.ids() == {"shots/sky"}


async def test_healthz(harness: Harness) -> None:
    response = await harness.client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_seen_notifications_are_forgotten_after_the_window(tmp_path: Path) -> None:
    now = [float(NOW)]
    seen = SeenNotifications(tmp_path / "seen.sqlite3", clock=lambda: now[0])
    try:
        key = hashlib.sha1(b"x").hexdigest()
        assert seen.claim(key) and not seen.claim(key)
        now[0] += 3 * 3600  # by now its timestamp would be refused as stale anyway
        assert seen.claim(hashlib.sha1(b"y").hexdigest())
        assert seen.claim(key)
    finally:
        seen.close()


# ------------------------------------------------- out-of-order deliveries (ordering rule 4)
#
# A redelivery is signed anew (its own timestamp, so its own signature): the replay guard lets
# it through, and only the asset's version can tell that it is late.

V1, V2 = 1618505146, 1618505746  # two uploads under one public id, ten minutes apart


def delete_payload(public_id: str, version: int) -> dict[str, Any]:
    return {
        "notification_type": "delete",
        "resources": [
            {"resource_type": "image", "type": "upload", "public_id": public_id, "version": version}
        ],
    }


def restart(harness: Harness, tmp_path: Path) -> None:
    """What a restart of `media-tui webhook` keeps: only what is in the database file."""
    harness.receiver.seen.close()
    harness.receiver.seen = SeenNotifications(tmp_path / "lib" / "seen.sqlite3", clock=lambda: NOW)


async def test_a_late_upload_after_a_delete_is_not_applied_even_after_a_restart(
    harness: Harness, tmp_path: Path
) -> None:
    assert (await harness.post(upload_payload(version=V1))).status == 200
    assert (await harness.post(delete_payload("shots/sky", V1), timestamp=NOW + 1)).status == 200
    restart(harness, tmp_path)
    late = await harness.post(upload_payload(version=V1), timestamp=NOW + 2)  # the redelivery
    assert late.status == 200, late.body
    assert "ignored" in late.body["result"] and "deleted" in late.body["result"]
    assert await harness.ids() == set()
    # A later upload under the same id is a new asset, and it is applied.
    assert (await harness.post(upload_payload(version=V2), timestamp=NOW + 3)).status == 200
    assert await harness.ids() == {"shots/sky"}


async def test_a_delayed_delete_keeps_an_asset_uploaded_again_since(harness: Harness) -> None:
    assert (await harness.post(upload_payload(version=V1))).status == 200
    assert (await harness.post(upload_payload(version=V2), timestamp=NOW + 1)).status == 200
    late = await harness.post(delete_payload("shots/sky", V1), timestamp=NOW + 2)
    assert late.status == 200 and "ignored" in late.body["result"]
    row = await harness.catalog.get("shots/sky")
    assert row is not None and row.version == V2
    # Delivered once more: still the newer asset's row.
    assert (await harness.post(delete_payload("shots/sky", V1), timestamp=NOW + 3)).status == 200
    assert await harness.ids() == {"shots/sky"}


async def test_an_older_upload_after_a_newer_one_changes_nothing(harness: Harness) -> None:
    assert (await harness.post(upload_payload(version=V2, width=90))).status == 200
    late = await harness.post(upload_payload(version=V1, width=300), timestamp=NOW + 1)
    assert late.status == 200 and "ignored" in late.body["result"]
    row = await harness.catalog.get("shots/sky")
    assert row is not None and (row.version, row.width) == (V2, 90)
    assert harness.results[-1]["kind"] == "upload"


async def test_a_rename_overtaking_its_upload_leaves_one_row_after_a_restart(
    harness: Harness, tmp_path: Path
) -> None:
    rename = upload_payload("b/renamed", version=V1, notification_type="rename")
    rename |= {"from_public_id": "a/two", "to_public_id": "b/renamed"}
    assert (await harness.post(rename)).status == 200
    restart(harness, tmp_path)
    late = await harness.post(upload_payload("a/two", version=V1), timestamp=NOW + 1)
    assert late.status == 200 and "ignored" in late.body["result"]
    assert await harness.ids() == {"b/renamed"}


def test_tombstones_survive_a_restart_keep_the_highest_version_and_expire(
    tmp_path: Path,
) -> None:
    now = [float(NOW)]
    path = tmp_path / "seen.sqlite3"
    seen = SeenNotifications(path, clock=lambda: now[0])
    seen.tombstones.record("sky", V2)
    seen.tombstones.record("sky", V1)  # a delayed delete of an older version
    seen.close()
    seen = SeenNotifications(path, clock=lambda: now[0])
    try:
        assert seen.tombstones.get("sky") == V2
        assert seen.tombstones.get("other") is None
        now[0] += 3 * 3600  # any upload it could stop is refused by its timestamp by now
        assert seen.tombstones.get("sky") is None
    finally:
        seen.close()


async def test_a_delete_whose_tombstone_cannot_be_written_answers_503_and_redelivers(
    harness: Harness, tmp_path: Path
) -> None:
    assert (await harness.post(upload_payload(version=V1))).status == 200
    working = harness.receiver.seen.tombstones
    broken = sqlite3.connect(tmp_path / "broken.sqlite3", check_same_thread=False)
    broken.close()  # every statement on it now raises sqlite3.ProgrammingError
    harness.receiver.seen.tombstones = DeletedVersions(broken, threading.Lock(), lambda: NOW)
    sent = await harness.post(delete_payload("shots/sky", V1), timestamp=NOW + 1)
    assert sent.status == 503 and "redeliver" in sent.body["error"]
    assert await harness.ids() == {"shots/sky"}  # not deleted without its tombstone
    harness.receiver.seen.tombstones = working
    again = await harness.post(delete_payload("shots/sky", V1), timestamp=NOW + 1)  # same one
    assert again.status == 200
    assert await harness.ids() == set()
    assert working.get("shots/sky") == V1
