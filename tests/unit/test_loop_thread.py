"""LoopThread and ThreadInbox: work on another loop, results back in order, clean shutdown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from media_tui.backends.loop_thread import LoopThread, ThreadInbox


async def test_run_returns_the_result_from_the_other_thread() -> None:
    thread = LoopThread("test-loop")
    try:

        async def where() -> str:
            return threading.current_thread().name

        assert await thread.run(where()) == "test-loop"
    finally:
        await thread.stop()
    assert not thread.running


async def test_run_raises_what_the_coroutine_raised() -> None:
    thread = LoopThread("test-loop")
    try:

        async def fail() -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await thread.run(fail())
    finally:
        await thread.stop()


async def test_cancelling_the_caller_cancels_the_work_on_the_thread() -> None:
    thread = LoopThread("test-loop")
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        caller = asyncio.create_task(thread.run(forever()))
        assert await asyncio.to_thread(started.wait, 10)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert await asyncio.to_thread(cancelled.wait, 10)
    finally:
        await thread.stop()


async def test_stop_cancels_what_still_runs_and_ends_the_thread() -> None:
    thread = LoopThread("test-loop")
    started, cancelled = threading.Event(), threading.Event()

    async def background() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    thread.submit(background())
    assert await asyncio.to_thread(started.wait, 10)
    await thread.stop()
    assert not thread.running
    assert cancelled.is_set()
    await thread.stop()  # a second stop is harmless


async def test_inbox_takes_a_burst_from_another_thread_in_order() -> None:
    inbox: ThreadInbox[int] = ThreadInbox()

    def produce() -> None:
        for i in range(10_000):
            inbox.put(i)

    producer = threading.Thread(target=produce)
    producer.start()
    received: list[int] = []
    while len(received) < 10_000:
        received.extend(await asyncio.wait_for(inbox.take(), 10))
    producer.join()
    assert received == list(range(10_000))


async def test_inbox_wakes_once_per_burst_not_once_per_item() -> None:
    inbox: ThreadInbox[int] = ThreadInbox()
    loop = asyncio.get_running_loop()
    scheduled = 0
    original = loop.call_soon_threadsafe

    def counting(callback: object, *args: object, **kwargs: object) -> object:
        nonlocal scheduled
        scheduled += callback == inbox._ready.set
        return original(callback, *args, **kwargs)  # type: ignore[arg-type]

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    try:
        producer = threading.Thread(target=lambda: [inbox.put(i) for i in range(500)])
        producer.start()
        producer.join()
        assert await asyncio.wait_for(inbox.take(), 10) == list(range(500))
    finally:
        loop.call_soon_threadsafe = original  # type: ignore[method-assign]
    assert scheduled == 1


async def test_inbox_take_waits_for_an_item() -> None:
    inbox: ThreadInbox[str] = ThreadInbox()
    waiting = asyncio.create_task(inbox.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    inbox.put("x")
    assert await asyncio.wait_for(waiting, 10) == ["x"]
