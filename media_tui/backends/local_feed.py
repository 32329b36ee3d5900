"""LocalChangeFeed: tails the catalogue's `changes` log, so every process on a library is live.

The stream is `ConnectionChanged(LIVE)`, a `Resync` snapshot, then one `RemoteUpsert` or
`RemoteDelete` per new log entry — never a re-read of the whole table, except a fresh
`Resync` when the feed has fallen behind the pruned log (or so far behind that one snapshot
is cheaper than replaying the backlog).

New commits are noticed two ways: this process's own `LocalCatalog` pokes the feed right
after each commit (no delay at all), and `PRAGMA data_version` — which changes whenever
*another* connection commits, including other processes and sqlite3 shells — is polled every
`poll_interval` on the feed's own read connection. That pragma reads a counter in shared
memory, so polling it is nearly free.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, suppress
from functools import partial

from media_tui.backends.local_catalog import LocalCatalog
from media_tui.backends.local_db import ChangeBatch, DbWorker, read_changes_since, read_snapshot
from media_tui.backends.local_schema import migrate
from media_tui.errors import PermanentError, TransientError
from media_tui.model import ChangeEvent, ConnectionChanged, ConnectionState, Resync, utcnow

BATCH_SIZE = 1_000
"""Log entries read per query."""

RESYNC_THRESHOLD = 10_000
"""A backlog longer than this (say a 100k-row import) is sent as one Resync instead."""

_MAX_RETRY_DELAY = 5.0


class LocalChangeFeed:
    """The `ChangeFeed` protocol over the local catalogue's change log."""

    name = "local"

    def __init__(self, catalog: LocalCatalog, poll_interval: float = 0.05) -> None:
        self._catalog = catalog
        self._poll_interval = poll_interval
        # A connection of its own: reads never queue behind the catalogue's writes, and
        # data_version only moves for commits made by connections other than this one.
        self._reader = DbWorker(
            catalog.db_path,
            setup=lambda conn: migrate(conn, catalog.db_path),
            busy_timeout=catalog.busy_timeout,
            thread_name="media-tui-feed",
        )
        self._state = ConnectionState.CONNECTING
        self._closed = False
        self._closed_event = asyncio.Event()
        self._wakeups: set[asyncio.Event] = set()
        self._resync_requests = 0  # each session resyncs once when this moves past what it saw
        self._batch_left = 0  # entries of the batch being handed out, not received yet

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def backlog(self) -> int:
        """Log entries read and not yet handed to the consumer (newer commits are not counted)."""
        return self._batch_left

    def request_resync(self) -> None:
        """Make every running stream send a fresh `Resync` snapshot next (the probe's repair)."""
        self._resync_requests += 1
        for wake in self._wakeups:
            wake.set()

    def events(self) -> AsyncIterator[ChangeEvent]:
        """The event stream; it ends when `aclose()` is called or the catalogue is unusable."""
        return self._events()

    async def aclose(self) -> None:
        """Stop every running `events()` iterator and close the read connection."""
        if self._closed:
            return
        self._closed = True
        self._state = ConnectionState.OFFLINE
        self._closed_event.set()
        for wake in self._wakeups:
            wake.set()
        await self._reader.aclose()

    # --- the stream ---------------------------------------------------------------------------

    async def _events(self) -> AsyncGenerator[ChangeEvent, None]:
        wake = asyncio.Event()
        self._wakeups.add(wake)
        stop_listening = self._catalog.add_commit_listener(wake.set)
        retry_delay = 0.1
        try:
            while not self._closed:
                try:
                    # aclosing: if our consumer stops early, the inner generator ends now too.
                    async with aclosing(self._live_session(wake)) as session:
                        async for event in session:
                            yield event
                            retry_delay = 0.1
                except TransientError as exc:
                    if self._closed:
                        return
                    # Reads in WAL mode are rarely blocked (a crash recovery, a checkpoint
                    # truncating the WAL); say so, wait, and start over with a fresh Resync.
                    self._state = ConnectionState.RECONNECTING
                    yield ConnectionChanged(ConnectionState.RECONNECTING, str(exc))
                    await self._pause(retry_delay)
                    retry_delay = min(_MAX_RETRY_DELAY, retry_delay * 2)
                except PermanentError as exc:
                    if not self._closed:
                        self._state = ConnectionState.OFFLINE
                        yield ConnectionChanged(ConnectionState.OFFLINE, str(exc))
                    return
        finally:
            stop_listening()
            self._wakeups.discard(wake)

    async def _live_session(self, wake: asyncio.Event) -> AsyncGenerator[ChangeEvent, None]:
        """LIVE, a snapshot, then the log from the snapshot's seq on, until closed."""
        await self._reader.run(_data_version)  # opens (and if need be migrates) the file
        self._state = ConnectionState.LIVE
        yield ConnectionChanged(ConnectionState.LIVE)
        self._batch_left = 0  # a previous session may have been stopped mid-batch
        served = self._resync_requests
        resync, seq = await self._resync()
        yield resync
        while not self._closed:
            # Clear before reading: a commit (or a resync request) that lands during the read
            # sets it again.
            wake.clear()
            if served != self._resync_requests:
                served = self._resync_requests
                resync, seq = await self._resync()
                yield resync
                continue
            data_version, batch = await self._reader.run(partial(_poll, seq=seq, limit=BATCH_SIZE))
            if batch.behind or batch.latest_seq - seq > RESYNC_THRESHOLD:
                resync, seq = await self._resync()
                yield resync
                continue
            self._batch_left = len(batch.changes)
            for entry_seq, event in batch.changes:
                seq = entry_seq
                self._batch_left -= 1
                yield event
            if len(batch.changes) < BATCH_SIZE:
                await self._wait_for_commit(wake, data_version)

    async def _resync(self) -> tuple[Resync, int]:
        assets, seq = await self._reader.run(read_snapshot)
        return Resync(assets=tuple(assets), taken_at=utcnow()), seq

    async def _wait_for_commit(self, wake: asyncio.Event, data_version: int) -> None:
        """Return when our catalogue committed, another connection committed, or we closed."""
        while not self._closed:
            try:
                await asyncio.wait_for(wake.wait(), self._poll_interval)
                return
            except TimeoutError:
                pass
            if self._closed or await self._reader.run(_data_version) != data_version:
                return

    async def _pause(self, seconds: float) -> None:
        """Wait before retrying, but stop waiting the moment the feed is closed."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._closed_event.wait(), seconds)


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _poll(conn: sqlite3.Connection, seq: int, limit: int) -> tuple[int, ChangeBatch]:
    # data_version is taken *before* the read, so a commit racing the read is never missed:
    # at worst it is read now and the next wait returns at once with nothing new.
    return _data_version(conn), read_changes_since(conn, seq, limit)
