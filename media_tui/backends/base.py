"""The three backend protocols: Storage, Catalog and ChangeFeed.

Each has a local implementation (a library folder with SQLite) and a cloud one (Cloudinary,
Supabase). Storage and catalogue are chosen independently. Everything above this layer —
the upload queue, the CLI, the TUI — talks only to these protocols.

Errors: implementations raise `TransientError` for what a retry can fix and `PermanentError`
for what it cannot, each with an operator-ready message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from media_tui.content import Fingerprint
from media_tui.model import ChangeEvent, ConnectionState, MediaAsset, ResourceType

ProgressCallback = Callable[[int], None]
"""Called with the total number of bytes sent so far (monotonic, ends at the file size)."""


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What to store: the file and the identity and metadata it should carry."""

    path: Path
    public_id: str
    resource_type: ResourceType
    size: int
    checksum: str  # sha256 hex of the file's bytes
    folder: str = ""
    tags: tuple[str, ...] = ()
    md5: str | None = None  # md5 hex of the same bytes: what Cloudinary reports as `etag`
    # The file's bytes when they were read whole to be hashed (small files): storage sends
    # exactly these and does not open the file again. Otherwise storage streams the file and
    # must check it still has these size and hashes (`media_tui.content.StreamVerifier`).
    content: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(self.size, self.checksum, self.md5 or "")


@dataclass(frozen=True, slots=True)
class CatalogPage:
    assets: tuple[MediaAsset, ...]
    total: int


@dataclass(frozen=True, slots=True)
class CatalogDigest:
    """What the consistency probe compares with the store: how many rows, and the newest write."""

    count: int
    newest: datetime | None


@dataclass(frozen=True, slots=True)
class NameClaim:
    """Who may write bytes under a public id right now: one job, for one checksum, until `expires_at`.

    A claim lives from before the bytes move until the catalogue row is written; after that the
    row itself says whose bytes the name holds. See `Catalog.claim_name`.
    """

    public_id: str
    checksum: str
    owner: str  # the job id
    expires_at: datetime


class Storage(Protocol):
    """Where the bytes live.

    For reconciliation (`sync`): `sync_key` is what storage knows an asset by ("public_id", or
    "checksum" for content-addressed storage), and `sync_fields` the asset fields it is the
    authority on — a catalogue row that disagrees on one of them is out of date.
    """

    name: str
    sync_key: Literal["public_id", "checksum"]
    sync_fields: tuple[str, ...]

    async def upload(self, request: UploadRequest, progress: ProgressCallback) -> MediaAsset:
        """Store the file and return the asset describing it (not yet in the catalogue)."""
        ...

    async def delete(self, asset: MediaAsset) -> None:
        """Remove the stored file; an asset already gone counts as deleted."""
        ...

    def list_assets(self) -> AsyncIterator[MediaAsset]:
        """Every stored asset, for reconciliation with the catalogue."""
        ...

    async def aclose(self) -> None: ...


class Catalog(Protocol):
    """The table of assets."""

    name: str

    async def page(
        self, *, offset: int = 0, limit: int = 1000, folder: str | None = None
    ) -> CatalogPage:
        """Assets newest first, `limit` from `offset`, with the total matching count."""
        ...

    async def get(self, public_id: str) -> MediaAsset | None: ...

    async def find_by_checksum(self, checksum: str) -> MediaAsset | None:
        """An asset with these exact bytes, if the catalogue holds one (for dedupe)."""
        ...

    async def upsert(self, asset: MediaAsset) -> MediaAsset:
        """Insert or update by `public_id`; return the row as stored (row id, timestamps)."""
        ...

    async def delete(self, public_id: str) -> bool:
        """Delete by `public_id`; return whether a row was there."""
        ...

    async def count_by_checksum(self, checksum: str) -> int:
        """How many rows point at these bytes."""
        ...

    async def digest(self) -> CatalogDigest:
        """The row count and the newest `updated_at`, for the consistency probe (one cheap query)."""
        ...

    async def claim_name(self, public_id: str, checksum: str, owner: str, ttl: float) -> NameClaim:
        """Claim `public_id` for `owner`'s bytes atomically, in the catalogue's own store.

        The claim is granted (and returned) when nobody holds the name, when `owner` already
        does (a resumed job; the expiry is renewed), or when the holder's claim has expired (a
        crashed job). Otherwise the holder's claim is returned unchanged. Atomic across
        processes: of two callers at the same moment exactly one is granted.
        """
        ...

    async def release_name(self, public_id: str, owner: str) -> None:
        """Drop `owner`'s claim on `public_id` (nothing happens if it is not theirs)."""
        ...

    async def live_claims(self) -> list[NameClaim]:
        """Every claim that has not expired: uploads under way somewhere (for `sync`)."""
        ...

    async def aclose(self) -> None: ...


class ChangeFeed(Protocol):
    """Every change to the catalogue, ours and other operators', as a stream of events.

    The stream starts with `ConnectionChanged` and a `Resync` snapshot, and sends another
    `Resync` after every reconnect, so a consumer that applies events in order converges.
    """

    name: str

    @property
    def state(self) -> ConnectionState: ...

    def events(self) -> AsyncIterator[ChangeEvent]: ...

    @property
    def backlog(self) -> int:
        """Events received but not yet handed to the consumer (0 when it has caught up)."""
        ...

    def request_resync(self) -> None:
        """Make the running `events()` stream send a fresh `Resync` soon (the consistency
        probe's repair); taken the same way as after a reconnect. Never blocks or raises."""
        ...

    async def aclose(self) -> None: ...
