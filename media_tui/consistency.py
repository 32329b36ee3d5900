"""ConsistencyProbe: notices when the store has drifted from the catalogue, and heals it.

Realtime delivery may duplicate, reorder or lose events, and the store's ordering rules can
only do so much with what arrives. So every `interval` seconds, and a `quiet` moment after
each burst of remote events, the probe compares a cheap digest of the store's confirmed assets
(their count and newest `updated_at`) with the catalogue's (`Catalog.digest()`, one query).
When they differ twice in a row — the second look a `confirm_delay` later, so events merely in
flight are not mistaken for drift — it logs one line and asks the feed for a full `Resync`.
A bug that leaves the grid wrong then costs seconds, not the rest of the session.

Plain asyncio with an injectable clock and sleep (no Textual): the app runs `run()` in a
worker, and tests drive it without real time. Nothing here ever raises into its caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from media_tui.backends.base import CatalogDigest
from media_tui.model import ChangeEvent, ConnectionState, RemoteDelete, RemoteUpsert
from media_tui.store import MediaStore

log = logging.getLogger(__name__)

INTERVAL = 30.0
"""Seconds between two rounds when nothing happens."""

QUIET = 2.0
"""Seconds without remote events after which a burst counts as over and is checked."""

CONFIRM_DELAY = 1.0
"""Seconds between the first mismatch and the second look that confirms it."""

_CATCH_UP_TRIES = 5  # confirm delays to wait for a backlog to drain before giving up a round


class DigestSource(Protocol):
    """The one thing the probe needs from a catalogue."""

    async def digest(self) -> CatalogDigest: ...


def store_digest(store: MediaStore) -> CatalogDigest:
    """The store's confirmed assets as a digest (optimistic entries are not in the catalogue)."""
    assets = store.assets.values()
    newest = max((a.updated_at for a in assets if a.updated_at is not None), default=None)
    return CatalogDigest(count=len(store.assets), newest=newest)


def _stamp(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "none"


class ConsistencyProbe:
    """Compares the store with the catalogue now and then; asks for a resync when they differ.

    `request_resync` is called (with no arguments) for a confirmed mismatch; `backlog` says
    how many received events the store has not been given yet (no comparison while any wait).
    The consumer of the feed calls `saw(event)` for every event it applies.
    """

    def __init__(
        self,
        store: MediaStore,
        catalog: DigestSource,
        request_resync: Callable[[], None],
        *,
        backlog: Callable[[], int] = lambda: 0,
        interval: float = INTERVAL,
        quiet: float = QUIET,
        confirm_delay: float = CONFIRM_DELAY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.interval = interval
        self.quiet = quiet
        self.confirm_delay = confirm_delay
        self.repairs = 0  # resyncs asked for (for the metrics to come)
        self.rounds = 0  # comparisons with the catalogue started
        self.failures = 0  # rounds a catalogue error cut short
        self._request_resync = request_resync
        self._backlog = backlog
        self._clock = clock
        self._sleep = sleep
        self._last_event = 0.0
        self._burst_pending = False  # remote events arrived since the last round began
        self._next_round = 0.0
        self._wakeup = asyncio.Event()
        self._stopped = False

    # ------------------------------------------------------------ fed by the consumer

    def saw(self, event: ChangeEvent) -> None:
        """Note an event the store just applied (cheap: called for every event of a storm)."""
        if isinstance(event, RemoteUpsert | RemoteDelete):
            self._last_event = self._clock()
            if not self._burst_pending:
                self._burst_pending = True
                self._wakeup.set()  # the round after this burst may be due before the next tick

    # ------------------------------------------------------------------ running

    def stop(self) -> None:
        """End `run()` at its next wait (a comparison under way finishes first)."""
        self._stopped = True
        self._wakeup.set()

    async def run(self) -> None:
        """Rounds every `interval`, and `quiet` after a burst, until `stop()`; never raises."""
        self._next_round = self._clock() + self.interval
        while not self._stopped:
            due = self._next_round
            if self._burst_pending:
                due = min(due, self._last_event + self.quiet)
            now = self._clock()
            if now < due:
                await self._nap(due - now)
                continue
            self._burst_pending = False  # events from here on make another burst
            self._next_round = now + self.interval
            try:
                await self._round()
            except Exception as exc:  # the probe is a safety net: it must never become a hazard
                log.warning("consistency probe: round failed: %s", exc)

    async def _round(self) -> None:
        if self.store.connection is not ConnectionState.LIVE:
            return  # offline or reconnecting: the reconnect brings a resync of its own
        if self._backlog() > 0:
            # Mid-storm: the store is behind by definition. Look again once it has been quiet.
            self._burst_pending = True
            self._last_event = self._clock()
            return
        await self.check()

    async def _nap(self, seconds: float) -> None:
        """Sleep `seconds`, or less if a burst starts or the probe is stopped."""
        self._wakeup.clear()
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        waker = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Not awaited after cancelling: awaiting here could swallow our own cancellation.
            for task in (sleeper, waker):
                task.cancel()

    # ---------------------------------------------------------------- comparing

    async def check(self) -> bool:
        """One comparison, confirmed by a second; True when it asked for a resync."""
        self.rounds += 1
        try:
            first = await self._mismatch()
            if first is None:
                return False
            # Perhaps only in flight: give the feed time to deliver, then look again.
            if not await self._caught_up():
                return False
            second = await self._mismatch()
        except Exception as exc:  # the catalogue could not answer: try on the next round
            self.failures += 1
            log.warning("consistency probe: cannot read the catalogue's digest: %s", exc)
            return False
        if second is None:
            return False
        ours, theirs = second
        log.warning(
            "consistency probe: store has %d assets, newest %s; catalogue has %d, newest %s; "
            "resyncing",
            ours.count,
            _stamp(ours.newest),
            theirs.count,
            _stamp(theirs.newest),
        )
        self.repairs += 1
        try:
            self._request_resync()
        except Exception as exc:
            log.warning("consistency probe: could not ask for a resync: %s", exc)
        return True

    async def _mismatch(self) -> tuple[CatalogDigest, CatalogDigest] | None:
        theirs = await self.catalog.digest()
        # The store is read after the catalogue answered: anything the catalogue counted has
        # had that long to arrive.
        ours = store_digest(self.store)
        return None if ours == theirs else (ours, theirs)

    async def _caught_up(self) -> bool:
        """Wait `confirm_delay` (more while events still wait); False if the store is not live
        or a storm keeps it behind, in which case this round gives up without judging."""
        for _ in range(_CATCH_UP_TRIES):
            await self._sleep(self.confirm_delay)
            if self._stopped or self.store.connection is not ConnectionState.LIVE:
                return False
            if self._backlog() == 0:
                return True
        return False
