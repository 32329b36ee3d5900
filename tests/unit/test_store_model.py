"""Model-based test: a MediaStore fed a realistic, badly delivered change feed shows the server.

A small model of the catalogue (rows keyed by public id, a never-reused row id counter, an
injected clock) is changed by two operators. Every change emits the events the real feeds
send, and those go through an unreliable "network" that duplicates, reorders within a window
and drops them; a drop is repaired the way the feeds repair it, by a resubscribe `Resync`.
Operator 1 also uploads and deletes through the store's optimistic path. Once everything in
flight has arrived (and a resync repaired any drop), the store's confirmed assets must be
exactly the server's rows: no ghost, nothing missing.

One thing the model deliberately never does: re-create a name within the millisecond its
last delete (or rename away) committed in. A delete's commit timestamp has millisecond
precision, so ordering rule 2 (media_tui/ordering.py) ends every version written up to the
end of that millisecond; a re-upload inside it is indistinguishable from an older version.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from media_tui.model import (
    ChangeEvent,
    MediaAsset,
    RemoteDelete,
    RemoteUpsert,
    Resync,
    UploadJob,
)
from media_tui.ordering import COMMIT_TIMESTAMP_RESOLUTION
from media_tui.store import MediaStore

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
NAMES = ("a", "b", "c", "d")  # a small pool, so re-creates and rename collisions happen
WINDOW = 4  # an event may overtake at most this many older ones

names = st.sampled_from(NAMES)
# Microseconds between two writes: shrinks towards 1, i.e. towards same-millisecond writes.
steps = st.integers(min_value=1, max_value=2500)
picks = st.integers(min_value=0, max_value=15)


def commit_timestamp(moment: datetime) -> datetime:
    """A commit time as Supabase's `commit_timestamp` (and SQLite's '%f') spell it: whole ms."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def shown(store: MediaStore) -> dict[str, tuple[int | None, datetime | None]]:
    return {pid: (a.row_id, a.updated_at) for pid, a in store.assets.items()}


@dataclass(frozen=True)
class LocalResult:
    """What operator 1's own request returns to the app, outside the change feed."""

    kind: str  # "uploaded", "deleted" or "delete_failed"
    public_id: str
    job_id: str | None = None
    row: MediaAsset | None = None
    committed_at: datetime | None = None

    def apply(self, store: MediaStore) -> None:
        if self.kind == "uploaded":
            assert self.job_id is not None and self.row is not None
            store.upload_succeeded(self.job_id, self.row)
        elif self.kind == "deleted":
            store.delete_succeeded(self.public_id, committed_at=self.committed_at)
        else:
            store.delete_failed(self.public_id, "the catalogue refused")


class Server:
    """The catalogue: rows by public id, row ids never reused, `updated_at` strictly increasing."""

    def __init__(self, *, rls: bool, local_renames: bool) -> None:
        self.rls = rls  # a DELETE carries only the row id (Supabase under row-level security)
        self.local_renames = local_renames  # a rename also logs delete(old name), as SQLite's does
        self.rows: dict[str, MediaAsset] = {}
        self.now = T0
        self._next_row = 1
        # A name may be created again only after this: the end of the millisecond its last
        # delete committed in (see the module docstring).
        self._ended_until: dict[str, datetime] = {}

    def _tick(self, step: int, creating: str | None = None) -> datetime:
        self.now += timedelta(microseconds=step)
        ended = self._ended_until.get(creating) if creating is not None else None
        if ended is not None and self.now <= ended:
            self.now = ended + timedelta(microseconds=step)
        return self.now

    def _end(self, public_id: str, moment: datetime) -> datetime:
        committed = commit_timestamp(moment)
        self._ended_until[public_id] = committed + COMMIT_TIMESTAMP_RESOLUTION
        return committed

    def existing(self, pick: int) -> str | None:
        names = sorted(self.rows)
        return names[pick % len(names)] if names else None

    def write(self, public_id: str, step: int) -> tuple[MediaAsset, list[ChangeEvent]]:
        """An insert (a new row) or, when the name exists, an update of its row."""
        old = self.rows.get(public_id)
        if old is None:
            moment = self._tick(step, creating=public_id)
            row = MediaAsset(
                public_id=public_id, row_id=self._next_row, created_at=moment, updated_at=moment
            )
            self._next_row += 1
        else:
            moment = self._tick(step)
            row = old.replace(updated_at=moment, bytes=old.bytes + 1)
        self.rows[public_id] = row
        return row, [RemoteUpsert(row)]

    def delete(self, public_id: str, step: int) -> tuple[datetime, list[ChangeEvent]]:
        old = self.rows.pop(public_id)
        committed = self._end(public_id, self._tick(step))
        if self.rls:
            return committed, [
                RemoteDelete(public_id=None, row_id=old.row_id, committed_at=committed)
            ]
        return committed, [RemoteDelete(public_id, row_id=old.row_id, committed_at=committed)]

    def rename(self, source: str, target: str, step: int) -> list[ChangeEvent]:
        """An UPDATE of the row's public_id: same row id, new name."""
        old = self.rows.pop(source)
        moment = self._tick(step, creating=target)
        committed = self._end(source, moment)
        row = old.replace(public_id=target, updated_at=moment)
        self.rows[target] = row
        events: list[ChangeEvent] = []
        if self.local_renames:
            events.append(RemoteDelete(source, row_id=old.row_id, committed_at=committed))
        events.append(RemoteUpsert(row))
        return events

    def snapshot(self) -> Resync:
        return Resync(assets=tuple(self.rows.values()), taken_at=self.now)


