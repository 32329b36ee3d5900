"""MediaStore: the single source of truth for what the operator sees.

Plain Python, no Textual and no I/O. Every change is an action method (a reducer step); each
action, or each `batch()` of them, ends in one `ChangeSet` handed to every subscriber. The TUI,
the headless CLI and the benchmarks all read this one model.

The rules it keeps (DESIGN §1):
- an upload is visible optimistically from the moment it is queued and becomes the confirmed
  asset when either the upload result or the realtime event arrives, whichever is first, never
  twice — both are keyed by the job's `public_id`;
- a failed upload or delete rolls back to exactly the state before it, the error kept on the job;
- remote events are idempotent and ordered by `media_tui.ordering` (the one rule, used here
  for every decision): a duplicate or an older event never overwrites newer state, and a delete
  leaves a tombstone so a late, older upsert cannot bring the asset back — whichever of the two
  arrives first, the outcome is the same;
- a delete keyed only by a row id (RLS) kills that row for good, even when it arrives before the
  row's INSERT; a rename (the same row id under a new public id) removes the old name;
- a resync converges to the server's snapshot while keeping in-flight optimistic entries, and
  remembers what the snapshot said so an event that was already in flight cannot undo it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from media_tui.model import (
    ChangeEvent,
    ConnectionChanged,
    ConnectionState,
    JobState,
    MediaAsset,
    RemoteDelete,
    RemoteUpsert,
    Resync,
    UploadJob,
    utcnow,
)
from media_tui.ordering import COMMIT_TIMESTAMP_RESOLUTION, delete_outdates, is_older

ROW_MEMORY = 100_000
"""How many dead row ids, and how many row versions, the store remembers (the newest ones).

