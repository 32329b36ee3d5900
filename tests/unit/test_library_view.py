"""LibraryView: order, filter, optimistic entries, and the incremental path against a rebuild."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media_tui.model import JobState, MediaAsset, ResourceType, UploadJob
from media_tui.store import ChangeSet, MediaStore
from media_tui.ui.badges import badge_for, badge_for_job
from media_tui.ui.library_view import GridEntry, LibraryView, SortMode, parse_filter

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def asset(
    public_id: str,
    created: float = 0,
    *,
    updated: float | None = None,
    size: int = 100,
    name: str | None = None,
    row_id: int | None = None,
    tags: tuple[str, ...] = (),
    folder: str = "",
    fmt: str | None = "jpg",
    kind: ResourceType = ResourceType.IMAGE,
) -> MediaAsset:
    return MediaAsset(
        public_id=public_id,
        resource_type=kind,
        format=fmt,
        bytes=size,
        folder=folder,
        tags=tags,
        original_filename=name,
        row_id=row_id,
        created_at=at(created),
        updated_at=at(created if updated is None else updated),
    )


def job(job_id: str, public_id: str, *, size: int = 100, queued: float = 1_000) -> UploadJob:
    return UploadJob(
        job_id=job_id,
        path=Path(f"/tmp/{public_id}.png"),
        public_id=public_id,
        size=size,
        queued_at=at(queued),
    )


class Tracked:
    """A store and a view kept in step through the store's subscription, as the app does."""

    def __init__(self, store: MediaStore | None = None) -> None:
        self.store = store or MediaStore()
        self.view = LibraryView(self.store)
        self.results: list[set[int] | None] = []
        self.store.subscribe(self._follow)

    def _follow(self, changes: ChangeSet) -> None:
        self.results.append(self.view.apply(changes))

    @property
    def last(self) -> set[int] | None:
        return self.results[-1]

    def ids(self) -> list[str]:
        return [self.view[i].public_id for i in range(len(self.view))]


@pytest.fixture
def tracked() -> Tracked:
    return Tracked()


def entries(view: LibraryView) -> list[GridEntry]:
    return [view[i] for i in range(len(view))]


# ------------------------------------------------------------------------------ ordering


def test_newest_first_with_ties_by_public_id(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded([asset("b", 5), asset("a", 5), asset("old", 1), asset("new", 9)])
    assert tracked.ids() == ["new", "a", "b", "old"]


def test_asset_without_creation_time_sorts_last() -> None:
    store = MediaStore()
    store.snapshot_loaded([asset("dated", 1), MediaAsset(public_id="undated")])
    assert Tracked(store).ids() == ["dated", "undated"]


def test_name_order_is_case_insensitive_then_public_id(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded(
        [
            asset("p3", name="banana.jpg"),
            asset("p2", name="Apple.jpg"),
            asset("p1", name="apple.jpg"),
            asset("p0", name="Cherry.jpg"),
        ]
    )
    tracked.view.sort = SortMode.NAME
    assert tracked.ids() == ["p1", "p2", "p3", "p0"]


def test_size_order_is_largest_first(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded(
        [
            asset("small", size=1),
            asset("big", size=1_000),
            asset("mid-b", size=50),
            asset("mid-a", size=50),
        ]
    )
    tracked.view.sort = SortMode.SIZE
    assert tracked.ids() == ["big", "mid-a", "mid-b", "small"]


def test_sort_modes_cycle_newest_name_size() -> None:
    assert SortMode.NEWEST.next() is SortMode.NAME
    assert SortMode.NAME.next() is SortMode.SIZE
    assert SortMode.SIZE.next() is SortMode.NEWEST


# ---------------------------------------------------------------------------- filtering


@pytest.fixture
def library(tracked: Tracked) -> Tracked:
    tracked.store.snapshot_loaded(
        [
            asset("trips/beach", 1, name="Beach.JPG", tags=("summer", "sea"), folder="trips"),
            asset("trips/alps", 2, name="alps.png", fmt="png", tags=("winter",), folder="trips"),
            asset("clips/surf", 3, kind=ResourceType.VIDEO, fmt="mp4", folder="clips/2024"),
            asset("docs/notes", 4, kind=ResourceType.RAW, fmt="txt", name="sea-notes.txt"),
        ]
    )
    return tracked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"trips/beach", "trips/alps", "clips/surf", "docs/notes"}),
        ("beach", {"trips/beach"}),
        ("BEACH", {"trips/beach"}),
        ("sea", {"trips/beach", "docs/notes"}),  # a tag, and a name
        ("sea trips", {"trips/beach"}),  # every term must match
        ("mp4", {"clips/surf"}),  # format
        ("video", {"clips/surf"}),  # resource type
        ("tag:sea", {"trips/beach"}),  # only the tags, not the name "sea-notes"
        ("tag:WIN", {"trips/alps"}),
        ("type:raw", {"docs/notes"}),
        ("type:image trips", {"trips/beach", "trips/alps"}),
        ("folder:clips/2024", {"clips/surf"}),
        ("folder:trips tag:summer", {"trips/beach"}),
        ("name:alps", {"trips/alps"}),
        ("format:png", {"trips/alps"}),
        ("tag:", {"trips/beach", "trips/alps", "clips/surf", "docs/notes"}),  # still typing
        ("nothing-like-this", set()),
    ],
)
def test_filter_syntax(library: Tracked, text: str, expected: set[str]) -> None:
    library.view.filter_text = text
    assert set(library.ids()) == expected


