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

The realtime client runs on its own thread and event loop (`LoopThread`): it parses frames
there and turns them into ChangeEvents there, so a storm of events costs the app's loop only
the store updates, taken in bursts that yield to the screen between slices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.types import PostgresChangesPayload, RealtimePostgresChangesListenEvent

from media_tui.backends.loop_thread import LoopThread, ThreadInbox
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
# Events applied between two yields to the app's loop: a slice costs a few milliseconds, so a
# storm is taken in without a visible pause in painting.
SLICE = 200


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
    """One realtime channel on the catalogue's table, with resync and a watchdog.

    `realtime_options` go to realtime-py's client as supabase-py would pass them
    (`max_retries`, `initial_backoff`, `hb_interval`, `auto_reconnect`).
    """

    name = "supabase"

    def __init__(
        self,
        catalog: SupabaseCatalog,
        *,
        watchdog_interval: float = WATCHDOG_INTERVAL,
        realtime_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.catalog = catalog
        self.watchdog_interval = watchdog_interval
        self.realtime_options = dict(realtime_options or {})
        self._state = ConnectionState.CONNECTING
        self._inbox: ThreadInbox[tuple[str, Any]] | None = None
        self._thread: LoopThread | None = None
        self._realtime: AsyncRealtimeClient | None = None
        self._channel: Any = None
        self._closing = threading.Event()
        # Items of the burst being handed out that the consumer has not received yet.
        self._burst_left = 0
        self._resync_queued = False  # one requested resync at a time is enough

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def backlog(self) -> int:
        """Events (and state changes) received and not yet handed to the consumer."""
        return (len(self._inbox) if self._inbox is not None else 0) + self._burst_left

    def request_resync(self) -> None:
        """Send a fresh `Resync` after what is already queued (the consistency probe's repair)."""
        if self._inbox is None or self._resync_queued:
            return  # not streaming yet (its first SUBSCRIBED resyncs anyway), or already asked
        self._resync_queued = True
        self._inbox.put(("resync", None))

    # ---------------------------------------------------------- on the realtime thread

    def _put(self, kind: str, item: Any) -> None:
        if self._inbox is not None:
            self._inbox.put((kind, item))

    # Callbacks run inside realtime-py's listen task: they must never raise.
    def _on_change(self, payload: PostgresChangesPayload) -> None:
        try:
            event = event_from_payload(payload)
        except Exception as exc:  # a row we cannot read is skipped; the next resync has it
            log.warning("skipped a realtime change that could not be read: %s", exc)
            return
        if event is not None:
            self._put("event", event)

    def _on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        with contextlib.suppress(Exception):
            self._put("state", (state, error))

    async def _subscribe(self) -> None:
        realtime = self._realtime
        assert realtime is not None
        # A channel may be subscribed only once: start from none, so every (re)subscribe is a
        # fresh channel (which also reconnects the socket if it was closed).
        await realtime.remove_all_channels()
        channel = realtime.channel(f"media-tui-{self.catalog.table}")
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.All, self._on_change, table=self.catalog.table
        )
        self._channel = channel
        await channel.subscribe(self._on_state)

    async def _watchdog(self) -> None:
        while not self._closing.is_set():
            await asyncio.sleep(self.watchdog_interval)
            try:
                await self._check()
            except Exception as exc:  # a failed recovery is tried again on the next tick
                log.warning("realtime watchdog: %s", exc)

    async def _check(self) -> None:
        realtime = self._realtime
        if realtime is None or self._closing.is_set():
            return
        listen_task = getattr(realtime, "_listen_task", None)
        listener_dead = realtime.is_connected and listen_task is not None and listen_task.done()
        channel_closed = self._channel is None or getattr(self._channel, "state", None) == "closed"
        if listener_dead or channel_closed:
            self._put("recover", "the realtime channel stopped; subscribing again")
            await self._subscribe()
        elif not realtime.is_connected:
            self._put("recover", "the realtime connection gave up; reconnecting")
            await realtime.connect()

    async def _start(self, url: str, key: str) -> None:
        # Built here, on the thread that will run it, the way supabase-py builds its own.
        self._realtime = AsyncRealtimeClient(url, token=key, **self.realtime_options)
        asyncio.create_task(self._watchdog(), name="supabase-realtime-watchdog")  # noqa: RUF006 - the loop's shutdown cancels it
        await self._subscribe()

    async def _leave(self) -> None:
        self._channel = None
        if self._realtime is not None:
            with contextlib.suppress(Exception):
                await self._realtime.remove_all_channels()
            with contextlib.suppress(Exception):
                await self._realtime.close()

    # ---------------------------------------------------------- on the app's loop

    def _set(self, state: ConnectionState, detail: str | None = None) -> ConnectionChanged | None:
        if state == self._state and detail is None:
            return None
        self._state = state
        return ConnectionChanged(state, detail)

    async def events(self) -> AsyncIterator[ChangeEvent]:
        yield ConnectionChanged(ConnectionState.CONNECTING)
        self._state = ConnectionState.CONNECTING
        self._inbox = inbox = ThreadInbox[tuple[str, Any]]()
        self._thread = thread = LoopThread("media-tui-realtime")
        try:
            try:
                sb = await self.catalog.client()
                await thread.run(self._start(str(sb.realtime_url), self.catalog.settings.key.value))
            except Exception as exc:  # the first connect failed: say so, the watchdog retries
                yield ConnectionChanged(ConnectionState.RECONNECTING, f"realtime: {exc}")
            while not self._closing.is_set():
                burst = await inbox.take()
                self._burst_left = len(burst)
                for taken, (kind, item) in enumerate(burst, 1):
                    self._burst_left -= 1
                    if kind == "event":
                        yield item
                    elif kind == "resync":
                        self._resync_queued = False
                        async for event in self._requested_resync():
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
                    if taken % SLICE == 0:
                        await asyncio.sleep(0)  # let the screen paint between slices of a storm
        finally:
            self._burst_left = 0
            await self._shutdown()

    async def _requested_resync(self) -> AsyncIterator[ChangeEvent]:
        """A snapshot taken as after a (re)subscribe, without touching the connection state."""
        if self._state is not ConnectionState.LIVE:
            return  # the next SUBSCRIBED brings a resync of its own
        taken_at = utcnow()
        try:
            assets = await self.catalog.snapshot()
        except MediaError as exc:  # the probe asks again on its next round
            log.warning("requested resync failed: %s", exc)
            return
        yield Resync(tuple(assets), taken_at)

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
        elif state == RealtimeSubscribeStates.CLOSED and not self._closing.is_set():
            changed = self._set(
                ConnectionState.RECONNECTING, "realtime channel closed by the server"
            )
            if changed:
                yield changed

    async def _shutdown(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._closing.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(thread.run(self._leave()), 5)
        await thread.stop()

    async def aclose(self) -> None:
        self._closing.set()
        self._put("stop", None)
        await self._shutdown()
