"""In-memory Storage and Catalog for unit tests of the upload queue.

They follow the protocols in `media_tui.backends.base` and let a test script failures and hold
a transfer at a gate, so retry, cancel and pause can be checked without timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from media_tui.backends.base import (
    CatalogDigest,
    CatalogPage,
    NameClaim,
    ProgressCallback,
    UploadRequest,
)
from media_tui.model import MediaAsset, utcnow


class FakeStorage:
    name = "fake"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: list[str] = []  # public ids, one per attempt
        self.failures: list[Exception] = []  # raised, in order, by the next attempts
        self.gate: asyncio.Event | None = None  # when set, transfers wait for it mid-way
        self.started = asyncio.Event()
        self.on_attempt: Callable[[UploadRequest], None] | None = None

    async def upload(self, request: UploadRequest, progress: ProgressCallback) -> MediaAsset:
        self.uploads.append(request.public_id)
        self.started.set()
        if self.on_attempt is not None:
            self.on_attempt(request)
        if self.failures:
            raise self.failures.pop(0)
        data = request.path.read_bytes()
        progress(len(data) // 2)
        if self.gate is not None:
            await self.gate.wait()
        progress(len(data))
        self.objects[request.public_id] = data
        return MediaAsset(
            public_id=request.public_id,
            resource_type=request.resource_type,
            bytes=len(data),
            checksum=request.checksum,
            folder=request.folder,
            tags=request.tags,
            original_filename=request.path.name,
            url=f"fake://{request.public_id}",
        )

    async def delete(self, asset: MediaAsset) -> None:
        self.objects.pop(asset.public_id, None)

    async def list_assets(self) -> AsyncIterator[MediaAsset]:
        for public_id in list(self.objects):
            yield MediaAsset(public_id=public_id)

    async def aclose(self) -> None:
        pass


class FakeCatalog:
    name = "fake"

    def __init__(self) -> None:
        self.rows: dict[str, MediaAsset] = {}
        self.failures: list[Exception] = []
        self.upserts = 0
        self.claims: dict[str, NameClaim] = {}
        self._next_id = 1

    async def page(
        self, *, offset: int = 0, limit: int = 1000, folder: str | None = None
    ) -> CatalogPage:
        rows = [a for a in self.rows.values() if folder is None or a.folder == folder]
        return CatalogPage(assets=tuple(rows[offset : offset + limit]), total=len(rows))

    async def get(self, public_id: str) -> MediaAsset | None:
        return self.rows.get(public_id)

    async def find_by_checksum(self, checksum: str) -> MediaAsset | None:
        return next((a for a in self.rows.values() if a.checksum == checksum), None)

    async def upsert(self, asset: MediaAsset) -> MediaAsset:
        if self.failures:
            raise self.failures.pop(0)
        self.upserts += 1
        old = self.rows.get(asset.public_id)
        now = utcnow()
        if old is not None and old.updated_at is not None and now <= old.updated_at:
            now = old.updated_at + timedelta(microseconds=1)
        row_id = old.row_id if old is not None else self._next_id
        self._next_id += old is None
        stored = asset.replace(
            row_id=row_id, created_at=old.created_at if old else now, updated_at=now
        )
        self.rows[asset.public_id] = stored
        return stored

    async def delete(self, public_id: str) -> bool:
        return self.rows.pop(public_id, None) is not None

    async def digest(self) -> CatalogDigest:
        stamps = [a.updated_at for a in self.rows.values() if a.updated_at is not None]
        return CatalogDigest(count=len(self.rows), newest=max(stamps, default=None))

    async def count_by_checksum(self, checksum: str) -> int:
        return sum(1 for a in self.rows.values() if a.checksum == checksum)

    async def claim_name(self, public_id: str, checksum: str, owner: str, ttl: float) -> NameClaim:
        now = utcnow()
        held = self.claims.get(public_id)
        if held is not None and held.owner != owner and held.expires_at > now:
            return held
        claim = NameClaim(public_id, checksum, owner, now + timedelta(seconds=ttl))
        self.claims[public_id] = claim
        return claim

    async def release_name(self, public_id: str, owner: str) -> None:
        if (held := self.claims.get(public_id)) is not None and held.owner == owner:
            del self.claims[public_id]

    async def live_claims(self) -> list[NameClaim]:
        now = utcnow()
        return [c for c in self.claims.values() if c.expires_at > now]

    async def aclose(self) -> None:
        pass