def test_unknown_prefix_is_an_ordinary_term() -> None:
    (term,) = parse_filter("Shot:01")
    assert term.scope is None and term.value == "shot:01"


def test_filter_applies_to_incremental_changes(library: Tracked) -> None:
    library.view.filter_text = "tag:sea"
    library.store.remote_upsert(asset("new", 9, tags=("sea",)))
    assert library.ids() == ["new", "trips/beach"]
    library.store.remote_upsert(asset("new", 9, updated=10, tags=("land",)))
    assert library.ids() == ["trips/beach"]
    library.store.remote_upsert(asset("trips/alps", 2, updated=10, tags=("sea",)))
    assert library.ids() == ["trips/alps", "trips/beach"]


def test_total_counts_filtered_out_entries(library: Tracked) -> None:
    library.view.filter_text = "beach"
    assert len(library.view) == 1 and library.view.total == 4


# -------------------------------------------------------------------- optimistic entries


def test_optimistic_entry_appears_as_newest_and_becomes_the_asset(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded([asset("old", 1)])
    tracked.store.upload_queued(job("j1", "cat", queued=100))
    assert tracked.last is None  # an insert: every later index shifted
    assert tracked.ids() == ["cat", "old"]
    entry = tracked.view[0]
    assert entry.optimistic and entry.job is not None and entry.name == "cat.png"
    assert badge_for(entry).text == "queued"

    tracked.store.upload_progress("j1", 42, 10.0)
    assert tracked.last == {0}
    assert badge_for(tracked.view[0]).text == "↑ 42%"

    tracked.store.upload_succeeded("j1", asset("cat", 101))
    confirmed = tracked.view[0]
    assert confirmed.asset is not None and confirmed.job is None
    assert badge_for(confirmed).text == "✓ synced"
    assert tracked.ids() == ["cat", "old"]


def test_failed_upload_rolls_back_its_entry(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded([asset("old", 1)])
    tracked.store.upload_queued(job("j1", "cat"))
    tracked.store.upload_failed("j1", "boom")
    assert tracked.ids() == ["old"]
    assert tracked.view.index_of("cat") is None


def test_duplicate_upload_removes_the_optimistic_entry(tracked: Tracked) -> None:
    # The job was queued under one id but the bytes already live under another: the store
    # renames the job, and the view must still drop the entry under the old id.
    tracked.store.snapshot_loaded([asset("existing", 1)])
    tracked.store.upload_queued(job("j1", "planned"))
    tracked.store.upload_duplicate("j1", asset("existing", 1))
    assert tracked.ids() == ["existing"]
    assert tracked.view[0].job is None


def test_reupload_of_a_confirmed_asset_badges_it_in_place(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded([asset("a", 2), asset("b", 1)])
    tracked.store.upload_queued(job("j1", "b"))
    assert tracked.last == {1}
    entry = tracked.view[1]
    assert entry.asset is not None and entry.job is not None
    tracked.store.upload_cancelled("j1")
    assert tracked.last == {1} and tracked.view[1].job is None


def test_remote_delete_by_row_id(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded([asset("a", 1, row_id=7), asset("b", 2, row_id=8)])
    tracked.store.remote_delete(None, row_id=7, committed_at=at(50))
    assert tracked.last is None
    assert tracked.ids() == ["b"]
    assert tracked.view.index_of("a") is None


def test_optimistic_delete_and_rollback(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded([asset("a", 1), asset("b", 2)])
    tracked.store.delete_requested("a")
    assert tracked.ids() == ["b"]
    tracked.store.delete_failed("a", "nope")
    assert tracked.ids() == ["b", "a"]


# ------------------------------------------------------------------ apply's index sets


def test_apply_reports_in_place_change_as_its_index(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded([asset(f"p{i}", i) for i in range(5)])
    tracked.store.remote_upsert(asset("p2", 2, updated=10, tags=("x",)))
    assert tracked.last == {2}
    assert tracked.view[2].asset is not None and tracked.view[2].asset.tags == ("x",)


def test_apply_reports_a_move_as_the_span_it_crossed(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded([asset(f"p{i}", size=i * 10) for i in range(6)])
    tracked.view.sort = SortMode.SIZE
    assert tracked.ids() == ["p5", "p4", "p3", "p2", "p1", "p0"]
    tracked.store.remote_upsert(asset("p1", updated=5, size=45))
    assert tracked.ids() == ["p5", "p1", "p4", "p3", "p2", "p0"]
    assert tracked.last == {1, 2, 3, 4}


def test_apply_reports_none_for_reset_and_empty_for_unrelated(tracked: Tracked) -> None:
    tracked.store.snapshot_loaded([asset("a", 1)])
    assert tracked.last is None
    assert tracked.view.apply(ChangeSet(connection=True)) == set()
    # A change to an id the view does not show (filtered out) changes no index.
    tracked.view.filter_text = "zzz"
    tracked.store.remote_upsert(asset("a", 1, updated=3, size=5))
    assert tracked.last == set()


# --------------------------------------------------------------- incremental == rebuild


def _random_asset(rng: random.Random, public_id: str, clock: float) -> MediaAsset:
    return asset(
        public_id,
        created=rng.choice([0, 1, 2, clock]),  # ties on purpose
        updated=clock,
        size=rng.choice([0, 10, 10, 500, rng.randrange(10_000)]),
        name=rng.choice([None, "Same.jpg", "same.jpg", f"{public_id}.JPG"]),
        row_id=int(public_id[1:]),
        tags=tuple(rng.sample(["red", "blue", "green"], rng.randrange(3))),
        folder=rng.choice(["", "a", "a/b"]),
        kind=rng.choice(list(ResourceType)),
    )


def _random_operations(rng: random.Random, store: MediaStore, steps: int) -> Iterator[str]:
    """Apply random actions to the store, yielding a description of each."""
    clock = 10.0
    jobs = 0
    for _ in range(steps):
        clock += 1
        public_id = f"p{rng.randrange(40)}"
        roll = rng.random()
        if roll < 0.30:
            store.remote_upsert(_random_asset(rng, public_id, clock))
        elif roll < 0.40:
            store.remote_delete(public_id, committed_at=at(clock))
        elif roll < 0.45:
            store.remote_delete(None, row_id=int(public_id[1:]), committed_at=at(clock))
        elif roll < 0.55:
            jobs += 1
            store.upload_queued(
                job(f"j{jobs}", public_id, size=rng.randrange(1, 900), queued=clock)
            )
        elif roll < 0.80 and store.jobs:
            job_id = rng.choice(list(store.jobs))
            _advance_job(rng, store, job_id, clock)
        elif roll < 0.88:
            if rng.random() < 0.5:
                store.delete_requested(public_id)
            elif rng.random() < 0.5:
                store.delete_failed(public_id, "no")
            else:
                store.delete_succeeded(public_id, at(clock))
        elif roll < 0.92:
            with store.batch():  # several changes in one ChangeSet
                for _ in range(rng.randrange(2, 6)):
                    other = f"p{rng.randrange(40)}"
                    store.remote_upsert(_random_asset(rng, other, clock))
        elif roll < 0.94:
            snapshot = [_random_asset(rng, f"p{i}", clock) for i in rng.sample(range(40), 20)]
            store.resynced(snapshot, at(clock))
        else:
            store.connection_changed(rng.choice(list(store.connection.__class__)))
        yield f"{roll:.2f} {public_id}"


def _advance_job(rng: random.Random, store: MediaStore, job_id: str, clock: float) -> None:
    current = store.jobs[job_id]
    step = rng.random()
    if step < 0.4:
        store.upload_progress(job_id, rng.randrange(current.size + 1), 5.0)
    elif step < 0.5:
        store.job_updated(job_id, state=JobState.SYNCING)
    elif step < 0.65:
        store.upload_succeeded(job_id, _random_asset(rng, current.public_id, clock))
    elif step < 0.7:
        store.upload_duplicate(job_id, _random_asset(rng, f"p{rng.randrange(40)}", clock))
    elif step < 0.8:
        store.upload_failed(job_id, "boom")
    elif step < 0.85:
        store.upload_cancelled(job_id)
    elif step < 0.95:
        store.job_retried(job_id)
    else:
        store.job_dismissed(job_id)


@pytest.mark.parametrize("sort", list(SortMode))
@pytest.mark.parametrize("filter_text", ["", "red", "type:image a"])
@pytest.mark.parametrize("seed", range(4))
def test_incremental_matches_rebuild(sort: SortMode, filter_text: str, seed: int) -> None:
    rng = random.Random(seed)
    store = MediaStore()
    view = LibraryView(store)
    view.sort = sort
    view.filter_text = filter_text
    for step in _random_operations_with_checks(rng, store, view, 400):
        fresh = LibraryView(store)
        fresh.sort = sort
        fresh.filter_text = filter_text
        assert entries(view) == entries(fresh), step
        for index in range(len(view)):
            assert view.index_of(view[index].public_id) == index, step


def _random_operations_with_checks(
    rng: random.Random, store: MediaStore, view: LibraryView, steps: int
) -> Iterator[str]:
    """Drive the view through the store and check every index set `apply` returns."""
    before: list[GridEntry] = []
    results: list[set[int] | None] = []

    def follow(changes: ChangeSet) -> None:
        before[:] = entries(view)
        results.append(view.apply(changes))
        changed = results[-1]
        if changed is None:
            return
        after = entries(view)
        # A set is a promise: same length, and nothing outside the set differs.
        assert len(after) == len(before)
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            if index not in changed:
                assert old == new, index

    store.subscribe(follow)
    yield from _random_operations(rng, store, steps)
    assert any(r is None for r in results) and any(r for r in results)


# ------------------------------------------------------------------------------- scale


def test_hundred_thousand_assets_in_order() -> None:
    count = 100_000
    store = MediaStore()
    store.snapshot_loaded(
        MediaAsset(public_id=f"lib/{i:06d}", bytes=i, created_at=at(i % 5_000))
        for i in range(count)
    )
    tracked = Tracked(store)
    view = tracked.view
    assert len(view) == count
    keys = [(-view[i].asset.created_at.timestamp(), view[i].public_id) for i in range(count)]  # type: ignore[union-attr]
    assert keys == sorted(keys)
    for index in (0, 1, 777, count // 2, count - 1):
        assert view.index_of(view[index].public_id) == index
    # An upsert that keeps the entry's place repaints that one index, not everything.
    place = view.index_of("lib/050000")
    store.remote_upsert(
        MediaAsset(public_id="lib/050000", bytes=1, created_at=at(0), updated_at=at(1))
    )
    assert place is not None and tracked.last == {place}
    assert view[0].public_id == "lib/004999"


# ------------------------------------------------------------------------------- badges


def test_badges_for_each_job_state() -> None:
    base = job("j", "p", size=200)
    texts = {state: badge_for_job(base.replace(state=state, bytes_sent=84)) for state in JobState}
    assert texts[JobState.QUEUED].text == "queued"
    assert (texts[JobState.UPLOADING].text, texts[JobState.UPLOADING].style) == (
        "↑ 42%",
        "uploading",
    )
    assert texts[JobState.SYNCING].style == "syncing"
    assert texts[JobState.RETRYING].text == "retrying"
    assert (texts[JobState.FAILED].text, texts[JobState.FAILED].style) == ("✗ failed", "failed")
    assert texts[JobState.DONE].text == "✓ synced"
    assert badge_for(GridEntry("p", asset("p"), None, deleting=True)).style == "deleting"
