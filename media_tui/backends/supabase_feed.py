"""SupabaseChangeFeed: Supabase Realtime `postgres_changes` as a stream of ChangeEvents.

realtime-py's failure modes are silent (reference/supabase.md §2, §5): a callback that raises
kills the listen task while the socket still reports "connected"; exhausted reconnect retries
stop without a callback; a channel closed by the server is dropped for good; events missed while
disconnected are never replayed. So:

- callbacks only enqueue, inside try/except, and can never raise;
- every SUBSCRIBED (the first and each rejoin) is followed by a REST snapshot, sent on as a
  `Resync`, so nothing missed during an outage is lost;
- a watchdog checks every few seconds for a dead listener, a closed channel or a socket that
  gave up, and recovers (reconnect, or a fresh channel — which ends in SUBSCRIBED and a resync);
- the connection state (connecting / live / reconnecting / offline) is reported as it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from realtime import RealtimeSubscribeStates
from realtime.types import PostgresChangesPayload, RealtimePostgresChangesListenEvent

from media_tui.backends.supabase_catalog import SupabaseCatalog, mapping_for_delete
from media_tui.errors import MediaError
from media_tui.model import (
    ChangeEvent,
    ConnectionChanged,
    ConnectionState,
    MediaAsset,
    RemoteDelete,
    RemoteUpsert,
    Resync,
    parse_timestamp,
    utcnow,
)

log = logging.getLogger(__name__)
WATCHDOG_INTERVAL = 5.0


def event_from_payload(payload: Mapping[str, Any]) -> ChangeEvent | None:
    """A `postgres_changes` callback payload (reference §4.6) as a ChangeEvent."""
    data = payload.get("data") or {}
    kind = str(getattr(data.get("type"), "value", data.get("type")))
    if kind in ("INSERT", "UPDATE") and data.get("record"):
        return RemoteUpsert(MediaAsset.from_json(data["record"]))
    if kind == "DELETE":
        public_id, row_id = mapping_for_delete(data.get("old_record") or {})
        return RemoteDelete(
            public_id=public_id,
            row_id=row_id,
            committed_at=parse_timestamp(data.get("commit_timestamp")),
        )
    return None


class SupabaseChangeFeed:
    """One realtime channel on the catalogue's table, with resync and a watchdog."""

    name = "supabase"

    def __init__(
        self, catalog: SupabaseCatalog, *, watchdog_interval: float = WATCHDOG_INTERVAL
    ) -> None:
        self.catalog = catalog
        self.watchdog_interval = watchdog_interval
        self._state = ConnectionState.CONNECTING
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._channel: Any = None
        self._closed = asyncio.Event()

    @property
    def state(self) -> ConnectionState:
        return self._state

    # Callbacks run inside realtime-py's listen task: they must never raise.
    def _on_change(self, payload: PostgresChangesPayload) -> None:
        with contextlib.suppress(Exception):
            self._inbox.put_nowait(("change", payload))

    def _on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        with contextlib.suppress(Exception):
            self._inbox.put_nowait(("state", (state, error)))

    async def _subscribe(self) -> None:
        sb = await self.catalog.client()
        # `sb.channel(name)` hands back an existing channel of that name, and a channel may be
        # subscribed only once: start from none, so every (re)subscribe is a fresh channel.
        await sb.remove_all_channels()
        channel = sb.channel(f"media-tui-{self.catalog.table}")
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.All, self._on_change, table=self.catalog.table
        )
        self._channel = channel
        await channel.subscribe(self._on_state)

    async def _watchdog(self) -> None:
        while not self._closed.is_set():
            await asyncio.sleep(self.watchdog_interval)
            try:
                await self._check()
            except Exception as exc:  # a failed recovery is tried again on the next tick
                log.warning("realtime watchdog: %s", exc)

    async def _check(self) -> None:
        sb = await self.catalog.client()
        realtime = sb.realtime
        listen_task = getattr(realtime, "_listen_task", None)
        listener_dead = realtime.is_connected and listen_task is not None and listen_task.done()
        channel_closed = self._channel is None or getattr(self._channel, "state", None) == "closed"
        if listener_dead or channel_closed:
            self._inbox.put_nowait(("recover", "the realtime channel stopped; subscribing again"))
            await self._subscribe()
        elif not realtime.is_connected:
            self._inbox.put_nowait(("recover", "the realtime connection gave up; reconnecting"))
            await realtime.connect()

    def _set(self, state: ConnectionState, detail: str | None = None) -> ConnectionChanged | None:
        if state == self._state and detail is None:
            return None
        self._state = state
        return ConnectionChanged(state, detail)

    async def events(self) -> AsyncIterator[ChangeEvent]:
        yield ConnectionChanged(ConnectionState.CONNECTING)
        self._state = ConnectionState.CONNECTING
        watchdog = asyncio.create_task(self._watchdog(), name="supabase-realtime-watchdog")
        try:
            try:
                await self._subscribe()
            except Exception as exc:  # the first connect failed: say so, the watchdog retries
                yield ConnectionChanged(ConnectionState.RECONNECTING, f"realtime: {exc}")
            while not self._closed.is_set():
                kind, item = await self._inbox.get()
                if kind == "change":
                    event = event_from_payload(item)
                    if event is not None:
                        yield event
                elif kind == "recover":
                    changed = self._set(ConnectionState.RECONNECTING, str(item))
                    if changed:
                        yield changed
                elif kind == "state":
                    async for event in self._on_subscription_state(*item):
                        yield event
                elif kind == "stop":
                    return
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    async def _on_subscription_state(
        self, state: RealtimeSubscribeStates, error: Exception | None
    ) -> AsyncIterator[ChangeEvent]:
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            taken_at = utcnow()
            try:
                assets = await self.catalog.snapshot()
            except MediaError as exc:
                yield ConnectionChanged(ConnectionState.RECONNECTING, f"resync failed: {exc}")
                return
            self._state = ConnectionState.LIVE
            yield ConnectionChanged(ConnectionState.LIVE)
            yield Resync(tuple(assets), taken_at)
        elif state in (RealtimeSubscribeStates.CHANNEL_ERROR, RealtimeSubscribeStates.TIMED_OUT):
            changed = self._set(ConnectionState.RECONNECTING, f"realtime: {error or state.value}")
            if changed:
                yield changed
        elif state == RealtimeSubscribeStates.CLOSED and not self._closed.is_set():
            changed = self._set(
                ConnectionState.RECONNECTING, "realtime channel closed by the server"
            )
            if changed:
                yield changed

    async def aclose(self) -> None:
        self._closed.set()
        with contextlib.suppress(Exception):
            self._inbox.put_nowait(("stop", None))
        if self._channel is not None:
            self._channel = None
            with contextlib.suppress(Exception):
                sb = await self.catalog.client()
                await sb.remove_all_channels()
