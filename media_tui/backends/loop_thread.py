"""LoopThread and ThreadInbox: run a network client on its own event loop, off the app's.

realtime-py parses every frame with pydantic and formats three debug strings per frame, all
on the loop that runs its listener: a 10,000-event storm is over a second of CPU with no
`await` between frames, which on the app's loop is a frozen screen. On a `LoopThread` that
work still costs CPU, but the interpreter switches threads every few milliseconds, so the
app's loop keeps painting. Results come back through a `ThreadInbox`, which wakes the app's
loop once per burst rather than once per item.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")
# How long `stop()` waits for the thread; a daemon thread left behind cannot keep the process up.
STOP_WAIT = 5.0
Item = TypeVar("Item")


class LoopThread:
    """An asyncio event loop running forever on a daemon thread until `stop()`."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            # Whatever is still running (a reconnect backoff, a heartbeat) is cancelled and
            # allowed to unwind before the loop closes, so nothing is left "never awaited".
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start `coro` on the thread's loop; callable from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the thread's loop and await its result from the caller's loop.

        Cancelling the caller cancels the coroutine on the thread too.
        """
        return await asyncio.wrap_future(self.submit(coro))

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    async def stop(self) -> None:
        """Stop the loop (cancelling what still runs on it) and wait for the thread to end."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):  # the loop already closed
            self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, STOP_WAIT)


class ThreadInbox(Generic[Item]):
    """Items put from any thread, taken in bursts on the loop that created the inbox."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: collections.deque[Item] = collections.deque()
        self._ready = asyncio.Event()
        # True while a wake-up is on its way: a burst of puts schedules one, not one each.
        self._wake_pending = False

    def put(self, item: Item) -> None:
        """Add an item; safe from any thread, never blocks, never raises on a closed loop."""
        self._items.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._ready.set)

    def __len__(self) -> int:
        """Items put and not taken yet (read on the inbox's loop; a put racing it may be missed)."""
        return len(self._items)

    async def take(self) -> list[Item]:
        """Wait for at least one item and return everything queued so far, in order."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            # Cleared before draining: a put that lands after this line schedules a new
            # wake-up, and its item is either drained now or taken on the next call.
            self._wake_pending = False
            burst: list[Item] = []
            items = self._items
            while items:
                burst.append(items.popleft())
            if burst:
                return burst
