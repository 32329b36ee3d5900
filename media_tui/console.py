"""Headless output for the CLI: JSON lines, plain result lines, and live progress on a terminal.

All three read the MediaStore through its subscription, like the TUI does. Untrusted text
(file names, public ids, errors that quote them) goes through `safe_text` before it reaches a
terminal and is never parsed as Rich markup.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from media_tui.model import JobState, UploadJob
from media_tui.paths import Rejected
from media_tui.safe_text import safe_json_dumps, safe_text, truncate
from media_tui.store import ChangeSet, MediaStore

RESULT_STATUS = {
    JobState.DONE: "uploaded",
    JobState.DUPLICATE: "duplicate",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "failed",
}


def write_line(line: str, stream: TextIO | None = None) -> None:
    """Write one line of output, and survive the reader going away (`media-tui … | head`).

    A closed pipe raised BrokenPipeError inside the store's subscriber, in the middle of an
    upload: the worker died and the command hung. The work goes on (nothing is lost); only
    the rest of the output is dropped.
    """
    stream = stream or sys.stdout
    try:
        stream.write(line + "\n")
        stream.flush()
    except BrokenPipeError:
        if stream is sys.stdout:
            discard_stdout()


def discard_stdout() -> None:
    """Point stdout at /dev/null, so that writes after its reader went away are dropped."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def emit_json(obj: dict[str, Any], stream: TextIO | None = None) -> None:
    write_line(safe_json_dumps(obj), stream)


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


class _NameColumn(ProgressColumn):
    """The file name as plain text: a name like `a[/` must not be read as markup."""

    def render(self, task: Task) -> Text:
        return Text(truncate(safe_text(task.fields.get("name", "")), 32).ljust(32), no_wrap=True)


class UploadReporter:
    """Prints one result per file as jobs finish; draws live progress when on a terminal."""

    def __init__(self, store: MediaStore, *, json_mode: bool, stream: TextIO | None = None) -> None:
        self.store = store
        self.json_mode = json_mode
        self.stream = stream or sys.stdout
        self.counts: dict[str, int] = {"uploaded": 0, "duplicate": 0, "failed": 0}
        self._printed: set[str] = set()
        self._interactive = not json_mode and self.stream.isatty()
        self._progress: Progress | None = None
        self._bars: dict[str, TaskID] = {}
        self._total: TaskID | None = None

    def __enter__(self) -> UploadReporter:
        if self._interactive:
            self._progress = Progress(
                _NameColumn(),
                BarColumn(bar_width=None),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                refresh_per_second=8,
                transient=False,
            )
            self._progress.start()
            self._total = self._progress.add_task("", total=0, name="total")
        self._unsubscribe = self.store.subscribe(self._on_change)
        return self

    def __exit__(self, *exc: object) -> None:
        self._unsubscribe()
        if self._progress is not None:
            self._progress.stop()

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    def rejected(self, items: Iterable[Rejected]) -> None:
        for item in items:
            self.counts["failed"] += 1
            self._result(path=item.input, status="failed", error=item.reason)

    def _on_change(self, changes: ChangeSet) -> None:
        for job_id in changes.jobs:
            job = self.store.job(job_id)
            if job is None:
                continue
            if not job.state.active and job_id not in self._printed:
                self._printed.add(job_id)
                self._finish(job)
            elif job.state.active:
                self._show(job)
        self._show_total()

    def _finish(self, job: UploadJob) -> None:
        status = RESULT_STATUS.get(job.state, "failed")
        self.counts[status] += 1
        asset = self.store.assets.get(job.public_id) if status != "failed" else None
        if self._progress is not None and job.job_id in self._bars:
            self._progress.remove_task(self._bars.pop(job.job_id))
        error = job.error if status == "failed" else None
        if job.state is JobState.CANCELLED:
            error = "the upload was cancelled; run the command again to upload it"
        self._result(
            path=os.fsdecode(job.path),
            status=status,
            public_id=job.public_id if status != "failed" else None,
            url=asset.url if asset else None,
            size=asset.bytes if asset else job.size,
            error=error,
        )

    def _result(
        self,
        *,
        path: str,
        status: str,
        public_id: str | None = None,
        url: str | None = None,
        size: int | None = None,
        error: str | None = None,
    ) -> None:
        if self.json_mode:
            emit_json(
                {
                    "path": path,
                    "status": status,
                    "public_id": public_id,
                    "url": url,
                    "bytes": size,
                    "error": error,
                },
                self.stream,
            )
            return
        line = f"{status:<9} {safe_text(path)}"
        if public_id:
            line += f" -> {safe_text(public_id)}"
        if error:
            line += f": {safe_text(error)}"
        if self._progress is not None:
            self._progress.console.print(Text(line), soft_wrap=True)
        else:
            write_line(line, self.stream)

    def _show(self, job: UploadJob) -> None:
        if self._progress is None:
            return
        bar = self._bars.get(job.job_id)
        if bar is None:
            bar = self._progress.add_task("", total=job.size, name=job.name)
            self._bars[job.job_id] = bar
        self._progress.update(bar, completed=job.bytes_sent)

    def _show_total(self) -> None:
        if self._progress is None or self._total is None:
            return
        jobs = list(self.store.jobs.values())
        total = sum(job.size for job in jobs)
        done = sum(job.size if not job.state.active else job.bytes_sent for job in jobs)
        finished = sum(1 for job in jobs if not job.state.active)
        name = f"{finished}/{len(jobs)} files"
        if self.counts["failed"]:
            name += f", {self.counts['failed']} failed"
        self._progress.update(self._total, total=total, completed=done, name=name)

    def summary(self) -> str:
        return ", ".join(f"{count} {status}" for status, count in self.counts.items())
