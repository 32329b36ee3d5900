"""The upload journal: every job is on disk before work on it starts.

Each process appends to its own JSON-lines file in `<library>/journal/` and holds an exclusive
`flock` on it while alive. A file whose lock can be taken belongs to a process that died (crash,
SIGKILL, Ctrl-C with jobs left): the next process to start adopts its unfinished jobs, copies
them into its own journal, then removes the orphan. Adoption is keyed by job id, so a crash in
the middle of adopting never runs a job twice.

A torn last line (killed mid-write) is ignored: the job it described had not started, because a
job is only handed to a worker after its `queued` record was written and fsynced.

The methods are synchronous file I/O; the upload queue calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from media_tui.model import JobState, ResourceType, UploadJob

SUFFIX = ".jsonl"


@dataclass(frozen=True, slots=True)
class JournalJob:
    """What must survive a crash to finish a job: enough to rebuild the UploadJob."""

    job_id: str
    path: str
    public_id: str
    size: int
    resource_type: str
    folder: str
    tags: tuple[str, ...]

    @classmethod
    def of(cls, job: UploadJob) -> JournalJob:
        return cls(
            job_id=job.job_id,
            path=os.fsdecode(job.path),
            public_id=job.public_id,
            size=job.size,
            resource_type=job.resource_type.value,
            folder=job.folder,
            tags=job.tags,
        )

    def to_job(self) -> UploadJob:
        return UploadJob(
            job_id=self.job_id,
            path=Path(self.path),
            public_id=self.public_id,
            size=self.size,
            resource_type=ResourceType(self.resource_type),
            folder=self.folder,
            tags=self.tags,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "path": self.path,
            "public_id": self.public_id,
            "size": self.size,
            "resource_type": self.resource_type,
            "folder": self.folder,
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalJob:
        return cls(
            job_id=str(data["job_id"]),
            path=str(data["path"]),
            public_id=str(data["public_id"]),
            size=int(data["size"]),
            resource_type=str(data.get("resource_type", "image")),
            folder=str(data.get("folder", "")),
            tags=tuple(str(t) for t in data.get("tags", ())),
        )


class Journal:
    """This process's journal file plus the adoption of dead processes' files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: IO[str] | None = None
        self._path: Path | None = None
        self._pending: dict[str, JournalJob] = {}
        self._lock = threading.Lock()

    @property
    def path(self) -> Path | None:
        return self._path

    def pending(self) -> list[JournalJob]:
        with self._lock:
            return list(self._pending.values())

    def open(self) -> list[JournalJob]:
        """Create this process's journal and adopt every orphan; return the adopted jobs."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path = self.directory / f"{os.getpid()}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        handle = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the process's life
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file = handle
        adopted: dict[str, JournalJob] = {}
        for candidate in sorted(self.directory.glob(f"*{SUFFIX}")):
            if candidate != self._path:
                self._adopt(candidate, adopted)
        return list(adopted.values())

    def _adopt(self, candidate: Path, adopted: dict[str, JournalJob]) -> None:
        try:
            handle = open(candidate, encoding="utf-8", errors="replace")  # noqa: SIM115
        except FileNotFoundError:
            return  # adopted by another process a moment ago
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its owner is alive
            # Another adopter may have finished and unlinked it between our open and our lock.
            try:
                if os.stat(candidate).st_ino != os.fstat(handle.fileno()).st_ino:
                    return
            except FileNotFoundError:
                return
            jobs = [job for job in read_pending(handle) if job.job_id not in adopted]
            self.record_queued_jobs(jobs)  # ours now, on disk, before the orphan goes
            adopted.update((job.job_id, job) for job in jobs)
            candidate.unlink(missing_ok=True)

    def record_queued(self, jobs: Iterable[UploadJob]) -> None:
        self.record_queued_jobs([JournalJob.of(job) for job in jobs])

    def record_queued_jobs(self, jobs: list[JournalJob]) -> None:
        """Write and fsync the jobs; only then may work on them start."""
        if not jobs:
            return
        lines = "".join(_line({"op": "queued", "job": job.to_json()}) for job in jobs)
        with self._lock:
            self._write(lines, sync=True)
            self._pending.update((job.job_id, job) for job in jobs)

    def record_retarget(self, job_id: str, public_id: str) -> None:
        """The job will write another public id (its name was taken by other bytes)."""
        with self._lock:
            job = self._pending.get(job_id)
            if job is None:
                return
            self._write(
                _line({"op": "retarget", "job_id": job_id, "public_id": public_id}), sync=True
            )
            self._pending[job_id] = dataclasses.replace(job, public_id=public_id)

    def record_finished(self, job_id: str, state: JobState) -> None:
        """The job reached a final state; a lost record only means a harmless re-check later."""
        with self._lock:
            if self._pending.pop(job_id, None) is None:
                return
            self._write(
                _line({"op": "finished", "job_id": job_id, "state": state.value}), sync=False
            )

    def close(self) -> None:
        """Release the journal; remove it when nothing is left to resume."""
        with self._lock:
            if self._file is None:
                return
            if not self._pending and self._path is not None:
                self._path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _write(self, text: str, *, sync: bool) -> None:
        if self._file is None:
            raise RuntimeError("the journal is not open")
        self._file.write(text)
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())


def read_pending(handle: IO[str]) -> list[JournalJob]:
    """Replay a journal: queued jobs minus finished ones, retargets applied, torn lines skipped."""
    pending: dict[str, JournalJob] = {}
    for raw in handle:
        try:
            entry = json.loads(raw)
            op = entry["op"]
            if op == "queued":
                job = JournalJob.from_json(entry["job"])
                pending[job.job_id] = job
            elif op == "retarget" and entry["job_id"] in pending:
                old = pending[entry["job_id"]]
                pending[old.job_id] = dataclasses.replace(old, public_id=str(entry["public_id"]))
            elif op == "finished":
                pending.pop(str(entry["job_id"]), None)
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a kill mid-write, or garbage: nothing to resume from it
    return list(pending.values())


def _line(entry: dict[str, Any]) -> str:
    # ensure_ascii keeps file names made of undecodable bytes (lone surrogates) round-trippable.
    return json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n"
