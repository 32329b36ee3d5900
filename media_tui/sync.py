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

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from media_tui.backends.base import Catalog, Storage
from media_tui.errors import MediaError, PermanentError
from media_tui.model import MediaAsset
from media_tui.operations import catalogue_rows

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


@dataclass(frozen=True, slots=True)
class Applied:
    """What one notification did to the catalogue, for the log and the receiver's answer."""

    kind: str
    public_ids: tuple[str, ...] = ()
    ignored: bool = False

    def describe(self) -> str:
        if self.ignored:
            return f"ignored a {self.kind} notification (nothing to change in the catalogue)"
        ids = ", ".join(self.public_ids) or "nothing"
        return f"applied {self.kind}: {ids}"


class AssetReader(Storage, Protocol):
    """Storage that can read an upload-shaped payload (Cloudinary's) as an asset."""

    def asset_from_info(self, info: Mapping[str, Any]) -> MediaAsset: ...


async def apply_notification(
    payload: Mapping[str, Any], catalog: Catalog, storage: AssetReader
) -> Applied:
    """Apply a verified Cloudinary notification: upload → upsert, delete → delete, rename → move.

    Idempotent for one notification: applying it twice leaves the catalogue as once.
    Raises PermanentError for a payload that lacks what its type needs.
    """
    kind = str(payload.get("notification_type") or "")
    if kind == "upload":
        asset = _notified_asset(payload, storage)
        existing = await catalog.get(asset.public_id)
        saved = await catalog.upsert(merged(existing, asset, storage.sync_fields))
        return Applied(kind, (saved.public_id,))
    if kind == "delete":
        resources = payload.get("resources")
        if not isinstance(resources, list):
            raise PermanentError("the delete notification has no list of resources.")
        removed = []
        for resource in resources:
            if isinstance(resource, Mapping) and resource.get("type", "upload") == "upload":
                public_id = _public_id(resource.get("public_id"))
                await catalog.delete(public_id)
                removed.append(public_id)
        return Applied(kind, tuple(removed))
    if kind == "rename":
        source = _public_id(payload.get("from_public_id"))
        target = _public_id(payload.get("to_public_id"))
        asset = _notified_asset({**payload, "public_id": target}, storage)
        old = await catalog.get(source) or await catalog.get(target)
        await catalog.upsert(merged(old, asset, storage.sync_fields).replace(public_id=target))
        if source != target:
            await catalog.delete(source)
        return Applied(kind, (source, target))
    return Applied(kind or "untyped", ignored=True)


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