class StoreFedByAFlakyFeed(RuleBasedStateMachine):
    """Two operators change the catalogue; the store hears about it through a flaky feed."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MediaStore()
        self.server = Server(rls=False, local_renames=False)
        self.rng = random.Random(0)
        self.in_flight: list[ChangeEvent] = []  # oldest first
        self.results: list[LocalResult] = []  # operator 1's requests that have not returned
        self.queued: list[UploadJob] = []  # operator 1's uploads not yet written
        self.jobs = 0
        self.dropped = False  # an event was lost since the last resync

    @initialize(rls=st.booleans(), local_renames=st.booleans(), seed=st.integers(0, 2**16))
    def choose_feed(self, rls: bool, local_renames: bool, seed: int) -> None:
        """The feed's flavour for this run, and the seed of the final shuffled flush."""
        self.server = Server(rls=rls, local_renames=local_renames)
        self.rng = random.Random(seed)

    def _send(self, events: list[ChangeEvent]) -> None:
        self.in_flight.extend(events)

    def _pick_in_flight(self, pick: int) -> int | None:
        if not self.in_flight:
            return None
        return pick % min(WINDOW, len(self.in_flight))

    # ------------------------------------------------------ the operators' changes

    @rule(public_id=names, step=steps)
    def write(self, public_id: str, step: int) -> None:
        self._send(self.server.write(public_id, step)[1])

    @rule(pick=picks, step=steps)
    def delete(self, pick: int, step: int) -> None:
        public_id = self.server.existing(pick)
        if public_id is not None:
            self._send(self.server.delete(public_id, step)[1])

    @rule(pick=picks, new_name=names, step=steps)
    def rename(self, pick: int, new_name: str, step: int) -> None:
        source = self.server.existing(pick)
        if source is not None and new_name not in self.server.rows:
            self._send(self.server.rename(source, new_name, step))

    @rule(public_id=names)
    def upload_queued(self, public_id: str) -> None:
        """Operator 1 queues a file: its optimistic entry shows at once."""
        self.jobs += 1
        job = UploadJob(
            job_id=f"j{self.jobs}", path=Path(f"/tmp/{public_id}"), public_id=public_id, size=1
        )
        self.queued.append(job)
        self.store.upload_queued(job)

    @rule(pick=picks, step=steps)
    def upload_stored(self, pick: int, step: int) -> None:
        """Operator 1's upload writes its row; the result reaches the app later."""
        if not self.queued:
            return
        job = self.queued.pop(pick % len(self.queued))
        row, events = self.server.write(job.public_id, step)
        self._send(events)
        self.results.append(LocalResult("uploaded", job.public_id, job_id=job.job_id, row=row))

    @rule(pick=picks, step=steps, fails=st.booleans())
    def local_delete(self, pick: int, step: int, fails: bool) -> None:
        """Operator 1 deletes through the store: hidden at once, confirmed or rolled back later."""
        public_id = self.server.existing(pick)
        if public_id is None:
            return
        self.store.delete_requested(public_id)
        if fails:
            self.results.append(LocalResult("delete_failed", public_id))
            return
        committed, events = self.server.delete(public_id, step)
        self._send(events)
        self.results.append(LocalResult("deleted", public_id, committed_at=committed))

    # ---------------------------------------------------------------- delivery

    @rule(pick=picks)
    def deliver(self, pick: int) -> None:
        index = self._pick_in_flight(pick)
        if index is not None:
            self.store.apply(self.in_flight.pop(index))

    @rule(pick=picks)
    def duplicate(self, pick: int) -> None:
        """Deliver an event and keep it in flight: it arrives again later."""
        index = self._pick_in_flight(pick)
        if index is not None:
            self.store.apply(self.in_flight[index])

    @rule(pick=picks)
    def drop(self, pick: int) -> None:
        index = self._pick_in_flight(pick)
        if index is not None:
            del self.in_flight[index]
            self.dropped = True

    @rule()
    def resubscribe(self) -> None:
        """The feed reconnects: a snapshot now; events still in flight may arrive after it."""
        self.store.apply(self.server.snapshot())
        self.dropped = False

    @rule(pick=picks)
    def local_result(self, pick: int) -> None:
        if self.results:
            self.results.pop(pick % len(self.results)).apply(self.store)

    # ------------------------------------------------------------- quiescence

    @rule()
    def settle(self) -> None:
        """Everything in flight arrives, in any order; a lost event is repaired by a resync."""
        for job in self.queued:
            self.store.upload_failed(job.job_id, "given up")
        self.queued.clear()
        pending: list[ChangeEvent | LocalResult] = [*self.in_flight, *self.results]
        self.rng.shuffle(pending)
        self.in_flight.clear()
        self.results.clear()
        for item in pending:
            if isinstance(item, LocalResult):
                item.apply(self.store)
            else:
                self.store.apply(item)
        if self.dropped:
            self.resubscribe()
        server = {pid: (a.row_id, a.updated_at) for pid, a in self.server.rows.items()}
        assert shown(self.store) == server
        assert not any(self.store.is_deleting(pid) for pid in NAMES)
        assert self.store.optimistic_jobs() == {}

    def teardown(self) -> None:
        self.settle()


