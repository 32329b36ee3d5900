"""SQLite plumbing shared by the local catalogue and the local change feed.

- `DbWorker`: one connection owned by one dedicated thread. sqlite3 calls block, so they
  never run on the event loop; a single thread per connection keeps sqlite3's
  same-thread rule and serialises the connection's use without locks.
- Transactions, error translation (sqlite3 errors → operator-ready Transient/PermanentError),
  and the read queries both users need (row → MediaAsset, snapshot, change log tail).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from media_tui.errors import MediaError, PermanentError, TransferError, TransientError
from media_tui.model import ChangeEvent, MediaAsset, RemoteDelete, RemoteUpsert, parse_timestamp

T = TypeVar("T")

CATALOG_FILENAME = "catalog.sqlite3"
DEFAULT_BUSY_TIMEOUT = 5.0
"""Seconds a write waits for another writer (another process, a sqlite3 shell) to finish."""


class ChangesPruned(MediaError):
    """The change log no longer holds the changes after the requested seq: take a snapshot."""


def open_connection(
    db_path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> sqlite3.Connection:
    """Open the catalogue file with the pragmas every connection needs (blocking).

    `isolation_level=None` turns off the sqlite3 module's implicit transactions: we issue
    BEGIN/COMMIT ourselves, so a read snapshot or a write lock lasts exactly as long as meant.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=busy_timeout, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        # WAL: readers (the feed, another process's TUI) never block the writer or each other.
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode; only a power cut can lose
        # the last commits, never corrupt the file — the usual trade for a desktop catalogue.
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT: take the write lock up front.

    A deferred transaction that reads and then writes can fail with SQLITE_BUSY at once,
    ignoring busy_timeout, when another connection committed in between; IMMEDIATE waits.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One consistent WAL snapshot for every statement inside."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def translate_error(exc: sqlite3.Error, db_path: Path) -> TransferError:
    """Turn a sqlite3 error into one clear sentence, transient only when waiting can help."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc):
        return TransientError(
            f"The catalogue {db_path} is locked by another program (another media-tui or a "
            "sqlite3 shell in the middle of a write); try again in a moment."
        )
    if primary in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return PermanentError(
            f"{db_path} is not a readable media-tui catalogue ({exc}); move it aside or "
            "restore it from a backup."
        )
    if primary == sqlite3.SQLITE_FULL:
        return PermanentError(
            f"The disk holding the catalogue {db_path} is full; free some space and try again."
        )
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY):
        return PermanentError(
            f"media-tui cannot open or write the catalogue {db_path} ({exc}); check that the "
            "library folder exists and is writable."
        )
    return PermanentError(f"The catalogue {db_path} failed: {exc}.")


class DbWorker:
    """One SQLite connection and the single thread allowed to use it.

    The connection is opened lazily, in that thread, by the first `run`; `setup` runs right
    after opening (migrations for the catalogue, a version check for a reader). If opening
    fails the next `run` tries again, so a locked or newer file does not wedge the worker.
    """

    def __init__(
        self,
        db_path: Path,
        *,
        setup: Callable[[sqlite3.Connection], None],
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        thread_name: str = "media-tui-sqlite",
    ) -> None:
        self.db_path = db_path
        self._setup = setup
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in the worker thread and return its result."""
        if self._closed:
            raise PermanentError(f"The catalogue {self.db_path} has been closed.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    async def aclose(self) -> None:
        """Close the connection (in its own thread) and let the thread end. Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._close_connection)
        finally:
            self._executor.shutdown(wait=False)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._connection())
        except sqlite3.Error as exc:
            raise translate_error(exc, self.db_path) from exc
        except OSError as exc:  # the library folder could not be created
            raise PermanentError(
                f"media-tui cannot create the library folder {self.db_path.parent} "
                f"({exc.strerror or exc}); check the path and its permissions."
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = open_connection(self.db_path, self._busy_timeout)
            try:
                self._setup(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- reading rows and the change log -------------------------------------------------------


def row_to_asset(row: sqlite3.Row) -> MediaAsset:
    """An `assets` row as a MediaAsset (tags are stored as JSON text)."""
    data: dict[str, Any] = {key: row[key] for key in row.keys()}  # noqa: SIM118 - Row is not a dict
    data["tags"] = json.loads(data.get("tags") or "[]")
    return MediaAsset.from_json(data)


def latest_change_seq(conn: sqlite3.Connection) -> int:
    """The highest seq ever given to a change (0 for none); survives pruning and hand deletes."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return int(row[0]) if row else 0


def oldest_kept_seq(conn: sqlite3.Connection) -> int:
    """The smallest seq still in the log; if the log is empty, the next seq to be given."""
    row = conn.execute("SELECT min(seq) FROM changes").fetchone()
    return int(row[0]) if row[0] is not None else latest_change_seq(conn) + 1


def read_snapshot(conn: sqlite3.Connection) -> tuple[list[MediaAsset], int]:
    """Every asset plus the latest change seq, from one read transaction (so they agree)."""
    with read_transaction(conn):
        rows = conn.execute("SELECT * FROM assets ORDER BY created_at DESC, id DESC").fetchall()
        seq = latest_change_seq(conn)
    return [row_to_asset(row) for row in rows], seq


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """Changes after some seq, in order. `behind`: some of them were pruned (take a snapshot)."""

    changes: tuple[tuple[int, ChangeEvent], ...]
    latest_seq: int
    behind: bool


def read_changes_since(conn: sqlite3.Connection, seq: int, limit: int) -> ChangeBatch:
    """Up to `limit` changes with seq > `seq`, oldest first, and whether any were lost.

    SQLite serialises writers and assigns seq inside the write transaction, so seqs become
    visible in order: having seen seq N means every change up to N has been seen.
    """
    with read_transaction(conn):
        behind = oldest_kept_seq(conn) > seq + 1
        latest = latest_change_seq(conn)
        rows = [] if behind else _change_rows(conn, seq, limit)
    changes = tuple((int(row["seq"]), _change_event(row)) for row in rows)
    return ChangeBatch(changes=changes, latest_seq=latest, behind=behind)


def _change_rows(conn: sqlite3.Connection, seq: int, limit: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT seq, op, row_id, public_id, row, committed_at FROM changes "
        "WHERE seq > ? ORDER BY seq LIMIT ?",
        (seq, limit),
    ).fetchall()


def _change_event(row: sqlite3.Row) -> ChangeEvent:
    if row["op"] == "delete":
        return RemoteDelete(
            public_id=row["public_id"],
            row_id=row["row_id"],
            committed_at=parse_timestamp(row["committed_at"]),
        )
    return RemoteUpsert(MediaAsset.from_json(json.loads(row["row"])))
