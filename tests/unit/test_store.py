"""MediaStore rules from DESIGN §1, one test per rule and per order of arrival."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media_tui.model import (
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
        public_id=public_id, row_id=row_id, updated_at=at(updated), created_at=T0, **kw
    )  # type: ignore[arg-type]


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
