"""Values that flow between the layers: assets, upload jobs, connection and change events.

All of them are frozen dataclasses or enums, so the store can hand them to subscribers
without copying and a reducer can never change one behind another's back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (every timestamp in the model is)."""
    return datetime.now(UTC)


def parse_timestamp(value: str | datetime | None) -> datetime | None:
    """Read an ISO-8601 timestamp (PostgREST, Cloudinary or SQLite) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    # Converted to UTC here, as documented: a far-off offset (a hostile realtime row's
    # `0001-01-01T00:00:00+23:59`) then fails now, where the row is read and skipped, instead
    # of with an OverflowError when the detail view or `--json` formats it.
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_timestamp(value: datetime | None) -> str | None:
    """The canonical text form: ISO-8601 in UTC with microseconds, e.g. `2026-01-02T03:04:05.000006+00:00`."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# Every catalogue column, in table order: the keys of `MediaAsset.to_json()`. The local SQLite
# schema, the Supabase writer and the schema tests all derive from this one list.
CATALOG_COLUMNS: tuple[str, ...] = (
    "id",
    "public_id",
    "resource_type",
    "format",
    "bytes",
    "width",
    "height",
    "duration",
    "url",
    "folder",
    "tags",
    "checksum",
    "original_filename",
    "version",
    "thumbnail",
    "created_at",
    "updated_at",
)
SERVER_COLUMNS = frozenset({"id", "created_at", "updated_at"})  # set by the catalogue, never sent


class ResourceType(StrEnum):
    """Cloudinary's resource types; audio counts as video, as Cloudinary files it."""

    IMAGE = "image"
    VIDEO = "video"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class MediaAsset:
    """One confirmed asset: a catalogue row describing a stored file.

    `public_id` is the identity everywhere (store key, upsert conflict target). `row_id` is the
    catalogue's own primary key, needed because a realtime DELETE may carry only that.
    `updated_at` orders versions of the same asset: an older one never replaces a newer one.
    """

    public_id: str
    resource_type: ResourceType = ResourceType.IMAGE
    format: str | None = None
    bytes: int = 0
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    url: str | None = None
    folder: str = ""
    tags: tuple[str, ...] = ()
    checksum: str | None = None
    original_filename: str | None = None
    version: int | None = None
    thumbnail: str | None = None
    row_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        """What the operator calls the asset: its original file name, else the id's last part."""
        return self.original_filename or self.public_id.rsplit("/", 1)[-1]

    def replace(self, **changes: Any) -> MediaAsset:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The asset as the `--json` outputs and the catalogue rows spell it."""
        return {
            "public_id": self.public_id,
            "resource_type": self.resource_type.value,
            "format": self.format,
            "bytes": self.bytes,
            "width": self.width,
            "height": self.height,
            "duration": self.duration,
            "url": self.url,
            "folder": self.folder,
            "tags": list(self.tags),
            "checksum": self.checksum,
            "original_filename": self.original_filename,
            "version": self.version,
            "thumbnail": self.thumbnail,
            "id": self.row_id,
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.updated_at),
        }

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> MediaAsset:
        """Build an asset from a catalogue row or a `to_json` dict; unknown keys are ignored."""
        tags = row.get("tags") or ()
        duration = row.get("duration")
        # A realtime payload is not checked against the table's types: a null public_id
        # would become the asset "None", and a number in a text column crashed the grid.
        if row["public_id"] is None or row["public_id"] == "":
            raise ValueError("a catalogue row without a public_id")
        return cls(
            public_id=str(row["public_id"]),
            resource_type=ResourceType(row.get("resource_type") or "image"),
            format=_text_or_none(row.get("format")),
            bytes=int(row.get("bytes") or 0),
            width=_int_or_none(row.get("width")),
            height=_int_or_none(row.get("height")),
            duration=float(duration) if duration is not None else None,
            url=_text_or_none(row.get("url") or row.get("secure_url")),
            folder=_text_or_none(row.get("folder")) or "",
            tags=tuple(str(t) for t in tags),
            checksum=_text_or_none(row.get("checksum")),
            original_filename=_text_or_none(row.get("original_filename")),
            version=_int_or_none(row.get("version")),
            thumbnail=_text_or_none(row.get("thumbnail")),
            row_id=_int_or_none(row.get("id")),
            created_at=parse_timestamp(row.get("created_at")),
            updated_at=parse_timestamp(row.get("updated_at")),
        )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _text_or_none(value: Any) -> str | None:
    """A text column's value; anything but a string (or null) makes the row unreadable."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected text, got {type(value).__name__}")


class JobState(StrEnum):
    """Where an upload job is. The first four are active; the rest are final."""

    QUEUED = "queued"
    UPLOADING = "uploading"
    SYNCING = "syncing"  # stored; the catalogue row is being written
    RETRYING = "retrying"  # waiting out a backoff after a transient error
    DONE = "done"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in _ACTIVE_STATES


_ACTIVE_STATES = frozenset(
    {JobState.QUEUED, JobState.UPLOADING, JobState.SYNCING, JobState.RETRYING}
)


@dataclass(frozen=True, slots=True)
class UploadJob:
    """One file on its way into the library.

    `public_id` is chosen when the job is queued, so the optimistic grid entry has its final
    identity from the first frame and a retried or resumed job overwrites instead of duplicating.
    """

    job_id: str
    path: Path
    public_id: str
    size: int
    resource_type: ResourceType = ResourceType.IMAGE
    folder: str = ""
    tags: tuple[str, ...] = ()
    state: JobState = JobState.QUEUED
    bytes_sent: int = 0
    bytes_per_second: float = 0.0
    attempts: int = 0
    error: str | None = None
    checksum: str | None = None
    queued_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def fraction(self) -> float:
        """Share of the bytes sent, 0.0–1.0 (an empty file counts as fully sent)."""
        if self.size <= 0:
            return 1.0
        return min(1.0, self.bytes_sent / self.size)

    @property
    def eta_seconds(self) -> float | None:
        if not self.state.active or self.bytes_per_second <= 0:
            return None
        return max(0.0, (self.size - self.bytes_sent) / self.bytes_per_second)

    def replace(self, **changes: Any) -> UploadJob:
        return dataclasses.replace(self, **changes)


class ConnectionState(StrEnum):
    """The live link to the catalogue's change feed, as the header badge shows it."""

    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class RemoteUpsert:
    """A row was inserted or updated in the catalogue (by us or anyone else)."""

    asset: MediaAsset


@dataclass(frozen=True, slots=True)
class RemoteDelete:
    """A row was deleted. Either key may be missing: with RLS on, only `row_id` arrives."""

    public_id: str | None
    row_id: int | None
    committed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Resync:
    """A full snapshot of the catalogue, taken after (re)subscribing so nothing missed is lost."""

    assets: tuple[MediaAsset, ...]
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    state: ConnectionState
    detail: str | None = None


ChangeEvent = RemoteUpsert | RemoteDelete | Resync | ConnectionChanged