StoreFedByAFlakyFeed.TestCase.settings = settings(
    max_examples=600, stateful_step_count=50, deadline=None, database=None
)
TestStoreFedByAFlakyFeed = StoreFedByAFlakyFeed.TestCase


# --------------------------------------------------- any order, not just a window

operations = st.lists(
    st.tuples(st.sampled_from(["write", "delete", "rename"]), names, names, steps),
    max_size=25,
)


@settings(max_examples=500, deadline=None, database=None)
@given(
    history=operations,
    rls=st.booleans(),
    local_renames=st.booleans(),
    order=st.randoms(use_true_random=False),
    copies=st.lists(st.integers(0, 60), max_size=10),
)
def test_any_arrival_order_with_duplicates_converges(
    history: list[tuple[str, str, str, int]],
    rls: bool,
    local_renames: bool,
    order: random.Random,
    copies: list[int],
) -> None:
    """No drops: every event arrives, in any order at all, some twice; no resync is needed."""
    server = Server(rls=rls, local_renames=local_renames)
    events: list[ChangeEvent] = []
    for kind, name, other, step in history:
        if kind == "write":
            events += server.write(name, step)[1]
        elif kind == "delete" and name in server.rows:
            events += server.delete(name, step)[1]
        elif kind == "rename" and name in server.rows and other not in server.rows:
            events += server.rename(name, other, step)
    if events:
        events += [events[index % len(events)] for index in copies]
    order.shuffle(events)
    store = MediaStore()
    for event in events:
        store.apply(event)
    assert shown(store) == {pid: (a.row_id, a.updated_at) for pid, a in server.rows.items()}
