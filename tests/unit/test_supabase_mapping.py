"""Pure mappings of the Supabase backends: realtime payloads to events, errors to sentences."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from postgrest.exceptions import APIError
from realtime.types import RealtimePostgresChangesListenEvent as Kind

from media_tui.backends.supabase_catalog import error_for, row_of
from media_tui.backends.supabase_feed import event_from_payload
from media_tui.errors import PermanentError, TransientError
from media_tui.model import MediaAsset, RemoteDelete, RemoteUpsert

ROW = {
    "id": 46,
    "public_id": "shots/a",
    "resource_type": "image",
    "format": "jpg",
    "bytes": 10,
    "tags": ["x"],
    "created_at": "2025-11-03T09:32:55.123456+00:00",
    "updated_at": "2025-11-03T09:32:56.000001+00:00",
}


def payload(kind: Kind, **data: object) -> dict[str, object]:
    base = {
        "schema": "public",
        "table": "media_assets",
        "commit_timestamp": "2026-01-01T00:00:00.000Z",
        "type": kind,
        "errors": None,
        "columns": [],
    }
    return {"data": base | data, "ids": [132617773]}


def test_insert_and_update_become_upserts_with_the_row() -> None:
    for kind in (Kind.Insert, Kind.Update):
        event = event_from_payload(payload(kind, record=ROW, old_record={"id": 46}))
        assert isinstance(event, RemoteUpsert)
        assert event.asset.public_id == "shots/a" and event.asset.row_id == 46
        assert event.asset.updated_at == datetime(2025, 11, 3, 9, 32, 56, 1, tzinfo=UTC)


def test_delete_with_only_the_primary_key() -> None:
    event = event_from_payload(payload(Kind.Delete, old_record={"id": 46}))
    assert event == RemoteDelete(
        public_id=None, row_id=46, committed_at=datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_plain_string_types_work_too() -> None:
    assert isinstance(event_from_payload({"data": {"type": "INSERT", "record": ROW}}), RemoteUpsert)
    assert event_from_payload({"data": {"type": "INSERT"}}) is None  # no record: nothing to apply


def test_row_of_leaves_server_columns_out() -> None:
    row = row_of(MediaAsset.from_json(ROW))
    assert "id" not in row and "created_at" not in row and "updated_at" not in row
    assert row["public_id"] == "shots/a" and row["tags"] == ["x"]


def test_errors_become_one_sentence() -> None:
    assert isinstance(error_for(httpx.ConnectError("down"), "writing a"), TransientError)
    assert isinstance(
        error_for(APIError({"code": "PGRST000", "message": "db down"}), "writing a"), TransientError
    )
    bad_key = error_for(
        APIError({"message": "Invalid API key", "hint": "Double check"}), "writing a"
    )
    assert isinstance(bad_key, PermanentError) and "check SUPABASE_URL and the key" in str(bad_key)
    missing = error_for(
        APIError({"code": "PGRST205", "message": "Could not find the table"}), "listing"
    )
    assert "media-tui schema" in str(missing)
    conflict = error_for(
        APIError({"code": "23505", "message": "duplicate key", "hint": None}), "writing a"
    )
    assert (
        isinstance(conflict, PermanentError)
        and "23505" in str(conflict)
        and "\n" not in str(conflict)
    )


def test_a_gateway_error_without_a_code_is_retried_but_its_bad_key_is_not() -> None:
    """PostgREST's errors always have a code; codeless JSON comes from the gateway in front."""
    upstream = error_for(
        APIError({"message": "An invalid response was received from the upstream server"}),
        "writing a",
    )
    assert isinstance(upstream, TransientError) and "gateway" in str(upstream)
    credentials = error_for(APIError({"message": "Invalid authentication credentials"}), "listing")
    assert isinstance(credentials, PermanentError) and "the key" in str(credentials)
