"""UploadQueue: the async worker pool that moves files into storage and the catalogue.

One job's path: hash the file (in a thread) → skip it as a duplicate if the catalogue already has
those bytes → upload with throttled progress → write the catalogue row at once ("immediate sync")
→ confirm it in the store. Transient errors are retried with exponential backoff and jitter;
permanent ones fail the job at once, with the store rolled back and the error kept on the job.

Every job is in the journal before a worker may touch it, so a crash or kill resumes on the next
start. Workers are plain asyncio tasks owned by the queue (the App owns the queue), and no error
in a job ever escapes into the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import httpx

from media_tui.backends.base import Catalog, Storage, UploadRequest
from media_tui.content import read_for_upload
from media_tui.errors import NameTaken, PermanentError, TransferError, TransientError
from media_tui.journal import Journal
from media_tui.model import JobState, MediaAsset, UploadJob, utcnow
from media_tui.naming import disambiguated, normalize_folder, public_id_for
from media_tui.paths import MediaFile
from media_tui.safe_text import safe_text
from media_tui.store import MediaStore

log = logging.getLogger(__name__)
T = TypeVar("T")

CLAIM_TTL = 600.0
"""Seconds a name claim lasts unless renewed; a crashed uploader's claim is free after this."""
CLAIM_RENEW_EVERY = CLAIM_TTL / 3


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter; only transient errors are retried."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        # "Equal jitter": never less than half the backoff, so a herd of retries spreads out
        # without any of them hammering the server again at once.
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return backoff / 2 + rng.uniform(0, backoff / 2)


def as_transfer_error(exc: BaseException) -> TransferError:
    """Classify any failure: network trouble is transient, everything unknown is permanent."""
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError)):
        return TransientError(f"network error ({type(exc).__name__}: {exc}); it will be retried")
    return PermanentError(f"unexpected error ({type(exc).__name__}: {exc})")


