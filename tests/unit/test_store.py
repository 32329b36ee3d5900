"""MediaStore rules from DESIGN §1, one test per rule and per order of arrival."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

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
)
from media_tui.store import ChangeSet, MediaStore

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def asset(
    public_id: str, updated: float = 0, row_id: int | None = None, **kw: object
) -> MediaAsset:
    return MediaAsset(
        public_id=public_id,
        row_id=row_id,
        updated_at=at(updated),
        created_at=T0,
        **kw,  # type: ignore[arg-type]
    )


def job(job_id: str, public_id: str, size: int = 100) -> UploadJob:
    return UploadJob(
        job_id=job_id, path=Path(f"/tmp/{public_id}.jpg"), public_id=public_id, size=size
    )


@pytest.fixture
def store() -> MediaStore:
    return MediaStore()


@pytest.fixture
def seen(store: MediaStore) -> list[ChangeSet]:
    changes: list[ChangeSet] = []
    store.subscribe(changes.append)
    return changes


def test_queued_upload_is_visible_at_once(store: MediaStore, seen: list[ChangeSet]) -> None:
    store.upload_queued(job("j1", "cat"))
    assert store.public_ids() == {"cat"}
    assert "cat" not in store.assets
    assert seen[-1].jobs == {"j1"} and "cat" in seen[-1].assets


def test_progress_is_clamped_and_monotonic(store: MediaStore) -> None:
    store.upload_queued(job("j1", "cat", size=100))
    store.upload_progress("j1", 60, 10.0)
    store.upload_progress("j1", 40, 10.0)  # a stale callback never moves the bar back
    store.upload_progress("j1", 500, 10.0)
    current = store.job("j1")
    assert current is not None
    assert current.bytes_sent == 100 and current.state is JobState.UPLOADING


@pytest.mark.parametrize("result_first", [True, False])
def test_confirmation_in_either_order_gives_one_asset(
    store: MediaStore, result_first: bool
) -> None:
    store.upload_queued(job("j1", "cat"))
    stored = asset("cat", updated=1, row_id=7)
    if result_first:
        store.upload_succeeded("j1", stored)
        store.remote_upsert(stored)
    else:
        store.remote_upsert(stored)
        assert store.public_ids() == {"cat"}  # confirmed while the job still syncs: still one
        store.upload_succeeded("j1", stored)
    assert store.public_ids() == {"cat"}
    assert store.assets == {"cat": stored}
    assert store.optimistic_jobs() == {}
    final = store.job("j1")
    assert final is not None and final.state is JobState.DONE


def test_failed_upload_rolls_back_exactly(store: MediaStore) -> None:
    existing = asset("dog", updated=1)
    store.snapshot_loaded([existing])
    before = (dict(store.assets), store.public_ids())
    store.upload_queued(job("j1", "cat"))
    store.upload_queued(job("j2", "dog"))  # an overwrite of an existing asset
    store.upload_progress("j2", 50, 1.0)
    store.upload_failed("j1", "the network went away")
    store.upload_failed("j2", "the network went away")
    assert (dict(store.assets), store.public_ids()) == before
    failed = store.job("j1")
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.error == "the network went away"


def test_late_progress_after_failure_changes_nothing(store: MediaStore) -> None:
    store.upload_queued(job("j1", "cat"))
    store.upload_failed("j1", "boom")
    store.upload_progress("j1", 50, 1.0)
    failed = store.job("j1")
    assert failed is not None and failed.state is JobState.FAILED and failed.bytes_sent == 0


def test_retry_requeues_a_failed_job(store: MediaStore) -> None:
    store.upload_queued(job("j1", "cat"))
    store.upload_failed("j1", "boom")
    store.job_retried("j1")
    retried = store.job("j1")
    assert retried is not None and retried.state is JobState.QUEUED and retried.error is None
    assert store.public_ids() == {"cat"}


def test_delete_is_optimistic_and_failure_restores(store: MediaStore) -> None:
    cat = asset("cat", updated=1, row_id=1)
    store.snapshot_loaded([cat, asset("dog", updated=1, row_id=2)])
    assert store.delete_requested("cat") == cat
    assert store.public_ids() == {"dog"}
    assert store.is_deleting("cat")
    store.delete_failed("cat", "permission denied")
    assert store.assets["cat"] == cat
    assert store.public_ids() == {"cat", "dog"}


def test_delete_failure_restores_the_newest_version(store: MediaStore) -> None:
    store.snapshot_loaded([asset("cat", updated=1)])
    store.delete_requested("cat")
    newer = asset("cat", updated=5, tags=("edited",))
    store.remote_upsert(newer)  # someone edited it while our delete was in flight
    assert "cat" not in store.public_ids()
    store.delete_failed("cat", "boom")
    assert store.assets["cat"] == newer


def test_delete_success_then_echo_of_old_upsert_is_ignored(store: MediaStore) -> None:
    cat = asset("cat", updated=1)
    store.snapshot_loaded([cat])
    store.delete_requested("cat")
    store.delete_succeeded("cat", committed_at=at(2))
    store.remote_upsert(cat)  # a late, older event must not resurrect it
    assert store.public_ids() == set()
    store.remote_upsert(asset("cat", updated=3))  # a genuinely newer upload does come back
    assert store.public_ids() == {"cat"}


def test_duplicate_and_older_remote_events_are_ignored(
    store: MediaStore, seen: list[ChangeSet]
) -> None:
    newer = asset("cat", updated=5, bytes=2)
    store.remote_upsert(newer)
    count = len(seen)
    store.remote_upsert(newer)  # duplicate
    store.remote_upsert(asset("cat", updated=1, bytes=1))  # older
    assert store.assets["cat"] == newer
    assert len(seen) == count  # nothing changed, nobody was told


def test_older_delete_does_not_remove_newer_asset(store: MediaStore) -> None:
    store.remote_upsert(asset("cat", updated=5))
    store.remote_delete("cat", committed_at=at(1))
    assert store.public_ids() == {"cat"}


def test_delete_then_older_upsert_stays_deleted(store: MediaStore) -> None:
    store.remote_upsert(asset("cat", updated=1))
    store.remote_delete("cat", committed_at=at(3))
    store.remote_upsert(asset("cat", updated=2))  # reordered: written before the delete
    assert store.public_ids() == set()


def test_delete_by_primary_key_only(store: MediaStore) -> None:
    store.snapshot_loaded([asset("cat", row_id=11), asset("dog", row_id=12)])
    store.apply(RemoteDelete(public_id=None, row_id=12, committed_at=at(9)))
    assert store.public_ids() == {"cat"}
    store.apply(RemoteDelete(public_id=None, row_id=999))  # unknown key: nothing happens
    assert store.public_ids() == {"cat"}


def test_row_id_map_follows_updates(store: MediaStore) -> None:
    store.remote_upsert(asset("cat", updated=1, row_id=1))
    store.remote_delete("cat", committed_at=at(2))
    store.remote_upsert(asset("cat", updated=3, row_id=2))  # re-created with a new key
    store.remote_delete(None, row_id=1)  # the old key no longer names anything
    assert store.public_ids() == {"cat"}
    store.remote_delete(None, row_id=2, committed_at=at(4))
    assert store.public_ids() == set()


def test_resync_converges_and_keeps_optimistic_entries(
    store: MediaStore, seen: list[ChangeSet]
) -> None:
    store.snapshot_loaded([asset("a", 1), asset("b", 1), asset("c", 1)])
    store.upload_queued(job("j1", "new"))
    store.delete_requested("c")
    server = [asset("a", 1), asset("b", 4, bytes=9), asset("d", 2)]
    store.apply(Resync(assets=tuple(server), taken_at=at(10)))
    assert set(store.assets) == {"a", "b", "d"}
    assert store.assets["b"].bytes == 9
    assert store.public_ids() == {"a", "b", "d", "new"}
    assert seen[-1].reset


def test_resync_keeps_news_newer_than_the_snapshot(store: MediaStore) -> None:
    store.remote_upsert(asset("late", updated=20))  # arrived after the snapshot was taken
    store.remote_upsert(asset("a", updated=15, bytes=2))
    store.resynced([asset("a", updated=5, bytes=1)], taken_at=at(10))
    assert store.assets["a"].bytes == 2
    assert "late" in store.assets


def test_resync_keeps_a_pending_delete_hidden(store: MediaStore) -> None:
    store.snapshot_loaded([asset("cat", 1)])
    store.delete_requested("cat")
    store.resynced([asset("cat", 1)], taken_at=at(5))
    assert store.public_ids() == set()
    store.delete_failed("cat", "boom")
    assert store.public_ids() == {"cat"}


def test_batch_notifies_once_with_the_union(store: MediaStore, seen: list[ChangeSet]) -> None:
    with store.batch():
        store.upload_queued(job("j1", "a"))
        store.upload_queued(job("j2", "b"))
        store.remote_upsert(asset("c", 1))
    assert len(seen) == 1
    assert seen[0].jobs == {"j1", "j2"} and seen[0].assets == {"a", "b", "c"}


def test_connection_state_and_since(store: MediaStore, seen: list[ChangeSet]) -> None:
    store.apply(ConnectionChanged(ConnectionState.LIVE))
    since = store.connection_since
    assert store.connection is ConnectionState.LIVE and seen[-1].connection
    count = len(seen)
    store.apply(ConnectionChanged(ConnectionState.LIVE))
    assert len(seen) == count and store.connection_since == since


def test_duplicate_upload_shows_existing_asset(store: MediaStore) -> None:
    store.upload_queued(job("j1", "cat-copy"))
    existing = asset("cat", 1)
    store.upload_duplicate("j1", existing)
    assert store.public_ids() == {"cat"}
    dup = store.job("j1")
    assert dup is not None and dup.state is JobState.DUPLICATE


def test_dismiss_forgets_only_finished_jobs(store: MediaStore) -> None:
    store.upload_queued(job("j1", "a"))
    store.job_dismissed("j1")
    assert store.job("j1") is not None
    store.upload_cancelled("j1")
    store.job_dismissed("j1")
    assert store.job("j1") is None and store.public_ids() == set()


def test_remote_upsert_event_through_apply(store: MediaStore) -> None:
    store.apply(RemoteUpsert(asset("x", 1)))
    assert store.public_ids() == {"x"}


def test_catalog_columns_are_the_json_keys() -> None:
    from media_tui.model import CATALOG_COLUMNS

    assert set(MediaAsset(public_id="x").to_json()) == set(CATALOG_COLUMNS)


# ------------------------------------------- reordered feeds: no ghosts (ordering.py)


def ms(milliseconds: float) -> datetime:
    """A time in milliseconds after T0 (a fraction gives the microseconds within one)."""
    return T0 + timedelta(milliseconds=milliseconds)


def dated(public_id: str, updated_ms: float, row_id: int | None = None) -> MediaAsset:
    return MediaAsset(public_id=public_id, row_id=row_id, updated_at=ms(updated_ms))


def test_row_id_delete_before_its_insert_never_shows(store: MediaStore) -> None:
    # RLS: the DELETE carries only the row id, and it overtook the INSERT.
    store.apply(RemoteDelete(public_id=None, row_id=5, committed_at=ms(3)))
    store.apply(RemoteUpsert(dated("cat", 1, row_id=5)))
    store.apply(RemoteUpsert(dated("cat", 2, row_id=5)))  # any version of the dead row
    assert store.public_ids() == set()


def test_a_dead_row_stays_dead_across_a_resync(store: MediaStore) -> None:
    store.apply(RemoteDelete(public_id=None, row_id=5, committed_at=ms(3)))
    store.resynced([], taken_at=ms(4))
    store.apply(RemoteUpsert(dated("cat", 1, row_id=5)))  # was in flight across the resync
    assert store.public_ids() == set()
    store.apply(RemoteUpsert(dated("cat", 9, row_id=6)))  # re-created: a new row id
    assert store.public_ids() == {"cat"}


def test_duplicate_delete_changes_nothing(store: MediaStore, seen: list[ChangeSet]) -> None:
    store.remote_upsert(dated("cat", 1, row_id=5))
    store.remote_upsert(dated("dog", 1, row_id=6))
    store.apply(RemoteDelete(public_id=None, row_id=5, committed_at=ms(3)))
    count = len(seen)
    store.apply(RemoteDelete(public_id=None, row_id=5, committed_at=ms(3)))
    store.apply(RemoteDelete("dog", row_id=6, committed_at=ms(4)))
    store.apply(RemoteDelete("dog", row_id=6, committed_at=ms(4)))
    assert store.public_ids() == set()
    assert len(seen) == count + 1  # the second copies told nobody anything


def test_an_older_duplicate_delete_does_not_move_the_tombstone_back(store: MediaStore) -> None:
    store.remote_delete("cat", committed_at=ms(10))
    store.remote_delete("cat", committed_at=ms(2))  # a late copy of an earlier delete
    store.remote_upsert(dated("cat", 5))  # written before the newer delete
    assert store.public_ids() == set()


def test_public_id_delete_before_its_insert_never_shows(store: MediaStore) -> None:
    store.apply(RemoteDelete("cat", row_id=5, committed_at=ms(3)))
    store.apply(RemoteUpsert(dated("cat", 2.5, row_id=5)))
    assert store.public_ids() == set()
    store.apply(RemoteUpsert(dated("cat", 4.2, row_id=6)))  # uploaded again, later
    assert set(store.assets) == {"cat"}


def test_a_delete_with_public_id_leaves_the_row_alive(store: MediaStore) -> None:
    # The local feed logs a rename as delete(old name, row id), then upsert(new name, row id).
    store.remote_upsert(dated("old", 1, row_id=5))
    store.apply(RemoteDelete("old", row_id=5, committed_at=ms(2)))
    store.apply(RemoteUpsert(dated("new", 2.5, row_id=5)))
    assert set(store.assets) == {"new"}


def test_rename_with_its_delete_lost(store: MediaStore) -> None:
    # Supabase sends a rename as one UPDATE; the local feed's delete(old name) may be lost.
    store.remote_upsert(dated("old", 1, row_id=5))
    store.remote_upsert(dated("new", 2, row_id=5))
    assert set(store.assets) == {"new"}
    store.remote_upsert(dated("old", 1.5, row_id=5))  # a late update from before the rename
    assert set(store.assets) == {"new"}


@pytest.mark.parametrize("delete_first", [True, False])
def test_rename_with_its_delete_late(store: MediaStore, delete_first: bool) -> None:
    store.remote_upsert(dated("old", 1, row_id=5))
    rename: list[ChangeEvent] = [
        RemoteDelete("old", row_id=5, committed_at=ms(2)),
        RemoteUpsert(dated("new", 2.3, row_id=5)),
    ]
    for event in rename if delete_first else rename[::-1]:
        store.apply(event)
    store.remote_upsert(dated("old", 1, row_id=5))  # a duplicate from before
    assert set(store.assets) == {"new"}
    assert store.assets["new"].row_id == 5


def test_rename_first_heard_of_through_a_later_update(store: MediaStore) -> None:
    store.remote_upsert(dated("old", 1, row_id=5))
    # old -> new at 2 ms (lost), "old" uploaded again at 3.5 ms, "new" edited at 9 ms.
    store.remote_upsert(dated("new", 9, row_id=5))
    assert set(store.assets) == {"new"}
    store.remote_upsert(dated("old", 3.5, row_id=6))  # not ended by the rename's news
    assert set(store.assets) == {"new", "old"}
    store.remote_upsert(dated("old", 0.5, row_id=4))  # an older incarnation: stale
    assert store.assets["old"].row_id == 6


def test_rename_then_delete_arriving_in_reverse(store: MediaStore) -> None:
    store.remote_upsert(dated("old", 1, row_id=5))
    store.apply(RemoteDelete("new", row_id=5, committed_at=ms(3)))  # new deleted at 3 ms
    store.apply(RemoteUpsert(dated("new", 2, row_id=5)))  # old -> new at 2 ms, late
    assert store.public_ids() == set()


def test_row_id_delete_of_a_renamed_row_spares_the_name_taken_again(store: MediaStore) -> None:
    store.remote_upsert(dated("b", 0.001, row_id=1))
    # b -> c at 0.003 ms (not heard of yet), a -> b at 1.001 ms, c deleted at 1.002 ms.
    store.apply(RemoteDelete(public_id=None, row_id=1, committed_at=ms(1)))
    store.apply(RemoteUpsert(dated("b", 1.001, row_id=2)))
    assert set(store.assets) == {"b"} and store.assets["b"].row_id == 2


@pytest.mark.parametrize("delete_first", [True, False])
@pytest.mark.parametrize(("updated_ms", "survives"), [(3.7, False), (4.0, False), (4.001, True)])
def test_same_millisecond_delete_and_upsert_agree_in_both_orders(
    store: MediaStore, delete_first: bool, updated_ms: float, survives: bool
) -> None:
    # The delete's commit timestamp says 3 ms; it may have committed at any moment of it.
    events: list[ChangeEvent] = [
        RemoteDelete("cat", row_id=5, committed_at=ms(3)),
        RemoteUpsert(dated("cat", updated_ms, row_id=6)),
    ]
    for event in events if delete_first else events[::-1]:
        store.apply(event)
    assert ("cat" in store.assets) is survives


def test_resync_remembers_what_the_snapshot_lacked(store: MediaStore) -> None:
    store.remote_upsert(dated("cat", 1, row_id=5))
    # cat was updated at 2 ms and deleted at 3 ms; the delete was lost, the update is late.
    store.resynced([], taken_at=ms(4))
    assert store.public_ids() == set()
    store.remote_upsert(dated("cat", 2, row_id=5))
    assert store.public_ids() == set()
    store.remote_upsert(dated("cat", 5, row_id=6))  # written after the snapshot
    assert store.public_ids() == {"cat"}


def test_our_delete_does_not_remove_a_later_re_upload(store: MediaStore) -> None:
    store.remote_upsert(dated("cat", 1, row_id=5))
    store.delete_requested("cat")
    store.remote_upsert(dated("cat", 6, row_id=6))  # re-uploaded after our delete committed
    store.delete_succeeded("cat", committed_at=ms(3))
    assert store.assets["cat"].row_id == 6


def test_our_delete_removes_a_version_shown_meanwhile(store: MediaStore) -> None:
    store.upload_queued(job("j1", "cat"))
    store.delete_requested("cat")  # nothing confirmed to hide yet
    store.remote_upsert(dated("cat", 1, row_id=5))  # the upload's row arrives
    store.delete_succeeded("cat", committed_at=ms(3))
    assert "cat" not in store.assets


def test_row_tombstones_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from media_tui import store as store_module

    monkeypatch.setattr(store_module, "ROW_MEMORY", 3)
    store = MediaStore()
    for row_id in range(1, 6):
        store.remote_delete(None, row_id=row_id, committed_at=ms(row_id))
    store.remote_upsert(dated("newest-dead", 0.5, row_id=5))
    assert store.public_ids() == set()  # the newest are remembered
    store.remote_upsert(dated("forgotten", 0.5, row_id=1))
    assert store.public_ids() == {"forgotten"}  # the oldest was let go (a resync heals it)