Both are facts that stay true for ever (row ids are never reused), so they outlive resyncs;
the bound only keeps a long session's memory flat. Forgetting one costs at most a ghost that
the next resync removes.
"""


@dataclass(slots=True)
class ChangeSet:
    """What one action or batch changed, by key. `reset` means: re-read everything."""

    assets: set[str] = field(default_factory=set)  # public ids added, changed or removed
    jobs: set[str] = field(default_factory=set)  # job ids added or changed
    connection: bool = False
    reset: bool = False

    def __bool__(self) -> bool:
        return bool(self.assets or self.jobs or self.connection or self.reset)


Subscriber = Callable[[ChangeSet], None]


class MediaStore:
    """Assets, upload jobs and the connection state, changed only through actions."""

    def __init__(self) -> None:
        self._assets: dict[str, MediaAsset] = {}
        self._row_ids: dict[
            int, str
        ] = {}  # catalogue primary key -> public id, for PK-only deletes
        self._jobs: dict[str, UploadJob] = {}  # insertion-ordered: the tasks view order
        self._hidden: dict[str, MediaAsset] = {}  # optimistically deleted, kept for restore
        self._tombstones: dict[str, datetime] = {}  # public id -> when it was deleted
        # Row ids deleted by a row-id-only delete: every later event for them is stale (rule 3).
        self._dead_rows: OrderedDict[int, None] = OrderedDict()
        # The newest `updated_at` seen per row id, kept after the row leaves the store (a rename,
        # a delete): a late event for a row is stale when that row has been seen newer (rule 1).
        self._row_versions: OrderedDict[int, datetime] = OrderedDict()
        # The last resync's time and public ids: a version no newer than the snapshot, of a
        # name the snapshot did not have, was gone from the server by then.
        self._snapshot_at: datetime | None = None
        self._snapshot_ids: frozenset[str] = frozenset()
        self._connection = ConnectionState.OFFLINE
        self._connection_detail: str | None = None
        self._connection_since = utcnow()
        self._subscribers: list[Subscriber] = []
        self._pending = ChangeSet()
        self._batch_depth = 0

    # ------------------------------------------------------------------ reading

    @property
    def assets(self) -> dict[str, MediaAsset]:
        """Confirmed assets by public id (a read-only view by convention; do not mutate)."""
        return self._assets

    @property
    def jobs(self) -> dict[str, UploadJob]:
        return self._jobs

    @property
    def connection(self) -> ConnectionState:
        return self._connection

    @property
    def connection_detail(self) -> str | None:
        return self._connection_detail

    @property
    def connection_since(self) -> datetime:
        return self._connection_since

    def job(self, job_id: str) -> UploadJob | None:
        return self._jobs.get(job_id)

    def active_jobs(self) -> list[UploadJob]:
        return [job for job in self._jobs.values() if job.state.active]

    def optimistic_jobs(self) -> dict[str, UploadJob]:
        """Active jobs whose asset is not confirmed yet, by public id: the grid's placeholders."""
        return {
            job.public_id: job
            for job in self._jobs.values()
            if job.state.active and job.public_id not in self._assets
        }

    def public_ids(self) -> set[str]:
        """Every public id the grid holds: confirmed assets and optimistic entries."""
        return set(self._assets) | set(self.optimistic_jobs())

    def job_for(self, public_id: str) -> UploadJob | None:
        """The newest active job writing this public id, for the card's badge."""
        found = None
        for job in self._jobs.values():
            if job.public_id == public_id and job.state.active:
                found = job
        return found

    def is_deleting(self, public_id: str) -> bool:
        return public_id in self._hidden

    # ------------------------------------------------------------ subscribing

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber(changes)` after every action or batch; returns an unsubscribe."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Apply many actions and notify subscribers once, with the union of their changes."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self._flush()

    def _flush(self) -> None:
        if self._batch_depth or not self._pending:
            return
        changes, self._pending = self._pending, ChangeSet()
        for subscriber in list(self._subscribers):
            subscriber(changes)

    @contextmanager
    def _action(self) -> Iterator[ChangeSet]:
        try:
            yield self._pending
        finally:
            self._flush()

    # ------------------------------------------------------ internal mutation

    def _put_asset(self, asset: MediaAsset, changes: ChangeSet) -> None:
        old = self._assets.get(asset.public_id)
        if old is not None and old.row_id is not None and old.row_id != asset.row_id:
            self._row_ids.pop(old.row_id, None)
        self._assets[asset.public_id] = asset
        if asset.row_id is not None:
            self._row_ids[asset.row_id] = asset.public_id
            self._saw_row(asset)
        self._tombstones.pop(asset.public_id, None)
        if old != asset:
            changes.assets.add(asset.public_id)

    def _drop_asset(self, public_id: str, changes: ChangeSet) -> MediaAsset | None:
        old = self._assets.pop(public_id, None)
        if old is not None:
            if old.row_id is not None:
                self._row_ids.pop(old.row_id, None)
            changes.assets.add(public_id)
        return old

    def _put_job(self, job: UploadJob, changes: ChangeSet) -> None:
        self._jobs[job.job_id] = job
        changes.jobs.add(job.job_id)
        changes.assets.add(job.public_id)  # its optimistic entry or badge changed too

    def _newest(self, public_id: str) -> MediaAsset | None:
        """The latest known version, whether shown or hidden by a pending delete."""
        return self._assets.get(public_id) or self._hidden.get(public_id)

    def _holder(self, row_id: int) -> str | None:
        """The public id whose newest known version is row `row_id`, shown or hidden."""
        public_id = self._row_ids.get(row_id)
        if public_id is None:
            # Few deletes are pending at a time, so a scan beats keeping a second index.
            public_id = next((pid for pid, a in self._hidden.items() if a.row_id == row_id), None)
        return public_id

    def _saw_row(self, asset: MediaAsset) -> None:
        if asset.row_id is None or asset.updated_at is None:
            return
        known = self._row_versions.get(asset.row_id)
        if known is None or is_older(known, asset.updated_at):
            self._row_versions[asset.row_id] = asset.updated_at
        self._row_versions.move_to_end(asset.row_id)
        if len(self._row_versions) > ROW_MEMORY:
            self._row_versions.popitem(last=False)

    def _kill_row(self, row_id: int) -> None:
        self._dead_rows[row_id] = None
        self._dead_rows.move_to_end(row_id)
        if len(self._dead_rows) > ROW_MEMORY:
            self._dead_rows.popitem(last=False)

    def _bury(self, public_id: str, deleted_at: datetime) -> None:
        """Record a tombstone; an older delete arriving late never moves one back (rule 2)."""
        known = self._tombstones.get(public_id)
        if known is None or is_older(known, deleted_at):
            self._tombstones[public_id] = deleted_at

    def _is_stale(self, asset: MediaAsset) -> bool:
        """Whether what the store knows already ends this version (rules 1–3 of `ordering`)."""
        updated_at = asset.updated_at
        row_id = asset.row_id
        if row_id is not None and row_id in self._dead_rows:
            return True  # rule 3: the row was deleted, whatever this version's time
        if (
            self._snapshot_at is not None
            and updated_at is not None
            and asset.public_id not in self._snapshot_ids
            and not is_older(self._snapshot_at, updated_at)
        ):
            # Written no later than the last snapshot, yet not in it: deleted or renamed by then
            # (an event that was in flight across the resync, its delete perhaps lost).
            return True
        current = self._newest(asset.public_id)
        if current is not None and is_older(updated_at, current.updated_at):
            return True
        if row_id is not None:
            # A row's versions are ordered whatever name they carry: after a rename, a late
            # version of the row under its old name is older than the one under the new name.
            if is_older(updated_at, self._row_versions.get(row_id)):
                return True
            holder = self._holder(row_id)
            if holder is not None and holder != asset.public_id:
                other = self._newest(holder)
                if other is not None and is_older(updated_at, other.updated_at):
                    return True
        deleted_at = self._tombstones.get(asset.public_id)
        # Rule 2, exactly as `remote_delete` applies it when the delete comes second.
        return deleted_at is not None and delete_outdates(deleted_at, updated_at)

    def _accept(self, asset: MediaAsset, changes: ChangeSet) -> None:
        """Apply a confirmed version of an asset unless newer state is already known.

        Even a version that is itself stale (its new name deleted since, say) still proves
        that its row moved on: the row's older name is removed and the row's version noted,
        or a rename followed by a delete, arriving in reverse, would leave the old name shown.
        """
        row_id = asset.row_id
        if row_id is not None and row_id not in self._dead_rows:
            holder = self._holder(row_id)
            if holder is not None and holder != asset.public_id:
                other = self._newest(holder)
                if other is not None and not is_older(asset.updated_at, other.updated_at):
                    self._row_left(holder, asset.updated_at, changes)
        stale = self._is_stale(asset)
        self._saw_row(asset)  # a true version of the row, applied or not
        if stale:
            return
        if asset.public_id in self._hidden:
            # A delete of ours is in flight: remember the newer version for a possible restore.
            self._hidden[asset.public_id] = asset
            return
        self._put_asset(asset, changes)

    def _row_left(self, public_id: str, fallback: datetime | None, changes: ChangeSet) -> None:
        """The row `public_id` held has left that name: renamed, or deleted by row id alone.

        All that is known is that the name held the row at its last known version, and lost
        it after. That version's millisecond is the safe tombstone (a tombstone is a commit
        time of millisecond precision, rule 2): it ends every older version of the name (a
        late event from before) and no re-upload under the name since, which rule 2 lets
        through once the rename's own millisecond is over. A later time — the renamed row's
        `updated_at`, the row delete's `committed_at` — could end such a re-upload when the
        rename was heard of late (a later update of the renamed row, or the delete of the
        row under its new name, being its first news). Late versions of the row itself under
        its old name are stale by the row's version or its death.
        `fallback` is the tombstone when the known version has no time.
        """
        old = self._newest(public_id)
        self._hidden.pop(public_id, None)
        self._drop_asset(public_id, changes)
        known = old.updated_at if old is not None else None
        self._bury(public_id, _commit_floor(known) if known else fallback or utcnow())

    # ------------------------------------------------------------------ actions

    def snapshot_loaded(self, assets: Iterable[MediaAsset]) -> None:
        """The first full load of the catalogue: replaces every confirmed asset.

        Dead rows and row versions are kept: they stay true whatever the catalogue holds.
        """
        with self._action() as changes:
            self._assets.clear()
            self._row_ids.clear()
            self._tombstones.clear()
            self._snapshot_at = None  # no time to order it by: it says nothing about later news
            self._snapshot_ids = frozenset()
            for asset in assets:
                self._put_asset(asset, changes)
            changes.reset = True

    def upload_queued(self, job: UploadJob) -> None:
        """A file was queued: its optimistic entry appears at once."""
        with self._action() as changes:
            self._put_job(job.replace(state=JobState.QUEUED, error=None), changes)

    def job_updated(self, job_id: str, **fields: object) -> None:
        """Any change to an active job's progress or state (uploading, syncing, retrying…)."""
        with self._action() as changes:
            job = self._jobs.get(job_id)
            if job is None:
                return
            updated = job.replace(**fields)
            if updated != job:
                self._put_job(updated, changes)

    def upload_progress(self, job_id: str, bytes_sent: int, bytes_per_second: float) -> None:
        """Bytes sent so far; ignored once the job is final (a late callback changes nothing)."""
        job = self._jobs.get(job_id)
        if job is None or not job.state.active:
            return
        self.job_updated(
            job_id,
            state=JobState.UPLOADING,
            bytes_sent=max(job.bytes_sent, min(bytes_sent, job.size)),
            bytes_per_second=bytes_per_second,
        )

    def upload_succeeded(self, job_id: str, asset: MediaAsset) -> None:
        """The catalogue holds the row: the optimistic entry becomes the confirmed asset."""
        with self._action() as changes:
            job = self._jobs.get(job_id)
            if job is not None:
                self._put_job(
                    job.replace(
                        state=JobState.DONE,
                        bytes_sent=job.size,
                        error=None,
                        finished_at=utcnow(),
                        public_id=asset.public_id,
                    ),
                    changes,
                )
            self._accept(asset, changes)

    def upload_duplicate(self, job_id: str, existing: MediaAsset) -> None:
        """The same bytes are already in the catalogue: nothing was uploaded."""
        with self._action() as changes:
            job = self._jobs.get(job_id)
            if job is not None:
                # The job now names the asset that already holds its bytes.
                self._put_job(
                    job.replace(
                        state=JobState.DUPLICATE,
                        error=None,
                        finished_at=utcnow(),
                        public_id=existing.public_id,
                    ),
                    changes,
                )
            self._accept(existing, changes)

    def upload_failed(self, job_id: str, error: str) -> None:
        """Roll back: the optimistic entry goes, the confirmed assets stay as they were."""
        self._finish_job(job_id, JobState.FAILED, error)

    def upload_cancelled(self, job_id: str) -> None:
        self._finish_job(job_id, JobState.CANCELLED, None)

    def _finish_job(self, job_id: str, state: JobState, error: str | None) -> None:
        with self._action() as changes:
            job = self._jobs.get(job_id)
            if job is None or not job.state.active:
                return
            self._put_job(job.replace(state=state, error=error, finished_at=utcnow()), changes)

    def job_retried(self, job_id: str) -> None:
        """A failed or cancelled job goes back to the queue with its error cleared."""
        with self._action() as changes:
            job = self._jobs.get(job_id)
            if job is None or job.state.active:
                return
            self._put_job(
                job.replace(
                    state=JobState.QUEUED,
                    error=None,
                    bytes_sent=0,
                    bytes_per_second=0.0,
                    finished_at=None,
                ),
                changes,
            )

    def job_dismissed(self, job_id: str) -> None:
        """Forget a finished job (its card is closed)."""
        with self._action() as changes:
            job = self._jobs.get(job_id)
            if job is None or job.state.active:
                return
            del self._jobs[job_id]
            changes.jobs.add(job_id)
            changes.assets.add(job.public_id)

    def delete_requested(self, public_id: str) -> MediaAsset | None:
        """Optimistic removal; returns the asset being deleted (None if it is not shown)."""
        with self._action() as changes:
            asset = self._drop_asset(public_id, changes)
            if asset is not None:
                self._hidden[public_id] = asset
            return asset

    def delete_succeeded(self, public_id: str, committed_at: datetime | None = None) -> None:
        """Our delete committed: the same rule 2 as a remote delete, from the other side.

        The version hidden meanwhile may be newer than the delete (someone uploaded the name
        again after it committed, and its event came while ours was in flight): that one stays.
        Without `committed_at` the newest known version is taken as the one deleted.
        """
        with self._action() as changes:
            hidden = self._hidden.pop(public_id, None)
            shown = self._assets.get(public_id)
            known = hidden or shown
            deleted_at = committed_at or (known.updated_at if known else None) or utcnow()
            if shown is None or delete_outdates(deleted_at, shown.updated_at):
                # Shown although we deleted it: its upsert overtook our request, or a failed
                # request for it restored it in the meantime.
                self._drop_asset(public_id, changes)
                self._bury(public_id, deleted_at)
            if hidden is not None:
                self._accept(hidden, changes)

    def delete_failed(self, public_id: str, error: str) -> None:
        """Restore the asset (in its newest known version) exactly as it was shown."""
        del error  # the caller reports it; the store's job is the rollback
        with self._action() as changes:
            hidden = self._hidden.pop(public_id, None)
            if hidden is not None:
                self._accept(hidden, changes)  # unless a delete or rename has ended it since

    def connection_changed(self, state: ConnectionState, detail: str | None = None) -> None:
        with self._action() as changes:
            if state == self._connection and detail == self._connection_detail:
                return
            if state != self._connection:
                self._connection_since = utcnow()
            self._connection = state
            self._connection_detail = detail
            changes.connection = True

    def remote_upsert(self, asset: MediaAsset) -> None:
        """A row inserted or updated in the catalogue, by us or anyone; idempotent and ordered."""
        with self._action() as changes:
            self._accept(asset, changes)

    def remote_delete(
        self, public_id: str | None, row_id: int | None = None, committed_at: datetime | None = None
    ) -> None:
        """A row deleted in the catalogue; `row_id` alone is enough (RLS strips the rest).

        Keyed by the row id alone, the row is dead for good (rule 3): remembered even when the
        store has not heard of it yet, so its INSERT arriving late never shows. Keyed by public
        id, it is ordered by rule 2 and leaves a tombstone on the name, not on the row id: the
        local feed logs a rename as delete(old name, row id) then upsert(new name, same row id),
        and that row lives on.
        """
        with self._action() as changes:
            if public_id is None:
                if row_id is None:
                    return
                self._kill_row(row_id)
                holder = self._holder(row_id)
                if holder is not None:
                    # The row may have left this name (a rename we have not heard of) before it
                    # was deleted, and the name been taken again since: what is known is only
                    # that the name held the row at its last known version.
                    self._row_left(holder, committed_at, changes)
                return
            current = self._newest(public_id)
            if current is not None and not delete_outdates(committed_at, current.updated_at):
                return  # the name was written again after this delete
            self._hidden.pop(public_id, None)
            self._drop_asset(public_id, changes)
            known = current.updated_at if current is not None else None
            self._bury(public_id, committed_at or known or utcnow())

    def resynced(self, assets: Iterable[MediaAsset], taken_at: datetime) -> None:
        """Converge to the server's snapshot; keep optimistic entries and newer local news.

        The snapshot is remembered (`_is_stale`): an event sent before it but delivered after
        it cannot bring back a name the snapshot did not have, even when that name's delete
        was the event that got lost. Dead rows and row versions survive, tombstones older
        than the snapshot do not (the snapshot says all they said).
        """
        with self._action() as changes:
            server = {asset.public_id: asset for asset in assets}
            for public_id in list(self._assets):
                local = self._assets[public_id]
                if public_id in server:
                    continue
                # Missing from the snapshot: gone on the server, unless it arrived after it.
                if not is_older(taken_at, local.updated_at):
                    self._drop_asset(public_id, changes)
            for public_id in list(self._hidden):
                if public_id not in server:
                    del self._hidden[public_id]
            self._tombstones = {
                pid: at for pid, at in self._tombstones.items() if is_older(taken_at, at)
            }
            self._snapshot_at = taken_at
            self._snapshot_ids = frozenset(server)
            for asset in server.values():
                self._accept(asset, changes)
            changes.reset = True

    def apply(self, event: ChangeEvent) -> None:
        """Apply one event from a ChangeFeed."""
        match event:
            case RemoteUpsert(asset=asset):
                self.remote_upsert(asset)
            case RemoteDelete(public_id=public_id, row_id=row_id, committed_at=committed_at):
                self.remote_delete(public_id, row_id, committed_at)
            case Resync(assets=assets, taken_at=taken_at):
                self.resynced(assets, taken_at)
            case ConnectionChanged(state=state, detail=detail):
                self.connection_changed(state, detail)


def _commit_floor(moment: datetime) -> datetime:
    """The start of the commit-timestamp tick `moment` falls in: a delete-style time for it."""
    return moment - timedelta(microseconds=moment.microsecond) % COMMIT_TIMESTAMP_RESOLUTION