class ProgressMeter:
    """Turns a transfer's byte callbacks into a few store updates a second, with a speed."""

    WINDOW = 3.0  # seconds of samples behind the speed: current, not lifetime, throughput

    def __init__(
        self,
        report: Callable[[int, float], None],
        size: int,
        clock: Callable[[], float],
        interval: float,
    ) -> None:
        self._report = report
        self._size = size
        self._clock = clock
        self._interval = interval
        self._samples: deque[tuple[float, int]] = deque()
        self._last_emit = float("-inf")

    def __call__(self, bytes_sent: int) -> None:
        now = self._clock()
        self._samples.append((now, bytes_sent))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.WINDOW:
            self._samples.popleft()
        if bytes_sent >= self._size or now - self._last_emit >= self._interval:
            self._last_emit = now
            self._report(bytes_sent, self.speed())

    def speed(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


class UploadQueue:
    """A bounded pool of upload workers with retries, cancel, pause/resume and a journal."""

    def __init__(
        self,
        store: MediaStore,
        storage: Storage,
        catalog: Catalog,
        journal: Journal | None = None,
        *,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress_interval: float = 0.25,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.catalog = catalog
        self.journal = journal
        self.concurrency = concurrency
        self.retry_policy = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._progress_interval = progress_interval
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._running = asyncio.Event()
        self._running.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._outstanding: set[str] = set()  # jobs queued or running, not yet final
        self._resumed: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}  # running job id -> its task
        self._workers: list[asyncio.Task[None]] = []
        self._inflight: dict[str, asyncio.Future[MediaAsset | None]] = {}  # checksum -> result
        self._inflight_owner: dict[str, str] = {}  # checksum -> the job uploading those bytes
        self._background: set[asyncio.Future[None]] = set()
        self._closing = False

    # ----------------------------------------------------------------- control

    async def start(self) -> list[UploadJob]:
        """Start the workers and resume what a dead process left in the journal."""
        resumed: list[UploadJob] = []
        if self.journal is not None:
            adopted = await asyncio.to_thread(self.journal.open)
            resumed = [entry.to_job() for entry in adopted]
            self._resumed.update(job.job_id for job in resumed)
            self._admit(resumed)
        for index in range(self.concurrency):
            self._workers.append(asyncio.create_task(self._worker(), name=f"upload-worker-{index}"))
        return resumed

    async def enqueue(
        self, files: Sequence[MediaFile], *, folder: str = "", tags: Iterable[str] = ()
    ) -> list[UploadJob]:
        """Queue files; each shows up in the store at once. A file already on its way is skipped."""
        folder = normalize_folder(folder)
        tag_tuple = tuple(dict.fromkeys(t.strip() for t in tags if t.strip()))
        active = {job.path: job for job in self.store.active_jobs()}
        claimed = {job.public_id: job.path for job in active.values()}
        jobs: list[UploadJob] = []
        for file in files:
            if file.path in active:
                continue
            public_id = public_id_for(file.path, folder)
            if claimed.get(public_id, file.path) != file.path:
                public_id = disambiguated(public_id, os.fsdecode(file.path))
            claimed[public_id] = file.path
            job = UploadJob(
                job_id=uuid.uuid4().hex,
                path=file.path,
                public_id=public_id,
                size=file.size,
                resource_type=file.resource_type,
                folder=folder,
                tags=tag_tuple,
            )
            active[file.path] = job
            jobs.append(job)
        if self.journal is not None and jobs:
            await asyncio.to_thread(self.journal.record_queued, jobs)
        self._admit(jobs)
        return jobs

    def _admit(self, jobs: Sequence[UploadJob]) -> None:
        with self.store.batch():
            for job in jobs:
                self.store.upload_queued(job)
        for job in jobs:
            self._outstanding.add(job.job_id)
            self._queue.put_nowait(job.job_id)
        if self._outstanding:
            self._idle.clear()

    def cancel(self, job_id: str) -> None:
        """Stop one job: a running transfer is interrupted, a queued one never starts."""
        job = self.store.job(job_id)
        if job is None or not job.state.active:
            return
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
        else:
            self.store.upload_cancelled(job_id)
            self._finalize(job_id, JobState.CANCELLED)

    def cancel_all(self) -> None:
        for job in self.store.active_jobs():
            self.cancel(job.job_id)

    async def retry(self, job_id: str) -> bool:
        """Queue a failed or cancelled job again; returns whether it was requeued."""
        job = self.store.job(job_id)
        if job is None or job.state not in (JobState.FAILED, JobState.CANCELLED):
            return False
        if self.journal is not None:
            await asyncio.to_thread(self.journal.record_queued, [job])
        self.store.job_retried(job_id)
        self._outstanding.add(job_id)
        self._idle.clear()
        self._queue.put_nowait(job_id)
        return True

    async def retry_failed(self) -> int:
        failed = [job.job_id for job in self.store.jobs.values() if job.state is JobState.FAILED]
        return sum([await self.retry(job_id) for job_id in failed])

    def pause(self) -> None:
        """Stop starting new jobs; transfers under way finish."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    async def wait_idle(self) -> None:
        """Wait until every job queued so far reached a final state."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Stop the workers. Unfinished jobs stay in the journal, to resume on the next start."""
        self._closing = True
        tasks = [*self._workers, *self._tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close)

    # ------------------------------------------------------------------ workers

    async def _worker(self) -> None:
        while True:
            job_id = await self._queue.get()
            await self._running.wait()
            job = self.store.job(job_id)
            if job is None or job.state is not JobState.QUEUED:
                continue  # cancelled while it waited
            task = asyncio.create_task(self._process(job), name=f"upload-{job_id}")
            self._tasks[job_id] = task
            try:
                await task  # a cancel of this one job ends inside _process, not here
            finally:
                self._tasks.pop(job_id, None)
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # The worker itself was cancelled while the job swallowed it: stop too.
                raise asyncio.CancelledError

    async def _process(self, job: UploadJob) -> None:
        job_id = job.job_id
        self.store.job_updated(job_id, state=JobState.UPLOADING, started_at=utcnow(), attempts=0)
        result: MediaAsset | None = None
        checksum: str | None = None
        try:
            result = await self._run(job)
        except asyncio.CancelledError:
            if self._closing:
                raise  # shutting down: the journal keeps the job for the next start
            self.store.upload_cancelled(job_id)
            self._finalize(job_id, JobState.CANCELLED)
        except Exception as exc:  # a job's failure must never reach the event loop
            error = as_transfer_error(exc)
            if not isinstance(exc, TransferError):
                log.exception("upload of %s failed unexpectedly", job_id)
            else:  # what the operator was told, kept for later (the messages hold no secrets)
                log.warning(
                    "upload of %s failed: %s", safe_text(job.public_id), safe_text(str(error))
                )
            self.store.upload_failed(job_id, str(error))
            self._finalize(job_id, JobState.FAILED)
        finally:
            current = self.store.job(job_id)
            checksum = current.checksum if current else None
            if checksum is not None:
                future = self._inflight.get(checksum)
                if future is not None and self._inflight_owner.get(checksum) == job_id:
                    del self._inflight[checksum]
                    del self._inflight_owner[checksum]
                    if not future.done():
                        future.set_result(result)

    async def _run(self, job: UploadJob) -> MediaAsset | None:
        job_id = job.job_id
        cancelled = threading.Event()
        try:
            # One read: a small file's bytes are hashed and sent from the same buffer; a large
            # one is fingerprinted here and verified again as it streams (media_tui.content).
            content, fingerprint = await asyncio.to_thread(read_for_upload, job.path, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        checksum = fingerprint.sha256
        self.store.job_updated(job_id, checksum=checksum, size=fingerprint.size)

        existing = await self._claim_checksum(job_id, checksum)
        if existing is None:
            existing = await self._with_retry(
                job_id, lambda: self.catalog.find_by_checksum(checksum)
            )
        if existing is not None:
            if existing.public_id == job.public_id and job_id in self._resumed:
                # A resumed job whose row was written before the crash: it is done, not a duplicate.
                self.store.upload_succeeded(job_id, existing)
                self._finalize(job_id, JobState.DONE)
            else:
                self.store.upload_duplicate(job_id, existing)
                self._finalize(job_id, JobState.DUPLICATE)
            return existing

        refused: set[str] = set()
        while True:
            public_id = await self._claim_public_id(job, checksum, refused)
            request = UploadRequest(
                path=job.path,
                public_id=public_id,
                resource_type=job.resource_type,
                size=fingerprint.size,
                checksum=checksum,
                folder=job.folder,
                tags=job.tags,
                md5=fingerprint.md5,
                content=content,
            )
            try:
                async with self._holding_claim(public_id, checksum, job_id):
                    row = await self._store_and_record(job_id, request)
            except NameTaken:
                # Storage holds bytes nobody claimed under this name (the console, another
                # tool): never overwritten; the job moves to the content-hash variant.
                refused.add(public_id)
                continue
            self.store.upload_succeeded(job_id, row)
            self._finalize(job_id, JobState.DONE)
            return row

    async def _store_and_record(self, job_id: str, request: UploadRequest) -> MediaAsset:
        stored = await self._with_retry(job_id, lambda: self._upload_once(job_id, request))
        self.store.job_updated(job_id, state=JobState.SYNCING, bytes_sent=request.size)
        # Once the bytes are stored the row must be written, even if the job is cancelled now:
        # a cancel at this point would leave an asset the catalogue does not know.
        return await asyncio.shield(
            self._with_retry(job_id, lambda: self.catalog.upsert(stored), state=JobState.SYNCING)
        )

    async def _claim_checksum(self, job_id: str, checksum: str) -> MediaAsset | None:
        """Same bytes twice in one batch: the second waits for the first and is its duplicate."""
        while checksum in self._inflight:
            found = await asyncio.shield(self._inflight[checksum])
            if found is not None:
                return found
        self._inflight[checksum] = asyncio.get_running_loop().create_future()
        self._inflight_owner[checksum] = job_id
        return None

    async def _claim_public_id(self, job: UploadJob, checksum: str, refused: set[str]) -> str:
        """The name this job's bytes go under, claimed in the catalogue before they move.

        The job's own id if it is free or already holds these bytes, else its content-hash
        variant. The claim is the atomic step (`Catalog.claim_name`): of two processes asking
        for one name with different bytes, exactly one gets it and the other takes the
        variant. The row is read only after the claim is held, so a name whose row was written
        (and its claim released) just before is seen too.
        """
        job_id = job.job_id
        variant = disambiguated(job.public_id, checksum)
        for public_id in (job.public_id, variant):
            if public_id in refused:
                continue
            claim = await self._with_retry(
                job_id, partial(self.catalog.claim_name, public_id, checksum, job_id, CLAIM_TTL)
            )
            if claim.owner != job_id and claim.checksum != checksum:
                continue  # other bytes are on their way under this name
            holder = await self._with_retry(job_id, partial(self.catalog.get, public_id))
            if holder is not None and holder.checksum != checksum:
                if claim.owner == job_id:
                    await self._release_claim(public_id, job_id)
                continue
            if public_id != self._current_public_id(job):
                if self.journal is not None:
                    await asyncio.to_thread(self.journal.record_retarget, job_id, public_id)
                self.store.job_updated(job_id, public_id=public_id)
            return public_id
        raise PermanentError(
            f"both {job.public_id} and {variant} already hold other files, so "
            f"{os.fsdecode(job.path)} was not uploaded; rename it or choose another folder."
        )

    def _current_public_id(self, job: UploadJob) -> str:
        current = self.store.job(job.job_id)
        return current.public_id if current is not None else job.public_id

    @contextlib.asynccontextmanager
    async def _holding_claim(
        self, public_id: str, checksum: str, owner: str
    ) -> AsyncIterator[None]:
        """Keep the claim alive while the bytes move; release it once the row is written.

        A failed or cancelled job releases it too. Shutting down keeps it: the job resumes on
        the next start under the same job id, which is the claim's owner.
        """
        renewal = asyncio.create_task(self._renew_claim(public_id, checksum, owner))
        released = False
        try:
            yield
            released = True
        except asyncio.CancelledError:
            # Shutting down keeps the claim for the resume; so does a cancel that came while
            # the row was being written (shielded, still on its way): released now, another
            # process could claim the name before that row lands.
            job = self.store.job(owner)
            released = not self._closing and (job is None or job.state is not JobState.SYNCING)
            raise
        except BaseException:
            released = True
            raise
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            if released:
                await asyncio.shield(self._release_claim(public_id, owner))

    async def _renew_claim(self, public_id: str, checksum: str, owner: str) -> None:
        while True:
            # Real time on purpose: a claim's lifetime is wall-clock time in a shared store.
            await asyncio.sleep(CLAIM_RENEW_EVERY)
            try:
                await self.catalog.claim_name(public_id, checksum, owner, CLAIM_TTL)
            except Exception as exc:  # the next round tries again; the claim lasts CLAIM_TTL
                log.warning("could not renew the claim on %s: %s", safe_text(public_id), exc)

    async def _release_claim(self, public_id: str, owner: str) -> None:
        for attempt in range(1, self.retry_policy.max_attempts + 1):
            try:
                await self.catalog.release_name(public_id, owner)
                return
            except Exception as exc:
                error = as_transfer_error(exc)
                if not error.transient or attempt == self.retry_policy.max_attempts:
                    # Harmless: an unreleased claim expires after CLAIM_TTL, and the row
                    # written meanwhile already says whose bytes the name holds.
                    log.warning(
                        "could not release the claim on %s: %s", safe_text(public_id), error
                    )
                    return
                await self._sleep(self.retry_policy.delay(attempt, self._rng))

    async def _upload_once(self, job_id: str, request: UploadRequest) -> MediaAsset:
        self.store.job_updated(job_id, bytes_sent=0, bytes_per_second=0.0)

        def report(bytes_sent: int, speed: float) -> None:
            self.store.upload_progress(job_id, bytes_sent, speed)

        meter = ProgressMeter(report, request.size, self._clock, self._progress_interval)
        return await self.storage.upload(request, meter)

    async def _with_retry(
        self,
        job_id: str,
        operation: Callable[[], Awaitable[T]],
        *,
        state: JobState = JobState.UPLOADING,
    ) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await operation()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified just below
                error = as_transfer_error(exc)
                if not error.transient or attempt >= self.retry_policy.max_attempts:
                    raise error from exc
                delay = self.retry_policy.delay(attempt, self._rng)
                self.store.job_updated(
                    job_id,
                    state=JobState.RETRYING,
                    attempts=attempt,
                    error=f"{error} (attempt {attempt} of {self.retry_policy.max_attempts}; retrying in {delay:.1f} s)",
                )
                await self._sleep(delay)
                self.store.job_updated(job_id, state=state, error=None)

    def _finalize(self, job_id: str, state: JobState) -> None:
        """Bookkeeping for a job reaching a final state: journal, idle tracking."""
        if job_id not in self._outstanding:
            return
        self._outstanding.discard(job_id)
        self._resumed.discard(job_id)
        if self.journal is not None:
            future = asyncio.get_running_loop().run_in_executor(
                None, self.journal.record_finished, job_id, state
            )
            self._background.add(future)
            future.add_done_callback(self._background.discard)
        if not self._outstanding:
            self._idle.set()
