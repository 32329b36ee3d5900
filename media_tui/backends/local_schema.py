"""The local catalogue's SQLite schema and its migrations.

The schema version lives in `PRAGMA user_version`. `MIGRATIONS[n]` takes a database from
version n to n+1; they run in order when a catalogue is opened, each in its own write
transaction. A file whose version is newer than `SCHEMA_VERSION` was written by a newer
media-tui and is refused rather than guessed at.

Every change to `assets` — ours, another process's, or a hand edit in the sqlite3 shell — is
recorded in `changes` by triggers, which is what the local change feed tails.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from media_tui.backends.local_db import write_transaction
from media_tui.errors import PermanentError
from media_tui.model import CATALOG_COLUMNS

ASSET_COLUMNS = CATALOG_COLUMNS

# `strftime('%f')` gives milliseconds; padding to microseconds and adding the offset makes
# SQL-made timestamps the same shape as `model.format_timestamp`, so text order = time order.
NOW_SQL = "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')"


def _row_json(alias: str) -> str:
    """`json_object(...)` of an assets row, tags as a real JSON array, as MediaAsset.from_json reads it."""
    parts = []
    for column in ASSET_COLUMNS:
        value = f"json({alias}.tags)" if column == "tags" else f"{alias}.{column}"
        parts.append(f"'{column}', {value}")
    return "json_object(" + ", ".join(parts) + ")"


def _is_timestamp(column: str) -> str:
    """A CHECK that a hand edit wrote an ISO date-time, so every reader can parse the row."""
    return f"julianday({column}) IS NOT NULL AND {column} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"


# Bumps `updated_at` when an UPDATE did not advance it (a hand edit), to the later of "now"
# and the old value plus 1 ms, so versions stay totally ordered for the store's
# "older never overwrites newer" rule. The nested UPDATE does not re-fire the trigger
# (recursive_triggers is off by default), and its WHERE stops any loop if someone turns it on.
_BUMP_STALE_UPDATED_AT = f"""
    UPDATE assets
       SET updated_at = max(
               {NOW_SQL},
               coalesce(strftime('%Y-%m-%dT%H:%M:%f000+00:00', OLD.updated_at, '+0.001 seconds'), ''))
     WHERE id = NEW.id AND NEW.updated_at <= OLD.updated_at
"""

_MIGRATION_1 = (
    f"""
    CREATE TABLE assets (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        public_id         TEXT NOT NULL UNIQUE,
        resource_type     TEXT NOT NULL DEFAULT 'image'
                          CHECK (resource_type IN ('image', 'video', 'raw')),
        format            TEXT,
        bytes             INTEGER NOT NULL DEFAULT 0,
        width             INTEGER,
        height            INTEGER,
        duration          REAL,
        url               TEXT,
        folder            TEXT NOT NULL DEFAULT '',
        tags              TEXT NOT NULL DEFAULT '[]'
                          CHECK (json_valid(tags) AND json_type(tags) = 'array'),
        checksum          TEXT,
        original_filename TEXT,
        version           INTEGER,
        thumbnail         TEXT,
        created_at        TEXT NOT NULL DEFAULT ({NOW_SQL}) CHECK ({_is_timestamp("created_at")}),
        updated_at        TEXT NOT NULL DEFAULT ({NOW_SQL}) CHECK ({_is_timestamp("updated_at")})
    )
    """,
    "CREATE INDEX assets_checksum ON assets (checksum)",
    "CREATE INDEX assets_newest ON assets (created_at DESC, id DESC)",
    "CREATE INDEX assets_folder_newest ON assets (folder, created_at DESC, id DESC)",
    """
    CREATE TABLE changes (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        op           TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
        row_id       INTEGER,
        public_id    TEXT,
        row          TEXT,
        committed_at TEXT NOT NULL
    )
    """,
    f"""
    CREATE TRIGGER assets_log_insert AFTER INSERT ON assets
    BEGIN
        INSERT INTO changes (op, row_id, public_id, row, committed_at)
        VALUES ('upsert', NEW.id, NEW.public_id, {_row_json("NEW")}, {NOW_SQL});
    END
    """,
    f"""
    CREATE TRIGGER assets_log_update AFTER UPDATE ON assets
    BEGIN
        {_BUMP_STALE_UPDATED_AT};
        -- A renamed row is, to anyone keyed by public_id, the old id gone and a new one here.
        INSERT INTO changes (op, row_id, public_id, row, committed_at)
        SELECT 'delete', OLD.id, OLD.public_id, NULL, {NOW_SQL}
         WHERE NEW.public_id IS NOT OLD.public_id;
        -- Read the row back rather than use NEW: the bump above may have changed it.
        INSERT INTO changes (op, row_id, public_id, row, committed_at)
        SELECT 'upsert', a.id, a.public_id, {_row_json("a")}, {NOW_SQL}
          FROM assets AS a WHERE a.id = NEW.id;
    END
    """,
    f"""
    CREATE TRIGGER assets_log_delete AFTER DELETE ON assets
    BEGIN
        INSERT INTO changes (op, row_id, public_id, row, committed_at)
        VALUES ('delete', OLD.id, OLD.public_id, NULL, {NOW_SQL});
    END
    """,
)

# Name claims (see `LocalCatalog.claim_name`): who may write bytes under a public id until its
# row is written. Not logged in `changes`: a claim is no asset, and no feed shows it.
_MIGRATION_2 = (
    """
    CREATE TABLE claims (
        public_id  TEXT PRIMARY KEY,
        checksum   TEXT NOT NULL,
        owner      TEXT NOT NULL,
        expires_at TEXT NOT NULL CHECK (julianday(expires_at) IS NOT NULL)
    )
    """,
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_MIGRATION_1, _MIGRATION_2)
"""Each entry: the statements taking the schema from version `index` to `index + 1`."""

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_not_newer(conn: sqlite3.Connection, db_path: Path) -> int:
    """Return the file's schema version; refuse one this media-tui does not know."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise PermanentError(
            f"The catalogue {db_path} was written by a newer media-tui (schema {version}, "
            f"this one knows up to {SCHEMA_VERSION}); upgrade media-tui to open it."
        )
    return version


def migrate(conn: sqlite3.Connection, db_path: Path) -> None:
    """Bring the schema up to `SCHEMA_VERSION`, one migration per write transaction.

    The version is re-read inside each transaction: two processes opening a fresh library at
    the same moment must not both create the tables.
    """
    if check_not_newer(conn, db_path) == SCHEMA_VERSION:
        return
    for target in range(1, SCHEMA_VERSION + 1):
        with write_transaction(conn):
            if check_not_newer(conn, db_path) < target:
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")
