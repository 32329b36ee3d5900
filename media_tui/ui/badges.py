"""Status badges: the short text and semantic style name a card or row shows for its state.

Pure Python. The style name is not a colour: each view maps it to a theme-aware style (the
grid resolves `asset-grid--badge-<style>` component classes), so every theme works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from media_tui.model import JobState, UploadJob
from media_tui.ui.library_view import GridEntry

__all__ = ["BADGE_STYLES", "Badge", "BadgeStyle", "badge_for", "badge_for_job"]

BadgeStyle = Literal["queued", "uploading", "syncing", "synced", "failed", "deleting", "retrying"]

BADGE_STYLES: tuple[BadgeStyle, ...] = (
    "queued",
    "uploading",
    "syncing",
    "synced",
    "failed",
    "deleting",
    "retrying",
)


@dataclass(frozen=True, slots=True)
class Badge:
    text: str
    style: BadgeStyle


SYNCED = Badge("✓ synced", "synced")
DELETING = Badge("deleting", "deleting")

_FIXED: dict[JobState, Badge] = {
    JobState.QUEUED: Badge("queued", "queued"),
    JobState.SYNCING: Badge("syncing", "syncing"),
    JobState.RETRYING: Badge("retrying", "retrying"),
    JobState.DONE: SYNCED,
    # The bytes were already in the library: for the operator that is as good as synced.
    JobState.DUPLICATE: Badge("✓ duplicate", "synced"),
    JobState.FAILED: Badge("✗ failed", "failed"),
    # Cancelling is the operator's choice, not an error: shown muted, like a queued job.
    JobState.CANCELLED: Badge("cancelled", "queued"),
}


def badge_for_job(job: UploadJob) -> Badge:
    """The badge for an upload job in any state (the tasks view and upload cards use it too)."""
    if job.state is JobState.UPLOADING:
        # Floor, so "100%" only ever means every byte was sent.
        return Badge(f"↑ {int(job.fraction * 100)}%", "uploading")
    return _FIXED[job.state]


def badge_for(entry: GridEntry) -> Badge:
    """The badge for a grid entry: its delete, else its active job, else "synced"."""
    if entry.deleting:
        return DELETING
    if entry.job is not None:
        return badge_for_job(entry.job)
    return SYNCED
