"""UploadQueue against in-memory backends: immediate sync, dedupe, retries, cancel, pause, journal."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from media_tui.errors import PermanentError, TransientError
from media_tui.journal import Journal
from media_tui.model import JobState, ResourceType
from media_tui.paths import MediaFile
from media_tui.store import MediaStore
from media_tui.uploads import ProgressMeter, RetryPolicy, UploadQueue
from tests.fakes import FakeCatalog, FakeStorage


def media(path: Path, content: bytes) -> MediaFile:
    path.write_bytes(content)
    return MediaFile(path=path, size=len(content), resource_type=ResourceType.IMAGE, format="png")


class Harness:
    def __init__(self, tmp_path: Path, *, journal: bool = False, concurrency: int = 2) -> None:
        self.store = MediaStore()
        self.storage = FakeStorage()
        self.catalog = FakeCatalog()
        self.sleeps: list[float] = []
        self.journal_dir = tmp_path / "journal"

        async def no_sleep(delay: float) -> None:
            self.sleeps.append(delay)

        self.queue = UploadQueue(
            self.store,
            self.storage,
            self.catalog,
            Journal(self.journal_dir) if journal else None,
            concurrency=concurrency,
            retry=RetryPolicy(max_attempts=4, base_delay=1.0),
            sleep=no_sleep,
            rng=random.Random(1),
        )

    async def __aenter__(self) -> Harness:
        await self.queue.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.queue.aclose()

    async def idle(self) -> None:
        await asyncio.wait_for(self.queue.wait_idle(), timeout=10)


async def test_upload_writes_the_row_before_the_job_is_done(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        seen_rows_when_done: list[int] = []

        def watch(changes: object) -> None:
            for job in h.store.jobs.values():
                if job.state is JobState.DONE:
                    seen_rows_when_done.append(len(h.catalog.rows))

        h.store.subscribe(watch)  # type: ignore[arg-type]
        jobs = await h.queue.enqueue(
            [media(tmp_path / "a b.png", b"A" * 100)], folder="/shots//", tags=["x", "x", " y "]
        )
        assert h.store.public_ids() == {"shots/a_b"}  # optimistic, from the first moment
        await h.idle()
    assert seen_rows_when_done and all(n == 1 for n in seen_rows_when_done)
    row = h.catalog.rows["shots/a_b"]
    assert row.tags == ("x", "y") and row.folder == "shots"
    assert h.store.assets["shots/a_b"] == row
    done = h.store.job(jobs[0].job_id)
    assert done is not None and done.state is JobState.DONE and done.bytes_sent == 100


async def test_same_bytes_are_a_duplicate_and_not_uploaded_again(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        await h.queue.enqueue([media(tmp_path / "a.png", b"same")])
        await h.idle()
        jobs = await h.queue.enqueue(
            [media(tmp_path / "copy.png", b"same"), media(tmp_path / "b.png", b"other")]
        )
        await h.idle()
    states = {h.store.jobs[j.job_id].path.name: h.store.jobs[j.job_id].state for j in jobs}
    assert states == {"copy.png": JobState.DUPLICATE, "b.png": JobState.DONE}
    assert sorted(h.storage.uploads) == ["a", "b"]
    assert h.store.jobs[jobs[0].job_id].public_id == "a"  # the duplicate names what holds its bytes


async def test_same_bytes_twice_in_one_batch_upload_once(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    files = [media(tmp_path / "a.png", b"twin"), media(tmp_path / "d" / "b.png", b"twin")]
    async with Harness(tmp_path, concurrency=2) as h:
        jobs = await h.queue.enqueue(files)
        await h.idle()
    assert len(h.storage.uploads) == 1 and len(h.catalog.rows) == 1
    assert sorted(h.store.jobs[j.job_id].state for j in jobs) == sorted(
        [JobState.DONE, JobState.DUPLICATE]
    )


async def test_same_name_in_two_folders_gets_two_ids(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    files = [media(tmp_path / "x" / "pic.png", b"1"), media(tmp_path / "y" / "pic.png", b"2")]
    async with Harness(tmp_path) as h:
        jobs = await h.queue.enqueue(files)
        await h.idle()
    ids = [h.store.jobs[j.job_id].public_id for j in jobs]
    assert ids[0] == "pic" and ids[1].startswith("pic-") and len(set(ids)) == 2
    assert set(h.catalog.rows) == set(ids)


async def test_other_bytes_under_the_same_name_are_kept_not_overwritten(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        await h.queue.enqueue([media(tmp_path / "pic.png", b"old")])
        await h.idle()
        (jobs,) = [await h.queue.enqueue([media(tmp_path / "pic.png", b"new")])]
        await h.idle()
    new_id = h.store.jobs[jobs[0].job_id].public_id
    assert new_id.startswith("pic-") and h.catalog.rows["pic"].bytes == 3
    assert set(h.catalog.rows) == {"pic", new_id}


async def test_transient_errors_are_retried_with_growing_backoff(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.storage.failures = [
            TransientError("503"),
            TransientError("503"),
            ConnectionResetError("reset"),
        ]
        h.catalog.failures = [TransientError("locked")]
        jobs = await h.queue.enqueue([media(tmp_path / "a.png", b"A")])
        await h.idle()
    job = h.store.jobs[jobs[0].job_id]
    assert job.state is JobState.DONE and job.error is None
    assert len(h.storage.uploads) == 4 and h.catalog.upserts == 1
    storage_sleeps = h.sleeps[:3]
    assert storage_sleeps[0] < storage_sleeps[2]  # 0.5–1 s, then 1–2, then 2–4
    assert 0.5 <= storage_sleeps[0] <= 1.0 and 2.0 <= storage_sleeps[2] <= 4.0


async def test_permanent_errors_fail_at_once_and_roll_back(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.storage.failures = [PermanentError("Invalid Signature abc; check the secret")]
        jobs = await h.queue.enqueue([media(tmp_path / "a.png", b"A")])
        await h.idle()
    job = h.store.jobs[jobs[0].job_id]
    assert job.state is JobState.FAILED and job.error == "Invalid Signature abc; check the secret"
    assert len(h.storage.uploads) == 1 and h.sleeps == []
    assert h.store.public_ids() == set() and h.catalog.rows == {}


async def test_retries_give_up_after_max_attempts(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.storage.failures = [TransientError("503")] * 10
        jobs = await h.queue.enqueue([media(tmp_path / "a.png", b"A")])
        await h.idle()
    assert h.store.jobs[jobs[0].job_id].state is JobState.FAILED
    assert len(h.storage.uploads) == 4


async def test_unexpected_exception_fails_the_job_not_the_queue(tmp_path: Path) -> None:
    async with Harness(tmp_path, concurrency=1) as h:
        h.storage.failures = [ValueError("bug")]
        bad, good = await h.queue.enqueue(
            [media(tmp_path / "a.png", b"A"), media(tmp_path / "b.png", b"B")]
        )
        await h.idle()
    assert h.store.jobs[bad.job_id].state is JobState.FAILED
    assert "unexpected error" in (h.store.jobs[bad.job_id].error or "")
    assert h.store.jobs[good.job_id].state is JobState.DONE


async def test_cancel_a_running_upload_and_retry_it(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.storage.gate = asyncio.Event()
        (job,) = await h.queue.enqueue([media(tmp_path / "a.png", b"A" * 10)])
        await asyncio.wait_for(h.storage.started.wait(), 10)
        h.queue.cancel(job.job_id)
        await h.idle()
        assert h.store.jobs[job.job_id].state is JobState.CANCELLED
        assert h.store.public_ids() == set() and h.catalog.rows == {}
        h.storage.gate.set()
        assert await h.queue.retry(job.job_id)
        await h.idle()
    assert h.store.jobs[job.job_id].state is JobState.DONE
    assert set(h.catalog.rows) == {"a"}


async def test_cancel_a_queued_job_it_never_starts(tmp_path: Path) -> None:
    async with Harness(tmp_path, concurrency=1) as h:
        h.storage.gate = asyncio.Event()
        _first, second = await h.queue.enqueue(
            [media(tmp_path / "a.png", b"A"), media(tmp_path / "b.png", b"B")]
        )
        await asyncio.wait_for(h.storage.started.wait(), 10)
        h.queue.cancel(second.job_id)
        h.storage.gate.set()
        await h.idle()
    assert h.store.jobs[second.job_id].state is JobState.CANCELLED
    assert h.storage.uploads == ["a"]


async def test_pause_stops_new_jobs_and_resume_finishes_them(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.queue.pause()
        (job,) = await h.queue.enqueue([media(tmp_path / "a.png", b"A")])
        # Give every worker a chance to run: nothing may start while paused.
        for _ in range(20):
            await asyncio.sleep(0)
        assert h.storage.uploads == [] and h.store.jobs[job.job_id].state is JobState.QUEUED
        h.queue.resume()
        await h.idle()
    assert h.store.jobs[job.job_id].state is JobState.DONE


async def test_the_same_path_dropped_twice_is_one_job(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.storage.gate = asyncio.Event()
        file = media(tmp_path / "a.png", b"A")
        first = await h.queue.enqueue([file])
        again = await h.queue.enqueue([file])
        h.storage.gate.set()
        await h.idle()
    assert len(first) == 1 and again == []


async def test_journal_resumes_unfinished_jobs_in_the_next_process(tmp_path: Path) -> None:
    files = [media(tmp_path / f"{i}.png", bytes([i]) * 10) for i in range(5)]
    crashed = Harness(tmp_path, journal=True, concurrency=1)
    await crashed.queue.start()
    crashed.storage.gate = asyncio.Event()
    await crashed.queue.enqueue(files)
    await asyncio.wait_for(crashed.storage.started.wait(), 10)
    # A crash: the workers stop dead and the journal's file (and so its lock) is let go,
    # with no "finished" records written.
    for worker in crashed.queue._workers:
        worker.cancel()
    assert crashed.queue.journal is not None and crashed.queue.journal._file is not None
    crashed.queue.journal._file.close()

    resumed = Harness(tmp_path, journal=True)
    resumed.queue.catalog = resumed.catalog = crashed.catalog
    async with resumed:
        await resumed.idle()
    states = [job.state for job in resumed.store.jobs.values()]
    assert len(states) == 5 and all(s is JobState.DONE for s in states)
    assert set(crashed.catalog.rows) == {str(i) for i in range(5)}
    assert list(resumed.journal_dir.glob("*.jsonl")) == []


def test_progress_meter_throttles_and_always_reports_the_end() -> None:
    now = [0.0]
    reports: list[tuple[int, float]] = []
    meter = ProgressMeter(
        lambda b, s: reports.append((b, s)), size=1000, clock=lambda: now[0], interval=0.25
    )
    for step in range(1, 11):
        now[0] = step * 0.05
        meter(step * 90)
    now[0] = 0.6
    meter(1000)
    assert [b for b, _ in reports] == [90, 540, 1000]  # first, one after 0.25 s, and the end
    assert reports[-1][1] == pytest.approx((1000 - 90) / (0.6 - 0.05))
