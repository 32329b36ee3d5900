"""Headless output for `media-tui sync` and `media-tui webhook`: progress, lines, JSON.

`sync` shows a progress bar on a terminal (stderr), then one line per asset that needed
attention and a summary; with `--json`, one object per asset and a final `{"summary": true, …}`.
`webhook` prints one line (or object) per notification received. Public ids are untrusted
text: they pass through `safe_text` and are never read as markup.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from media_tui.console import emit_json, write_line
from media_tui.safe_text import safe_text
from media_tui.sync import SyncItem, SyncProgress, SyncReport

OUTCOME_WORDS = {
    "added": "added to the catalogue",
    "updated": "updated from storage",
    "gone": "in the catalogue, but gone from storage",
    "pruned": "removed from the catalogue (gone from storage)",
    "failed": "failed",
}


class SyncReporter:
    """Receives `SyncProgress` from `reconcile()` and writes what the operator should see."""

    def __init__(self, *, json_mode: bool, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self._stream = stream
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if not json_mode and sys.stderr.isatty():
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> SyncReporter:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("listing storage", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, progress: SyncProgress) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                description=progress.phase,
                completed=progress.done,
                total=progress.total,
            )
        if progress.item is not None:
            self.item(progress.item)

    @property
    def stream(self) -> TextIO:
        # Looked up on each write: while the bar is live, Rich stands in for sys.stdout and
        # prints what is written above the bar.
        return self._stream or sys.stdout

    def item(self, item: SyncItem) -> None:
        if self.json_mode:
            emit_json(item.to_json(), self.stream)
            return
        line = f"{safe_text(item.public_id)}: {OUTCOME_WORDS[item.outcome]}"
        if item.error:
            line += f" ({safe_text(item.error)})"
        self._print(line)

    def finish(self, report: SyncReport) -> None:
        if self.json_mode:
            emit_json(report.to_json(), self.stream)
        else:
            self._print(f"sync: {report.summary()}")

    def _print(self, line: str) -> None:
        write_line(line, self.stream)


class WebhookReporter:
    """One line per notification the receiver answered."""

    def __init__(self, *, json_mode: bool, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stream = stream or sys.stdout

    def __call__(self, result: dict[str, Any]) -> None:
        if self.json_mode:
            emit_json(result, self.stream)
        else:
            write_line(f"{result['status']} {safe_text(str(result['result']))}", self.stream)
