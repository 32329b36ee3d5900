"""Floating upload cards and the one-line aggregate: how transfers look while they happen.

Both only read the MediaStore. The tray keeps a fixed pool of card widgets and re-binds them to
jobs on every refresh, so hundreds of queued files cost the same as five. Text is built as
`rich.text.Text` from safe strings — never markup — because names are untrusted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from media_tui.console import human_size
from media_tui.model import JobState, UploadJob, utcnow
from media_tui.safe_text import safe_text, truncate
from media_tui.store import MediaStore
from media_tui.ui.bars import BAR_WIDTH, CARD_TEXT_WIDTH, bar, percent_text
from media_tui.ui.quiet_update import show_if, update_if_changed
from media_tui.ui.sync_card import SyncCard, SyncStatus

MAX_CARDS = 5
LINGER = timedelta(seconds=3)  # how long a finished card stays before it leaves

STATE_LABEL = {
    JobState.QUEUED: "queued",
    JobState.UPLOADING: "uploading",
    JobState.SYNCING: "syncing",
    JobState.RETRYING: "retrying",
    JobState.DONE: "✓ synced",
    JobState.DUPLICATE: "= duplicate",
    JobState.FAILED: "✗ failed",
    JobState.CANCELLED: "cancelled",
}
STATE_STYLE = {
    JobState.QUEUED: "dim",
    JobState.UPLOADING: "bold",
    JobState.SYNCING: "bold",
    JobState.RETRYING: "bold",
    JobState.DONE: "bold",
    JobState.DUPLICATE: "",
    JobState.FAILED: "bold",
    JobState.CANCELLED: "dim",
}


def format_eta(seconds: float | None) -> str:
    """Readable, at most two units: `0:42`, `12:05`, `3h 2m`, `>1d`."""
    if seconds is None:
        return "--:--"
    seconds = round(seconds)
    if seconds >= 86_400:
        return ">1d"
    if seconds >= 3_600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


def format_speed(bytes_per_second: float) -> str:
    return f"{human_size(bytes_per_second)}/s" if bytes_per_second > 0 else "-- /s"


def visible_jobs(store: MediaStore, now: datetime) -> tuple[list[UploadJob], int]:
    """The jobs that get a card (busiest first, failures kept, finished ones for a moment),
    and how many queued ones are left over."""
    running, queued, failed, recent = [], [], [], []
    for job in store.jobs.values():
        if job.state is JobState.QUEUED:
            queued.append(job)
        elif job.state.active:
            running.append(job)
        elif job.state is JobState.FAILED:
            failed.append(job)
        elif job.finished_at is not None and now - job.finished_at < LINGER:
            recent.append(job)
    shown = (running + failed + recent + queued)[:MAX_CARDS]
    hidden_queued = len(queued) - sum(1 for job in shown if job.state is JobState.QUEUED)
    return shown, hidden_queued


def card_text(job: UploadJob) -> Text:
    """Three lines: name and state; bar and percent; bytes, speed and ETA (or the error)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    name = truncate(safe_text(job.name), CARD_TEXT_WIDTH - 13)
    text.append(name.ljust(CARD_TEXT_WIDTH - 12), style="bold")
    text.append(STATE_LABEL[job.state].rjust(12), style=STATE_STYLE[job.state])
    text.append("\n")
    done, todo = bar(job.fraction, BAR_WIDTH)
    text.append(done, style="bold")
    text.append(todo, style="dim")
    text.append(" " + percent_text(job.fraction).rjust(5))
    text.append("\n")
    if job.error:
        text.append(truncate(safe_text(job.error), CARD_TEXT_WIDTH), style="bold")
    else:
        sent = f"{human_size(job.bytes_sent)} / {human_size(job.size)}"
        rate = format_speed(job.bytes_per_second) if job.state.active else ""
        eta = f"ETA {format_eta(job.eta_seconds)}" if job.state is JobState.UPLOADING else ""
        text.append("  ".join(part for part in (sent, rate, eta) if part), style="dim")
    return text


class UploadCard(Static):
    """One job's card; re-bound to whichever job the tray shows in this slot."""

    def show_job(self, job: UploadJob) -> None:
        update_if_changed(self, card_text(job), f"-{job.state.value}")
        show_if(self, True)


class UploadTray(Vertical):
    """The overlay of upload cards at the top right, plus a "+N queued" line."""

    def __init__(
        self,
        store: MediaStore,
        *,
        now: Callable[[], datetime] = utcnow,
        sync_status: Callable[[], SyncStatus | None] = lambda: None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.store = store
        self.now = now
        self.sync_status = sync_status

    def compose(self) -> ComposeResult:
        yield SyncCard()
        for _ in range(MAX_CARDS):
            yield UploadCard()
        yield Static(id="tray-more")

    def on_mount(self) -> None:
        self.refresh_cards()

    def refresh_cards(self) -> None:
        now = self.now()
        jobs, hidden = visible_jobs(self.store, now)
        sync_card = self.query_one(SyncCard)
        sync_card.show_status(self.sync_status(), now)
        cards = list(self.query(UploadCard))
        for card, job in zip(cards, jobs, strict=False):
            card.show_job(job)
        for card in cards[len(jobs) :]:
            show_if(card, False)
        more = self.query_one("#tray-more", Static)
        show_if(more, hidden > 0)
        update_if_changed(more, Text(f"+{hidden} queued", style="bold"))
        show_if(self, bool(jobs) or sync_card.display)


def summary_text(store: MediaStore, paused: bool) -> Text:
    """The aggregate line: files done/total, % by bytes, speed, ETA, failures."""
    jobs = list(store.jobs.values())
    active = [job for job in jobs if job.state.active]
    text = Text(no_wrap=True, overflow="ellipsis")
    if not active and not any(job.state is JobState.FAILED for job in jobs):
        return text
    total = sum(job.size for job in jobs)
    sent = sum(job.bytes_sent if job.state.active else job.size for job in jobs)
    finished = len(jobs) - len(active)
    speed = sum(job.bytes_per_second for job in active if job.state is JobState.UPLOADING)
    failed = sum(1 for job in jobs if job.state is JobState.FAILED)
    percent = 100.0 * sent / total if total else 100.0
    eta = format_eta((total - sent) / speed) if speed > 0 else "--:--"
    text.append("↑ ", style="bold")
    text.append(
        f"{finished}/{len(jobs)} files · {percent:.0f}% · {format_speed(speed)} · ETA {eta}"
    )
    if failed:
        text.append(f" · {failed} failed", style="bold")
    if paused:
        text.append(" · paused", style="bold")
    return text
