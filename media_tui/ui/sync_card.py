"""The "Sync now" card: a reconciliation's progress and result, shown like an upload's.

The App runs the sync and keeps a `SyncStatus`; the card (first in the upload tray) only reads
it: the phase with a bar while it runs, then the counts — and the error, if it failed —
for a while after it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rich.text import Text
from textual.widgets import Static

from media_tui.safe_text import safe_text, truncate
from media_tui.sync import SYNC_OUTCOMES, SyncOutcome, SyncProgress, SyncReport
from media_tui.ui.bars import BAR_WIDTH, CARD_TEXT_WIDTH, bar, percent_text
from media_tui.ui.quiet_update import show_if, update_if_changed

SYNC_LINGER = timedelta(seconds=8)  # a result has more to read than a finished upload


@dataclass
class SyncStatus:
    """One reconciliation as the screen sees it."""

    prune: bool
    started_at: datetime
    phase: str = "listing storage"
    done: int = 0
    total: int | None = None
    counts: dict[SyncOutcome, int] = field(default_factory=dict)
    error: str | None = None
    finished_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    def advance(self, progress: SyncProgress) -> None:
        self.phase, self.done, self.total = progress.phase, progress.done, progress.total
        if progress.item is not None:
            outcome = progress.item.outcome
            self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def finish(self, now: datetime, report: SyncReport | None, error: str | None = None) -> None:
        self.finished_at, self.error = now, error
        if report is not None:
            self.counts = {outcome: report.count(outcome) for outcome in SYNC_OUTCOMES}

    def visible(self, now: datetime) -> bool:
        return self.finished_at is None or now - self.finished_at < SYNC_LINGER

    def counts_text(self) -> str:
        shown = [f"{n:,} {outcome}" for outcome, n in self.counts.items() if n]
        return " · ".join(shown) or "nothing to change"


def sync_card_text(status: SyncStatus) -> Text:
    """Three lines, like an upload card: title and state; bar; counts or the error."""
    text = Text(no_wrap=True, overflow="ellipsis")
    title = "Sync and prune" if status.prune else "Sync now"
    if status.error:
        state = "✗ failed"
    elif status.running:
        state = status.phase
    else:
        state = "✓ done"
    text.append(title.ljust(CARD_TEXT_WIDTH - len(state)), style="bold")
    text.append(state, style="bold")
    text.append("\n")
    fraction = 1.0 if not status.running else (status.done / status.total if status.total else 0)
    done, todo = bar(fraction, BAR_WIDTH)
    text.append(done, style="bold")
    text.append(todo, style="dim")
    counter = percent_text(fraction) if status.total is not None else f"{status.done:,}"
    text.append(" " + counter.rjust(5))
    text.append("\n")
    if status.error:
        text.append(truncate(safe_text(status.error), CARD_TEXT_WIDTH), style="bold")
    else:
        text.append(truncate(status.counts_text(), CARD_TEXT_WIDTH), style="dim")
    return text


class SyncCard(Static):
    """The tray's first card, shown while a sync runs and for a while after."""

    def show_status(self, status: SyncStatus | None, now: datetime) -> None:
        if status is None or not status.visible(now):
            show_if(self, False)
            return
        classes = "-failed" if status.error else "-syncing" if status.running else "-done"
        update_if_changed(self, sync_card_text(status), classes)
        show_if(self, True)
