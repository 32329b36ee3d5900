"""The one ordering rule for versions of an asset: which of two is newer, and what a delete ends.

Realtime events, resync snapshots, the local change log and Cloudinary's notifications all
arrive out of order at times (a reconnect, a redelivery, a slow network, duplicates). Every
place that decides whether an incoming version may replace what it knows asks here, so the
rule is written once and the store, the feeds and the webhook cannot disagree:

1. **Rows are ordered by `updated_at`.** The catalogue sets it (a trigger in PostgreSQL and in
   SQLite) and makes it strictly increasing per row, so two versions of one row never tie. A
   version without one cannot be ordered and is taken as the newest word there is.
2. **A delete is ordered by its commit timestamp**, which has millisecond precision (Supabase's
   `commit_timestamp`, SQLite's `strftime('%f')`) while `updated_at` has microseconds. The
   delete may have committed at any moment of its millisecond, so it ends every version written
   up to the end of that millisecond, and no later one (a re-upload under the same name).
3. **A delete keyed only by the row id** (Supabase under row-level security sends nothing
   else) ends that row for good: row ids come from an identity column and are never reused,
   so any event for that row that arrives after its delete is stale, whatever its time.
4. **Cloudinary notifications are ordered by the asset's `version`** (the Unix second of its
   upload): a notification about an older version than the catalogue row's never applies, and
   a delete of version V does not remove a row re-uploaded since (a later version).
"""

from __future__ import annotations

from datetime import datetime, timedelta

COMMIT_TIMESTAMP_RESOLUTION = timedelta(milliseconds=1)
"""The precision of a delete's commit timestamp (rule 2)."""


def is_older(incoming: datetime | None, current: datetime | None) -> bool:
    """Whether a version stamped `incoming` is older than the one stamped `current` (rule 1)."""
    return incoming is not None and current is not None and incoming < current


def delete_outdates(committed_at: datetime | None, updated_at: datetime | None) -> bool:
    """Whether a delete committed at `committed_at` ends the version stamped `updated_at` (rule 2).

    Without a time on either side there is nothing to order by, and the delete wins.
    """
    if committed_at is None or updated_at is None:
        return True
    return updated_at <= committed_at + COMMIT_TIMESTAMP_RESOLUTION


def version_is_stale(incoming: int | None, current: int | None) -> bool:
    """Whether a notification about asset version `incoming` is older than the row's (rule 4)."""
    return incoming is not None and current is not None and incoming < current
