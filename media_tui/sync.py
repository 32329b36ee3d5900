"""Catch what the immediate sync missed: reconcile storage into the catalogue, apply notifications.

Uploads made through media-tui are written to the catalogue the moment they finish. Assets
also arrive and leave through Cloudinary's console, other tools, or a media-tui that crashed
between upload and catalogue write. Two ways bring the catalogue back in line:

- `reconcile()` lists storage and the catalogue and compares them: what storage holds and the
  catalogue lacks is added, rows that disagree with storage are updated, and rows whose asset
  is gone are reported (and deleted only when asked to prune);
- `apply_notification()` applies one Cloudinary notification (upload, delete, rename) — what
  the webhook receiver calls once a notification's signature has been checked.

Storage is the truth for what it knows (`Storage.sync_fields`); everything else on a row (the
original file name, a checksum storage does not carry) is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from media_tui.backends.base import Catalog, Storage
from media_tui.errors import MediaError, PermanentError
from media_tui.model import MediaAsset
from media_tui.operations import catalogue_rows
from media_tui.ordering import version_is_stale

log = logging.getLogger(__name__)

SyncOutcome = Literal["added", "updated", "gone", "pruned", "failed"]


@dataclass(frozen=True, slots=True)
class SyncItem:
    """What reconciliation did, or found, for one asset."""

    outcome: SyncOutcome
    public_id: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"public_id": self.public_id, "outcome": self.outcome, "error": self.error}


@dataclass
class SyncReport:
    """The whole run: counts, and every asset that needed attention."""

    in_storage: int = 0
    in_catalogue: int = 0
    unchanged: int = 0
    in_flight: int = 0  # stored, no row yet, and its name claimed: an upload still under way
    items: list[SyncItem] = field(default_factory=list)

    def count(self, outcome: SyncOutcome) -> int:
        return sum(1 for item in self.items if item.outcome == outcome)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": True,
            "in_storage": self.in_storage,
            "in_catalogue": self.in_catalogue,
            "unchanged": self.unchanged,
            "in_flight": self.in_flight,
            **{outcome: self.count(outcome) for outcome in SYNC_OUTCOMES},
        }

    def summary(self, prune_hint: str = "run with --prune to remove them") -> str:
        parts = [
            f"{self.in_storage:,} in storage, {self.in_catalogue:,} in the catalogue",
            f"{self.count('added'):,} added",
            f"{self.count('updated'):,} updated",
        ]
        gone, pruned = self.count("gone"), self.count("pruned")
        if pruned:
            parts.append(f"{pruned:,} rows of deleted assets pruned")
        if gone:
            parts.append(f"{gone:,} rows point at deleted assets ({prune_hint})")
        if self.in_flight:
            uploads = "upload" if self.in_flight == 1 else "uploads"
            parts.append(f"{self.in_flight:,} {uploads} under way left to their uploaders")
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        return "; ".join(parts) + "."


SYNC_OUTCOMES: tuple[SyncOutcome, ...] = ("added", "updated", "gone", "pruned", "failed")


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Where a reconciliation is: the phase, and how far into it."""

    phase: Literal["listing storage", "reading the catalogue", "reconciling", "done"]
    done: int = 0
    total: int | None = None
    item: SyncItem | None = None


ProgressSink = Callable[[SyncProgress], None]


def merged(row: MediaAsset | None, stored: MediaAsset, fields: tuple[str, ...]) -> MediaAsset:
    """`row` with storage's word on `fields`; a new row from storage when there was none."""
    if row is None:
        return stored.replace(row_id=None, updated_at=None)
    return row.replace(**{name: getattr(stored, name) for name in fields})


def differs(row: MediaAsset, stored: MediaAsset, fields: tuple[str, ...]) -> bool:
    return any(getattr(row, name) != getattr(stored, name) for name in fields)


