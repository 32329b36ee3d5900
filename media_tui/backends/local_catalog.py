"""LocalCatalog: the asset table in `<library>/catalog.sqlite3` (SQLite, WAL mode).

Every database call runs in one dedicated thread that owns the connection (see `DbWorker`),
so the event loop never blocks on disk or on another process's write lock. Writes take the
lock up front (`BEGIN IMMEDIATE`); after each commit the catalogue pokes its commit
listeners, which is how this process's change feed sees its own writes with no polling delay.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from media_tui.backends.base import CatalogDigest, CatalogPage, NameClaim
from media_tui.backends.local_db import (
    CATALOG_FILENAME,
    DEFAULT_BUSY_TIMEOUT,
    ChangesPruned,
    DbWorker,
    read_changes_since,
    read_snapshot,
    read_transaction,
    row_to_asset,
    write_transaction,
)
from media_tui.backends.local_schema import ASSET_COLUMNS, migrate
from media_tui.model import ChangeEvent, MediaAsset, format_timestamp, parse_timestamp, utcnow

KEEP_CHANGES = 50_000
"""How many of the newest change-log entries survive pruning."""

_PRUNE_EVERY_WRITES = 1_000
_LOOKUP_CHUNK = 10_000  # public ids per "what is already there" query in upsert_many
_ONE_MICROSECOND = timedelta(microseconds=1)

_WRITE_COLUMNS = tuple(c for c in ASSET_COLUMNS if c != "id")
# On conflict everything is replaced except the identity and the first insert's created_at.
_UPDATED_COLUMNS = tuple(c for c in _WRITE_COLUMNS if c not in ("public_id", "created_at"))
_UPSERT_SQL = (
    f"INSERT INTO assets ({', '.join(_WRITE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _WRITE_COLUMNS)}) "
    "ON CONFLICT (public_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPDATED_COLUMNS)
)

CommitListener = Callable[[], None]


class LocalCatalog:
    """The `Catalog` protocol over SQLite, plus snapshot/change-log reads for the feed."""

    name = "local"

    def __init__(
        self,
        library_dir: Path,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        keep_changes: int = KEEP_CHANGES,
    ) -> None:
        self.library_dir = Path(library_dir)
        self.db_path = self.library_dir / CATALOG_FILENAME
        self.busy_timeout = busy_timeout
        self.keep_changes = max(1, keep_changes)
        self._worker = DbWorker(
            self.db_path,
            setup=self._on_connect,
            busy_timeout=busy_timeout,
            thread_name="media-tui-catalog",
        )
        # Listeners are added on the loop thread and read in the worker thread.
        self._listeners_lock = threading.Lock()
        self._listeners: dict[int, tuple[asyncio.AbstractEventLoop, CommitListener]] = {}
        self._next_listener_id = 0
        self._writes_since_prune = 0  # worker thread only

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> LocalCatalog:
        """Open the file and migrate it now (otherwise the first call does), surfacing errors early."""
        await self._worker.run(lambda _conn: None)
        return self

    async def aclose(self) -> None:
        await self._worker.aclose()

    def _on_connect(self, conn: sqlite3.Connection) -> None:
        migrate(conn, self.db_path)
        self._prune(conn)

    # --- the Catalog protocol ----------------------------------------------------------------

    async def page(
        self, *, offset: int = 0, limit: int = 1000, folder: str | None = None
    ) -> CatalogPage:
        """Newest first (created_at, then id, descending); `folder` matches exactly."""
        return await self._worker.run(
            lambda conn: _page(conn, max(0, offset), max(0, limit), folder)
        )

    async def get(self, public_id: str) -> MediaAsset | None:
        return await self._worker.run(lambda conn: _one(conn, "public_id = ?", public_id))

    async def find_by_checksum(self, checksum: str) -> MediaAsset | None:
        """The oldest asset with these exact bytes, if any."""
        return await self._worker.run(lambda conn: _one(conn, "checksum = ?", checksum))

    async def count_by_checksum(self, checksum: str) -> int:
        """How many rows point at these bytes (delete the stored object only when it is 0)."""
        sql = "SELECT count(*) FROM assets WHERE checksum = ?"
        return await self._worker.run(
            lambda conn: int(conn.execute(sql, (checksum,)).fetchone()[0])
        )

    async def digest(self) -> CatalogDigest:
        """Row count and newest `updated_at` in one statement (one consistent read)."""
        return await self._worker.run(_digest)

    async def upsert(self, asset: MediaAsset) -> MediaAsset:
        """Insert or update by public_id; the catalogue sets updated_at (and created_at once)."""
        return await self._worker.run(lambda conn: self._upsert(conn, asset))

    async def upsert_many(self, assets: Iterable[MediaAsset]) -> int:
        """Upsert many assets in one transaction (for seeding and sync); returns how many."""
        batch = list(assets)
        return await self._worker.run(lambda conn: self._upsert_many(conn, batch))

    async def delete(self, public_id: str) -> bool:
        return await self._worker.run(lambda conn: self._delete(conn, public_id))

    async def claim_name(self, public_id: str, checksum: str, owner: str, ttl: float) -> NameClaim:
        """Claim a name in one write transaction, so two processes can't both get it."""
        return await self._worker.run(lambda conn: _claim(conn, public_id, checksum, owner, ttl))

    async def release_name(self, public_id: str, owner: str) -> None:
        sql = "DELETE FROM claims WHERE public_id = ? AND owner = ?"

        def release(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                conn.execute(sql, (public_id, owner))

        await self._worker.run(release)

    async def live_claims(self) -> list[NameClaim]:
        now = format_timestamp(utcnow())
        sql = "SELECT * FROM claims WHERE expires_at > ? ORDER BY public_id"
        return await self._worker.run(
            lambda conn: [_claim_of(row) for row in conn.execute(sql, (now,))]
        )

    # --- for the change feed and maintenance -------------------------------------------------

    async def snapshot(self) -> tuple[list[MediaAsset], int]:
        """All assets and the latest change seq, read in one transaction so they agree."""
        return await self._worker.run(read_snapshot)

    async def changes_since(self, seq: int, limit: int = 1000) -> list[tuple[int, ChangeEvent]]:
        """Up to `limit` changes after `seq`, oldest first.

        Raises ChangesPruned when some of them have been pruned from the log; take a
        `snapshot()` and continue from its seq.
        """
        batch = await self._worker.run(lambda conn: read_changes_since(conn, seq, limit))
        if batch.behind:
            raise ChangesPruned(
                f"The change log of {self.db_path} no longer holds the changes after #{seq}; "
                "take a fresh snapshot."
            )
        return list(batch.changes)

    async def prune_changes(self) -> int:
        """Drop change-log entries beyond the newest `keep_changes`; returns how many went."""
        return await self._worker.run(self._prune)

    def add_commit_listener(self, callback: CommitListener) -> Callable[[], None]:
        """Call `callback` on the current event loop after each commit made through this object.

        Returns a function that removes the listener. Commits by other connections are not
        reported here; the feed notices those through `PRAGMA data_version`.
        """
        loop = asyncio.get_running_loop()
        with self._listeners_lock:
            key = self._next_listener_id
            self._next_listener_id += 1
            self._listeners[key] = (loop, callback)

        def remove() -> None:
            with self._listeners_lock:
                self._listeners.pop(key, None)

        return remove

    # --- worker-thread side ------------------------------------------------------------------

    def _upsert(self, conn: sqlite3.Connection, asset: MediaAsset) -> MediaAsset:
        with write_transaction(conn):
            _write_assets(conn, [asset])
            stored = _one(conn, "public_id = ?", asset.public_id)
        self._after_commit(conn, 1)
        assert stored is not None  # we just wrote it, inside the same transaction
        return stored

    def _upsert_many(self, conn: sqlite3.Connection, assets: Sequence[MediaAsset]) -> int:
        if not assets:
            return 0
        with write_transaction(conn):
            _write_assets(conn, assets)
        self._after_commit(conn, len(assets))
        return len(assets)

    def _delete(self, conn: sqlite3.Connection, public_id: str) -> bool:
        with write_transaction(conn):
            deleted = conn.execute("DELETE FROM assets WHERE public_id = ?", (public_id,)).rowcount
        if deleted:
            self._after_commit(conn, 1)
        return deleted > 0

    def _after_commit(self, conn: sqlite3.Connection, writes: int) -> None:
        self._notify_listeners()
        self._writes_since_prune += writes
        if self._writes_since_prune >= _PRUNE_EVERY_WRITES:
            self._prune(conn)

    def _prune(self, conn: sqlite3.Connection) -> int:
        self._writes_since_prune = 0
        with write_transaction(conn):
            removed = conn.execute(
                "DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?",
                (self.keep_changes,),
            ).rowcount
        return removed

    def _notify_listeners(self) -> None:
        with self._listeners_lock:
            targets = list(self._listeners.values())
        for loop, callback in targets:
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:  # that loop has closed; its listener is moot
                continue


# --- queries (worker thread) -------------------------------------------------------------------


def _page(conn: sqlite3.Connection, offset: int, limit: int, folder: str | None) -> CatalogPage:
    where, params = ("WHERE folder = ?", (folder,)) if folder is not None else ("", ())
    with read_transaction(conn):
        total = int(conn.execute(f"SELECT count(*) FROM assets {where}", params).fetchone()[0])
        rows = conn.execute(
            f"SELECT * FROM assets {where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
    return CatalogPage(assets=tuple(row_to_asset(row) for row in rows), total=total)


def _claim(
    conn: sqlite3.Connection, public_id: str, checksum: str, owner: str, ttl: float
) -> NameClaim:
    """Grant the claim if the name is free, ours already, or its holder's claim expired."""
    now = utcnow()
    with write_transaction(conn):  # BEGIN IMMEDIATE: the read and the write are one step
        row = conn.execute("SELECT * FROM claims WHERE public_id = ?", (public_id,)).fetchone()
        if row is not None:
            held = _claim_of(row)
            if held.owner != owner and held.expires_at > now:
                return held
        claim = NameClaim(public_id, checksum, owner, now + timedelta(seconds=ttl))
        conn.execute(
            "INSERT OR REPLACE INTO claims (public_id, checksum, owner, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (public_id, checksum, owner, format_timestamp(claim.expires_at)),
        )
    return claim


def _claim_of(row: sqlite3.Row) -> NameClaim:
    expires_at = parse_timestamp(row["expires_at"])
    assert expires_at is not None  # NOT NULL, CHECKed to be a date-time
    return NameClaim(row["public_id"], row["checksum"], row["owner"], expires_at)


def _digest(conn: sqlite3.Connection) -> CatalogDigest:
    # updated_at is stored in one fixed-width UTC form (`format_timestamp`), so the text
    # maximum is the newest instant.
    count, newest = conn.execute("SELECT count(*), max(updated_at) FROM assets").fetchone()
    return CatalogDigest(count=int(count), newest=parse_timestamp(newest))


def _one(conn: sqlite3.Connection, condition: str, value: str) -> MediaAsset | None:
    row = conn.execute(
        f"SELECT * FROM assets WHERE {condition} ORDER BY id LIMIT 1", (value,)
    ).fetchone()
    return row_to_asset(row) if row is not None else None


def _write_assets(conn: sqlite3.Connection, assets: Sequence[MediaAsset]) -> None:
    """Upsert rows inside the caller's write transaction, stamping updated_at per row."""
    now = utcnow()
    previous = _previous_updated_at(conn, [a.public_id for a in assets])
    params = []
    for asset in assets:
        updated_at = _next_updated_at(now, previous.get(asset.public_id))
        previous[asset.public_id] = updated_at  # the same id twice in one batch still advances
        params.append(_row_params(asset, created_at=asset.created_at or now, updated_at=updated_at))
    conn.executemany(_UPSERT_SQL, params)


def _previous_updated_at(conn: sqlite3.Connection, public_ids: list[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for start in range(0, len(public_ids), _LOOKUP_CHUNK):
        chunk = json.dumps(public_ids[start : start + _LOOKUP_CHUNK])
        rows = conn.execute(
            "SELECT public_id, updated_at FROM assets "
            "WHERE public_id IN (SELECT value FROM json_each(?))",
            (chunk,),
        )
        for public_id, updated_at in rows:
            stamp = parse_timestamp(updated_at)
            if stamp is not None:
                found[public_id] = stamp
    return found


def _next_updated_at(now: datetime, previous: datetime | None) -> datetime:
    """Now, but strictly after the row's previous version, so versions are totally ordered
    even when two writes land in the same microsecond or the clock stepped back."""
    if previous is None or now > previous:
        return now
    return previous + _ONE_MICROSECOND


def _row_params(
    asset: MediaAsset, *, created_at: datetime, updated_at: datetime
) -> tuple[Any, ...]:
    values: dict[str, Any] = {
        "public_id": asset.public_id,
        "resource_type": asset.resource_type.value,
        "format": asset.format,
        "bytes": asset.bytes,
        "width": asset.width,
        "height": asset.height,
        "duration": asset.duration,
        "url": asset.url,
        "folder": asset.folder,
        "tags": json.dumps(list(asset.tags)),
        "checksum": asset.checksum,
        "original_filename": asset.original_filename,
        "version": asset.version,
        "thumbnail": asset.thumbnail,
        "created_at": format_timestamp(created_at),
        "updated_at": format_timestamp(updated_at),
    }
    return tuple(values[column] for column in _WRITE_COLUMNS)