async def reconcile(
    storage: Storage,
    catalog: Catalog,
    *,
    prune: bool = False,
    progress: ProgressSink | None = None,
) -> SyncReport:
    """Bring the catalogue in line with storage; see the module docstring.

    Each asset is its own step: one that fails is reported and the rest go on.
    """
    report = SyncReport()
    tell = progress or (lambda _: None)
    key_of = _key_function(storage)
    fields = storage.sync_fields

    stored: dict[str, MediaAsset] = {}
    async for asset in storage.list_assets():
        stored.setdefault(key_of(asset), asset)
        tell(SyncProgress("listing storage", len(stored)))
    report.in_storage = len(stored)

    rows: dict[str, list[MediaAsset]] = {}
    async for entry in catalogue_rows(catalog):
        report.in_catalogue += 1
        rows.setdefault(key_of(entry), []).append(entry)
        tell(SyncProgress("reading the catalogue", report.in_catalogue))

    # An upload between its bytes and its row holds a claim on its name: adding a row for it
    # here would race the uploader's own (and on the local library, where storage knows only
    # checksums, add a second row named after the hash).
    claims = await catalog.live_claims()
    claimed = {key_of(MediaAsset(c.public_id, checksum=c.checksum)) for c in claims}
    gone = [row for key, group in rows.items() if key not in stored for row in group]
    total = len(stored) + len(gone)
    done = 0

    def record(item: SyncItem) -> None:
        report.items.append(item)
        tell(SyncProgress("reconciling", done, total, item))

    for key, asset in stored.items():
        done += 1
        group = rows.get(key)
        if group and not any(differs(row, asset, fields) for row in group):
            report.unchanged += 1
            continue
        if not group and key in claimed:
            report.in_flight += 1
            continue
        targets: list[MediaAsset | None] = list(group) if group else [None]
        for row in targets:
            target = merged(row, asset, fields)
            try:
                await catalog.upsert(target)
            except MediaError as exc:
                record(SyncItem("failed", target.public_id, str(exc)))
            else:
                record(SyncItem("added" if row is None else "updated", target.public_id))

    for row in gone:
        done += 1
        if not prune:
            record(SyncItem("gone", row.public_id))
            continue
        try:
            await catalog.delete(row.public_id)
        except MediaError as exc:
            record(SyncItem("failed", row.public_id, str(exc)))
        else:
            record(SyncItem("pruned", row.public_id))

    tell(SyncProgress("done", total, total))
    log.info("sync: %s", report.summary())
    return report


def _key_function(storage: Storage) -> Callable[[MediaAsset], str]:
    # Cloudinary knows assets by public id; the local store knows only bytes (content-addressed),
    # so there a row matches the object its checksum names.
    if storage.sync_key == "checksum":
        return lambda asset: asset.checksum or f"\0{asset.public_id}"
    return lambda asset: asset.public_id


# ------------------------------------------------------------------ notifications
#
# Cloudinary redelivers a notification up to 3 times over ~9 minutes and deliveries race one
# another, so an upload can arrive after the delete that ended it and a delete after the upload
# that replaced it. Each notification is therefore ordered against what the catalogue holds by
# the asset's `version` (ordering rule 4) before anything is written; a delete leaves a tombstone,
# since once its row is gone the version to compare a late upload with would be gone too.


@dataclass(frozen=True, slots=True)
class Applied:
    """What one notification did to the catalogue, for the log and the receiver's answer."""

    kind: str
    public_ids: tuple[str, ...] = ()
    ignored: bool = False
    reason: str | None = None
    """Why the notification, or part of it, was not applied: it is older than what is known."""

    def describe(self) -> str:
        if self.ignored:
            why = self.reason or "nothing to change in the catalogue"
            return f"ignored a {self.kind} notification ({why})"
        ids = ", ".join(self.public_ids) or "nothing"
        applied = f"applied {self.kind}: {ids}"
        return f"{applied}; {self.reason}" if self.reason else applied


class AssetReader(Storage, Protocol):
    """Storage that can read an upload-shaped payload (Cloudinary's) as an asset."""

    def asset_from_info(self, info: Mapping[str, Any]) -> MediaAsset: ...


class NotificationTombstones(Protocol):
    """The latest version a delete notification ended, per public id.

    A delete removes the row, and with it the version a late upload would be compared with;
    the tombstone keeps that version so the upload is recognised as stale (ordering rule 4).
    The methods may block (SQLite): `apply_notification` calls them in a worker thread.
    """

    def get(self, public_id: str) -> int | None:
        """The highest version deleted under `public_id`, or None if none is known."""
        ...

    def record(self, public_id: str, version: int) -> None:
        """Remember `version` of `public_id` as deleted; a lower one never replaces a higher."""
        ...


async def apply_notification(
    payload: Mapping[str, Any],
    catalog: Catalog,
    storage: AssetReader,
    tombstones: NotificationTombstones | None = None,
) -> Applied:
    """Apply a verified Cloudinary notification: upload → upsert, delete → delete, rename → move.

    Each is ordered by the asset's `version` against the catalogue row's (and against
    `tombstones`, what earlier deletes ended), so a late or repeated delivery never brings back a
    deleted asset nor removes a newer one: such a notification is answered as ignored, with the
    reason. Without `tombstones` only the rows order notifications, and an upload arriving after
    its delete is applied. Idempotent for one notification: applying it twice leaves the
    catalogue as once. Raises PermanentError for a payload that lacks what its type needs.
    """
    kind = str(payload.get("notification_type") or "")
    if kind == "upload":
        return await _apply_upload(payload, catalog, storage, tombstones)
    if kind == "delete":
        return await _apply_delete(payload, catalog, tombstones)
    if kind == "rename":
        return await _apply_rename(payload, catalog, storage, tombstones)
    return Applied(kind or "untyped", ignored=True)


async def _apply_upload(
    payload: Mapping[str, Any],
    catalog: Catalog,
    storage: AssetReader,
    tombstones: NotificationTombstones | None,
) -> Applied:
    asset = _notified_asset(payload, storage)
    version = _version(payload.get("version"))
    existing = await catalog.get(asset.public_id)
    stale = await _why_stale(asset.public_id, version, existing, tombstones)
    if stale is not None:
        return Applied("upload", (asset.public_id,), ignored=True, reason=stale)
    saved = await catalog.upsert(merged(existing, asset, storage.sync_fields))
    return Applied("upload", (saved.public_id,))


async def _apply_delete(
    payload: Mapping[str, Any], catalog: Catalog, tombstones: NotificationTombstones | None
) -> Applied:
    resources = payload.get("resources")
    if not isinstance(resources, list):
        raise PermanentError("the delete notification has no list of resources.")
    removed: list[str] = []
    kept: list[str] = []
    for resource in resources:
        if not (isinstance(resource, Mapping) and resource.get("type", "upload") == "upload"):
            continue
        public_id = _public_id(resource.get("public_id"))
        version = _version(resource.get("version"))
        # Without a version there is nothing to order by: the delete applies, as it always did.
        if version is not None:
            # Recorded before the row goes, and whatever happens to the row: the delete did
            # happen in storage, and a late upload of this version must find it out.
            await _record_tombstone(tombstones, public_id, version)
            row = await catalog.get(public_id)
            if row is not None and version_is_stale(version, row.version):
                kept.append(f"{public_id} (at version {row.version}, newer than {version})")
                continue
        await catalog.delete(public_id)
        removed.append(public_id)
    if kept and not removed:
        return Applied("delete", ignored=True, reason=_kept_reason(kept))
    return Applied("delete", tuple(removed), reason=_kept_reason(kept) if kept else None)


async def _apply_rename(
    payload: Mapping[str, Any],
    catalog: Catalog,
    storage: AssetReader,
    tombstones: NotificationTombstones | None,
) -> Applied:
    source = _public_id(payload.get("from_public_id"))
    target = _public_id(payload.get("to_public_id"))
    asset = _notified_asset({**payload, "public_id": target}, storage)
    version = _version(payload.get("version"))
    source_row = await catalog.get(source)
    target_row = source_row if source == target else await catalog.get(target)
    # A source row newer than the rename is another asset uploaded under the old name since:
    # it is neither moved nor deleted (and what only the catalogue knows about it stays its own).
    newer_source = (
        source_row
        if source_row is not None and version_is_stale(version, source_row.version)
        else None
    )
    notes: list[str] = []

    stale = await _why_stale(target, version, target_row, tombstones)
    if stale is None:
        base = source_row if source_row is not None and newer_source is None else target_row
        await catalog.upsert(merged(base, asset, storage.sync_fields).replace(public_id=target))
    else:
        notes.append(f"{target} kept: {stale}")

    if source != target:
        if version is not None:
            # The old name no longer holds this version: a late upload of it must not return.
            await _record_tombstone(tombstones, source, version)
        if newer_source is not None:
            notes.append(f"{source} kept: at version {newer_source.version}, newer than {version}")
        else:
            await catalog.delete(source)
    reason = "; ".join(notes) or None
    if stale is not None and (source == target or newer_source is not None):
        return Applied("rename", (source, target), ignored=True, reason=reason)
    return Applied("rename", (source, target), reason=reason)


async def _why_stale(
    public_id: str,
    version: int | None,
    row: MediaAsset | None,
    tombstones: NotificationTombstones | None,
) -> str | None:
    """Why version `version` of `public_id` must not be written (rule 4), or None if it may."""
    if version is None:
        return None  # nothing to order by: applied as it comes, as before there was ordering
    if row is not None and version_is_stale(version, row.version):
        return f"{public_id} is at version {row.version} in the catalogue, newer than {version}"
    if tombstones is not None:
        deleted = await asyncio.to_thread(tombstones.get, public_id)
        # Deleted at `deleted` ends every version up to it; only a later upload is a new asset.
        # (Versions are whole seconds: a re-upload within the second of its delete looks the same
        # as the deleted one, and is ignored; the next `media-tui sync` adds it.)
        if deleted is not None and not version_is_stale(deleted, version):
            return f"{public_id} was deleted at version {deleted}, not older than {version}"
    return None


async def _record_tombstone(
    tombstones: NotificationTombstones | None, public_id: str, version: int
) -> None:
    if tombstones is not None:
        await asyncio.to_thread(tombstones.record, public_id, version)


def _kept_reason(kept: list[str]) -> str:
    return "re-uploaded since, their rows stay: " + ", ".join(kept)


def _version(value: object) -> int | None:
    """An asset version from a payload: an int, or digits (leniently); None when absent or odd."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _public_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise PermanentError("the notification names no public_id.")
    return value


def _notified_asset(payload: Mapping[str, Any], storage: AssetReader) -> MediaAsset:
    _public_id(payload.get("public_id"))
    try:
        asset = storage.asset_from_info(payload)
    except (KeyError, ValueError, TypeError) as exc:
        raise PermanentError(f"the notification's asset could not be read ({exc}).") from exc
    original = payload.get("original_filename")
    if isinstance(original, str) and original:
        fmt = payload.get("format")
        asset = asset.replace(original_filename=f"{original}.{fmt}" if fmt else original)
    return asset
