"""The Supabase emulator driven by the real supabase-py 2.34.1 async client.

PostgREST through `sb.table(...)` (ref §3), Realtime through `sb.channel(...)` (ref §2, §4),
reconnects after the control plane drops sockets (ref §5). Raw websocket tests replay the golden
client frames from `shared/reference/fixtures/realtime_frames.jsonl`. Nothing sleeps: every wait
is on an event or queue with a timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from postgrest.exceptions import APIError
from postgrest.types import CountMethod, ReturnMethod
from realtime import RealtimePostgresChangesListenEvent, RealtimeSubscribeStates
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from websockets.asyncio.client import connect

from tests.emulators.supabase import SupabaseEmulator

pytestmark = pytest.mark.usefixtures("supabase_emulator")

ALL = RealtimePostgresChangesListenEvent.All
GOLDEN = Path("/work/shared/reference/fixtures/realtime_frames.jsonl")
TIMEOUT = 20.0  # realtime-py's reconnect backoff is 1, 2, 4… s by default (ref §5)


@pytest.fixture
def emulator(supabase_emulator: SupabaseEmulator) -> SupabaseEmulator:
    return supabase_emulator


@pytest.fixture
async def sb(emulator: SupabaseEmulator) -> AsyncIterator[AsyncClient]:
    # ref §1: `initial_backoff` and `max_retries` are forwarded to AsyncRealtimeClient.
    options = AsyncClientOptions(realtime={"initial_backoff": 0.1, "max_retries": 10})
    client = await acreate_client(emulator.url, emulator.service_key, options=options)
    try:
        yield client
    finally:
        await client.remove_all_channels()
        await client.postgrest.aclose()


def rows(response: Any) -> list[dict[str, Any]]:
    """`APIResponse.data` typed as what a table query returns."""
    return cast(list[dict[str, Any]], response.data)


def asset(public_id: str, **extra: Any) -> dict[str, Any]:
    return {"public_id": public_id, "resource_type": "image", "format": "jpg", **extra}


# --------------------------------------------------------------------------------------------
# PostgREST
# --------------------------------------------------------------------------------------------


async def test_insert_returns_the_row_with_generated_columns(sb: AsyncClient) -> None:
    res = await sb.table("media_assets").insert(asset("a/1", bytes=10, tags=["x"])).execute()
    (row,) = rows(res)
    assert row["id"] == 1 and row["public_id"] == "a/1" and row["tags"] == ["x"]
    assert row["created_at"] == row["updated_at"]
    assert row["created_at"].endswith("+00:00") and "T" in row["created_at"]
    assert row["width"] is None  # every column is rendered, nulls included


async def test_upsert_on_conflict_keeps_one_row_and_bumps_updated_at(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    first = (
        await sb.table("media_assets")
        .upsert(asset("u/1", bytes=1), on_conflict="public_id")
        .execute()
    )
    second = (
        await sb.table("media_assets")
        .upsert(asset("u/1", bytes=2), on_conflict="public_id")
        .execute()
    )
    assert rows(first)[0]["id"] == rows(second)[0]["id"]
    assert rows(second)[0]["bytes"] == 2
    assert rows(second)[0]["updated_at"] > rows(first)[0]["updated_at"]
    assert rows(second)[0]["created_at"] == rows(first)[0]["created_at"]
    assert len(emulator.rows) == 1
    assert [r[2] for r in emulator.requests] == [201, 200]  # inserted, then all updated (ref §3)


async def test_bulk_upsert_with_columns_and_ignore_duplicates(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    await sb.table("media_assets").insert([asset("b/1"), asset("b/2", width=3)]).execute()
    res = await (
        sb.table("media_assets")
        .upsert(
            [asset("b/2", width=9), asset("b/3")], on_conflict="public_id", ignore_duplicates=True
        )
        .execute()
    )
    assert [r["public_id"] for r in rows(res)] == ["b/3"]
    assert {r["public_id"]: r["width"] for r in emulator.rows} == {
        "b/1": None,
        "b/2": 3,
        "b/3": None,
    }


async def test_select_filters_order_range_and_exact_count(sb: AsyncClient) -> None:
    batch = [asset(f"s/{i}", bytes=i * 10, format="png" if i % 2 else "jpg") for i in range(10)]
    batch[3]["width"] = 5
    await sb.table("media_assets").insert(batch).execute()
    res = await (
        sb.table("media_assets")
        .select("id,public_id,bytes", count=CountMethod.exact)
        .eq("format", "png")
        .order("bytes", desc=True)
        .range(1, 2)
        .execute()
    )
    assert res.count == 5
    assert rows(res) == [
        {"id": 8, "public_id": "s/7", "bytes": 70},
        {"id": 6, "public_id": "s/5", "bytes": 50},
    ]
    table = sb.table("media_assets")
    assert len(rows(await table.select("id").in_("public_id", ["s/1", "s/2", "zz"]).execute())) == 2
    assert len(rows(await table.select("id").gte("bytes", 30).lt("bytes", 60).execute())) == 3
    assert len(rows(await table.select("id").neq("format", "png").execute())) == 5
    assert len(rows(await table.select("id").like("public_id", "s/%").execute())) == 10
    assert len(rows(await table.select("id").ilike("public_id", "S/1%").execute())) == 1
    assert len(rows(await table.select("id").is_("width", None).execute())) == 9
    assert len(rows(await table.select("id").not_.is_("width", None).execute())) == 1
    assert len(rows(await table.select("id").or_("bytes.eq.0,bytes.gt.80").execute())) == 2
    nulls_last = await table.select("width").order("width", desc=True, nullsfirst=False).execute()
    assert rows(nulls_last)[0] == {"width": 5}
    nulls_first = await table.select("width").order("width", desc=True).execute()
    assert rows(nulls_first)[-1] == {"width": 5}  # DESC puts NULLs first by default
    one = await table.select("public_id").eq("id", 4).single().execute()
    assert one.data == {"public_id": "s/3"}  # single() gives an object


async def test_not_null_missing_default_and_returned_select(sb: AsyncClient) -> None:
    table = sb.table("media_assets")
    with pytest.raises(APIError) as not_null:
        await table.insert([asset("n/1", tags=["a"]), asset("n/2")]).execute()  # n/2 tags: null
    assert not_null.value.code == "23502"
    ok = await table.insert(
        [asset("n/1", tags=["a"]), asset("n/2")], default_to_null=False
    ).execute()
    assert [r["tags"] for r in rows(ok)] == [["a"], []]  # missing=default uses '{}'
    with pytest.raises(APIError) as identity:
        await table.insert({"id": 5, "public_id": "n/3"}).execute()
    assert identity.value.code == "428C9"
    minimal = await table.insert(asset("n/4"), returning=ReturnMethod.minimal).execute()
    assert rows(minimal) == []


async def test_update_and_delete_with_filters(sb: AsyncClient, emulator: SupabaseEmulator) -> None:
    await sb.table("media_assets").insert([asset("d/1"), asset("d/2")]).execute()
    upd = await sb.table("media_assets").update({"bytes": 99}).eq("public_id", "d/1").execute()
    assert [(r["public_id"], r["bytes"]) for r in rows(upd)] == [("d/1", 99)]
    assert rows(upd)[0]["updated_at"] > rows(upd)[0]["created_at"]
    gone = await sb.table("media_assets").delete().eq("public_id", "d/2").execute()
    assert [r["public_id"] for r in rows(gone)] == ["d/2"]
    assert [r["public_id"] for r in emulator.rows] == ["d/1"]


async def test_errors_carry_postgrest_codes(sb: AsyncClient) -> None:
    table = sb.table("media_assets")
    with pytest.raises(APIError) as unknown_body:
        await table.insert({"public_id": "e/1", "nope": 1}).execute()
    assert unknown_body.value.code == "PGRST204"
    with pytest.raises(APIError) as unknown_filter:
        await table.select("*").eq("nope", 1).execute()
    assert unknown_filter.value.code == "42703"
    await table.insert(asset("e/1")).execute()
    with pytest.raises(APIError) as duplicate:
        await table.insert(asset("e/1")).execute()
    assert duplicate.value.code == "23505"
    assert duplicate.value.details == "Key (public_id)=(e/1) already exists."
    with pytest.raises(APIError) as bad_int:
        await table.select("*").eq("bytes", "many").execute()
    assert bad_int.value.code == "22P02"
    with pytest.raises(APIError) as no_where:
        await table.delete().execute()
    assert no_where.value.code == "21000"
    with pytest.raises(APIError) as missing:
        await sb.table("missing").select("*").execute()
    assert missing.value.code == "PGRST205"
    with pytest.raises(APIError) as single:
        await table.select("*").eq("public_id", "none").single().execute()
    assert single.value.code == "PGRST116"


async def test_wrong_key_is_401_and_anon_may_only_read(emulator: SupabaseEmulator) -> None:
    bad = await acreate_client(emulator.url, "wrong-key")
    try:
        with pytest.raises(APIError) as err:
            await bad.table("media_assets").select("*").execute()
        assert err.value.message == "Invalid API key"
    finally:
        await bad.postgrest.aclose()
    anon = await acreate_client(emulator.url, emulator.anon_key)
    try:
        assert rows(await anon.table("media_assets").select("*").execute()) == []
        with pytest.raises(APIError) as denied:
            await anon.table("media_assets").insert(asset("x/1")).execute()
        assert denied.value.code == "42501"
    finally:
        await anon.postgrest.aclose()
    assert [status for _, _, status in emulator.requests] == [401, 200, 401]
    assert emulator.rest_requests == 3


# --------------------------------------------------------------------------------------------
# Realtime with the real client
# --------------------------------------------------------------------------------------------


class Subscriber:
    """Collects callbacks: sync, never raising (ref "Read this first" 2)."""

    def __init__(self) -> None:
        self.changes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribed = asyncio.Event()
        self.subscribed_count = 0
        self.states: list[str] = []
        self.errors: list[Exception | None] = []
        self.state_changed = asyncio.Event()

    def on_change(self, payload: Any) -> None:
        self.changes.put_nowait(payload)

    def on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        self.states.append(state.value if hasattr(state, "value") else str(state))
        self.errors.append(error)
        self.state_changed.set()
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            self.subscribed_count += 1
            self.subscribed.set()

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.changes.get(), TIMEOUT)

    async def wait_state(self, name: str) -> None:
        """Wait until `name` has been reported at least once."""
        async with asyncio.timeout(TIMEOUT):
            while name not in self.states:
                self.state_changed.clear()
                await self.state_changed.wait()

    async def wait_subscribed(self) -> None:
        await asyncio.wait_for(self.subscribed.wait(), TIMEOUT)
        self.subscribed.clear()


async def subscribe(sb: AsyncClient, **kwargs: Any) -> Subscriber:
    sub = Subscriber()
    channel = sb.channel("media-assets").on_postgres_changes(
        kwargs.pop("event", "*"), sub.on_change, table="media_assets", **kwargs
    )
    await channel.subscribe(sub.on_state)
    await sub.wait_subscribed()
    return sub


async def test_rest_writes_reach_the_callback(sb: AsyncClient) -> None:
    sub = await subscribe(sb)
    inserted = rows(await sb.table("media_assets").insert(asset("rt/1")).execute())[0]
    event = await sub.next()
    assert event["data"]["type"] == "INSERT" and event["data"]["record"] == inserted
    assert "old_record" not in event["data"]
    assert event["data"]["commit_timestamp"].endswith("Z")
    assert {"name": "tags", "type": "_text"} in event["data"]["columns"]
    await sb.table("media_assets").update({"bytes": 1}).eq("id", inserted["id"]).execute()
    event = await sub.next()
    assert event["data"]["type"] == "UPDATE" and event["data"]["record"]["bytes"] == 1
    assert event["data"]["old_record"] == {"id": inserted["id"]}
    await sb.table("media_assets").delete().eq("id", inserted["id"]).execute()
    event = await sub.next()
    assert event["data"]["type"] == "DELETE" and event["data"]["old_record"] == {
        "id": inserted["id"]
    }
    assert "record" not in event["data"]
    assert event["ids"] and all(isinstance(i, int) and i for i in event["ids"])


async def test_write_as_other_and_duplicate_events(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    sub = await subscribe(sb)
    row = await asyncio.to_thread(emulator.write_as_other, "insert", asset("o/1"))
    assert row is not None
    event = await sub.next()
    assert event["data"]["type"] == "INSERT" and event["data"]["record"] == row
    emulator.duplicate_events = True
    await asyncio.to_thread(emulator.write_as_other, "update", {"public_id": "o/1", "width": 7})
    first, second = await sub.next(), await sub.next()
    assert first == second and first["data"]["record"]["width"] == 7
    await asyncio.to_thread(emulator.write_as_other, "delete", {"public_id": "o/1"})
    assert (await sub.next())["data"]["old_record"] == {"id": row["id"]}
    assert (await sub.next())["data"]["type"] == "DELETE"
    assert emulator.rows == []


async def test_paused_events_are_delivered_reordered_on_resume(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    sub = await subscribe(sb, event="INSERT")
    emulator.reorder_events = True
    await asyncio.to_thread(emulator.pause_delivery)
    for i in range(8):
        await sb.table("media_assets").insert(asset(f"p/{i}")).execute()
    assert sub.changes.empty()
    await asyncio.to_thread(emulator.resume_delivery)
    got = [(await sub.next())["data"]["record"]["public_id"] for _ in range(8)]
    assert sorted(got) == sorted(f"p/{i}" for i in range(8))
    assert got != [f"p/{i}" for i in range(8)]  # seed 0 shuffles these 8 out of order


async def test_reorder_window_reorders_while_writes_go_on(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    sub = await subscribe(sb, event="INSERT")
    emulator.reorder_window = 4
    emulator.reorder_drain = 3600.0  # no drain in this test: what is sent is sent by writes
    committed = [f"w/{i}" for i in range(20)]
    for public_id in committed:
        await sb.table("media_assets").insert(asset(public_id)).execute()
    # Each commit pushed one change out of the window while the writes went on; three wait.
    during = [(await sub.next())["data"]["record"]["public_id"] for _ in range(17)]
    assert emulator.undelivered == 3
    assert during != committed[:17]  # seed 0 draws these out of commit order
    await asyncio.to_thread(emulator.flush_delivery)
    rest = [(await sub.next())["data"]["record"]["public_id"] for _ in range(3)]
    assert sorted(during + rest) == sorted(committed)
    assert emulator.undelivered == 0


async def test_reorder_window_jitter_and_duplicates_lose_nothing_when_writes_stop(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    sub = await subscribe(sb)
    emulator.reorder_window = 5
    emulator.delivery_jitter = 0.02
    emulator.duplicate_events = True
    for i in range(12):  # the last four changes leave the window only by its drain timer
        await asyncio.to_thread(emulator.write_as_other, "insert", asset(f"j/{i}"))
    await asyncio.to_thread(emulator.write_as_other, "delete", {"public_id": "j/0"})
    got = [await sub.next() for _ in range(26)]
    inserts = sorted(e["data"]["record"]["public_id"] for e in got if e["data"]["type"] == "INSERT")
    assert inserts == sorted(f"j/{i}" for i in range(12) for _ in range(2))
    assert sum(e["data"]["type"] == "DELETE" for e in got) == 2
    assert emulator.undelivered == 0


async def test_filtered_binding_only_gets_matching_rows(sb: AsyncClient) -> None:
    sub = await subscribe(sb, event="INSERT", filter="format=eq.png")
    await sb.table("media_assets").insert(asset("f/1")).execute()
    await sb.table("media_assets").insert(asset("f/2", format="png")).execute()
    assert (await sub.next())["data"]["record"]["public_id"] == "f/2"
    assert sub.changes.empty()


async def test_client_reconnects_after_sockets_drop(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    sub = await subscribe(sb)
    assert emulator.sockets_open == 1
    await asyncio.to_thread(emulator.drop_all_sockets)
    await sub.wait_subscribed()  # SUBSCRIBED fires again after the rejoin (ref §2)
    assert sub.subscribed_count == 2
    assert "CHANNEL_ERROR" in sub.states
    await sb.table("media_assets").insert(asset("r/1")).execute()
    assert (await sub.next())["data"]["record"]["public_id"] == "r/1"
    await asyncio.to_thread(emulator.close_all_sockets)  # a normal close reconnects too
    await sub.wait_subscribed()
    assert sub.subscribed_count == 3


async def test_heartbeat_is_answered(sb: AsyncClient, emulator: SupabaseEmulator) -> None:
    await subscribe(sb)
    # realtime-py sends a heartbeat right after connecting (ref §4.3); later ones every ≥15 s.
    assert await asyncio.to_thread(emulator.heartbeat_seen.wait, TIMEOUT)
    assert emulator.frames_sent >= 3  # join reply, system, heartbeat reply
    assert sb.realtime.is_connected


# --------------------------------------------------------------------------------------------
# Raw websocket: golden frames and strictness (ref §4.2-4.4)
# --------------------------------------------------------------------------------------------


def golden(direction: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in GOLDEN.read_text().splitlines() if line.strip()]
    return [entry["frame"] for entry in lines if entry["direction"] == direction]


def ws_url(emulator: SupabaseEmulator, key: str) -> str:
    return emulator.url.replace("http", "ws") + f"/realtime/v1/websocket?apikey={key}&vsn=1.0.0"


async def test_golden_join_heartbeat_and_leave(emulator: SupabaseEmulator) -> None:
    client_frames = golden("client->server")
    join, heartbeat = client_frames[0], client_frames[1]
    leave = {
        "event": "phx_leave",
        "payload": {},
        "topic": "realtime:media-assets",
        "ref": "2",
        "join_ref": "1",
    }
    emulator.extra_tokens.add("test-anon-key")
    async with connect(ws_url(emulator, emulator.anon_key)) as ws:
        received: Callable[[], Any] = lambda: asyncio.wait_for(ws.recv(), TIMEOUT)  # noqa: E731
        await ws.send(json.dumps(join))
        reply, system = json.loads(await received()), json.loads(await received())
        expected = golden("server->client")
        binding = reply["payload"]["response"]["postgres_changes"][0]
        assert binding.pop("id") != 0
        expected_binding = dict(expected[0]["payload"]["response"]["postgres_changes"][0])
        expected_binding.pop("id")
        assert binding == expected_binding
        assert list(reply) == list(expected[0]) and reply["ref"] == "1"
        assert system == expected[1]
        await ws.send(json.dumps(heartbeat))
        assert json.loads(await received()) == expected[2]
        await ws.send(json.dumps(leave))
        assert json.loads(await received())["payload"] == {"status": "ok", "response": {}}
        assert json.loads(await received()) == {
            "topic": "realtime:media-assets",
            "event": "phx_close",
            "payload": {},
            "ref": "1",
        }
        await ws.send(json.dumps(leave))  # the channel is gone now
        unmatched = json.loads(await received())
        assert unmatched["payload"] == {
            "status": "error",
            "response": {"reason": "unmatched topic"},
        }


async def test_postgres_changes_frame_has_the_golden_shape(emulator: SupabaseEmulator) -> None:
    join = golden("client->server")[0]
    insert, update, delete = golden("server->client")[3:6]
    emulator.extra_tokens.add("test-anon-key")
    async with connect(ws_url(emulator, emulator.anon_key)) as ws:
        await ws.send(json.dumps(join))
        await ws.recv(), await ws.recv()  # join reply, system
        row = await asyncio.to_thread(emulator.write_as_other, "INSERT", asset("g/1"))
        assert row is not None
        await asyncio.to_thread(emulator.write_as_other, "UPDATE", {"id": row["id"], "bytes": 1})
        await asyncio.to_thread(emulator.write_as_other, "DELETE", {"id": row["id"]})
        for expected in (insert, update, delete):
            frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert list(frame) == list(expected) and frame["ref"] is None
            assert list(frame["payload"]) == list(expected["payload"])
            assert set(frame["payload"]["data"]) == set(expected["payload"]["data"])
            assert frame["payload"]["data"]["type"] == expected["payload"]["data"]["type"]
        assert frame["payload"]["data"]["old_record"] == {"id": row["id"]}


async def test_bad_frame_closes_socket_and_bad_key_is_refused(emulator: SupabaseEmulator) -> None:
    async with connect(ws_url(emulator, emulator.anon_key)) as ws:
        await ws.send(
            json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": None})
        )
        with pytest.raises(Exception, match="1011"):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert len(emulator.protocol_violations) == 1
    emulator.protocol_violations.clear()  # deliberate here
    with pytest.raises(Exception, match="401"):
        async with connect(ws_url(emulator, "wrong")):
            pass


# --------------------------------------------------------------------------------------------
# More PostgREST and Realtime details, and the fault switches (ref §9 websocket 6)
# --------------------------------------------------------------------------------------------


async def test_head_count_contains_and_empty_range(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    table = sb.table("media_assets")
    empty = await table.select("*", count=CountMethod.exact).execute()
    assert (rows(empty), empty.count) == ([], 0)
    await table.insert([asset("h/1", tags=["a", "b c"]), asset("h/2", tags=["a"])]).execute()
    head = await table.select("*", count=CountMethod.exact, head=True).execute()
    assert head.count == 2
    tagged = await table.select("public_id").contains("tags", ["a", "b c"]).execute()
    assert rows(tagged) == [{"public_id": "h/1"}]
    assert [m for m, _, _ in emulator.requests] == ["GET", "POST", "HEAD", "GET"]


async def test_delay_holds_events_back(sb: AsyncClient, emulator: SupabaseEmulator) -> None:
    sub = await subscribe(sb)
    emulator.delay = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sb.table("media_assets").insert(asset("y/1")).execute()
    assert sub.changes.empty()
    assert (await sub.next())["data"]["record"]["public_id"] == "y/1"
    assert loop.time() - started >= 0.3


async def test_set_auth_token_is_accepted_and_bad_token_closes_channel(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    sub = await subscribe(sb)
    emulator.extra_tokens.add("user-jwt")
    await sb.realtime.set_auth("user-jwt")  # no reply; the channel stays joined
    await sb.table("media_assets").insert(asset("t/1")).execute()
    assert (await sub.next())["data"]["record"]["public_id"] == "t/1"
    await sb.realtime.set_auth("forged")  # system error, then phx_close (ref §4.3)
    await sub.wait_state("CLOSED")
    assert "CHANNEL_ERROR" in sub.states
    assert sb.get_channels() == []


async def test_expired_channel_ends_closed(sb: AsyncClient, emulator: SupabaseEmulator) -> None:
    sub = await subscribe(sb)
    await asyncio.to_thread(emulator.expire_channels)
    await sub.wait_state("CLOSED")
    assert sb.get_channels() == []


async def test_crashed_channel_is_rejoined(sb: AsyncClient, emulator: SupabaseEmulator) -> None:
    sub = await subscribe(sb)
    await asyncio.to_thread(emulator.crash_channels)
    await sub.wait_subscribed()  # realtime-py's rejoin timer starts at 1 s (ref §2)
    assert sub.states.count("SUBSCRIBED") == 2 and "CHANNEL_ERROR" in sub.states


async def test_join_error_and_missing_join_reply(emulator: SupabaseEmulator) -> None:
    emulator.join_error = "TenantNotFound: no tenant"
    options = AsyncClientOptions(
        realtime=cast(Any, {"timeout": 1})
    )  # works, not in the TypedDict (ref §1)
    client = await acreate_client(emulator.url, emulator.service_key, options=options)
    try:
        sub = Subscriber()
        channel = client.channel("a").on_postgres_changes(ALL, sub.on_change, table="media_assets")
        await channel.subscribe(sub.on_state)
        await sub.wait_state("CHANNEL_ERROR")
        assert "TenantNotFound" in str(sub.errors[-1])
        emulator.join_error = None
        emulator.ignore_joins = True
        sub2 = Subscriber()
        channel2 = client.channel("b").on_postgres_changes(
            ALL, sub2.on_change, table="media_assets"
        )
        await channel2.subscribe(sub2.on_state)
        await sub2.wait_state("TIMED_OUT")
    finally:
        await client.remove_all_channels()
        await client.postgrest.aclose()


async def test_refused_handshakes_then_reconnect(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    sub = await subscribe(sb)
    emulator.refuse_sockets(0.5)
    await asyncio.to_thread(emulator.drop_all_sockets)
    await sub.wait_subscribed()  # backoff 0.1, 0.2, 0.4… s outlasts the refusal
    assert any(
        path.startswith("/realtime") and status == 503 for _, path, status in emulator.requests
    )


async def _until(condition: Callable[[], bool], limit: float = TIMEOUT) -> None:
    """Poll a condition that lives on the emulator's thread (there is no event to wait on)."""

    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - the state changes on another thread
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), limit)


async def test_rest_faults_fail_or_drop_matching_requests_before_any_write(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    """503 is PostgREST's PGRST001 body, a drop ends the connection without an answer; both
    hit only what `rest_match` names, before the database sees the request."""
    table = sb.table("media_assets")
    emulator.rest_match = r"^POST "
    emulator.rest_failure_rate = 1.0
    with pytest.raises(APIError) as failed:
        await table.insert(asset("f/1")).execute()
    assert failed.value.code == "PGRST001"
    assert rows(await table.select("*").execute()) == []  # a GET is not matched
    emulator.rest_failure_rate = 0.0
    emulator.rest_drop_rate = 1.0
    with pytest.raises(httpx.RemoteProtocolError):
        await table.insert(asset("f/2")).execute()
    emulator.rest_drop_rate = 0.0
    await table.insert(asset("f/3")).execute()
    assert [row["public_id"] for row in emulator.rows] == ["f/3"]
    assert (emulator.rest_failures_injected, emulator.rest_drops_injected) == (1, 1)
    posts = [status for method, _, status in emulator.requests if method == "POST"]
    assert posts == [503, 0, 201]


async def test_rest_latency_holds_a_request_and_abandons_it_if_the_client_hangs_up(
    sb: AsyncClient, emulator: SupabaseEmulator
) -> None:
    """A held request reaches the database only after `rest_latency`, and never if its client
    went away meanwhile (the gateway drops it)."""
    emulator.rest_latency = 0.2
    write = asyncio.create_task(sb.table("media_assets").insert(asset("slow/1")).execute())
    await _until(lambda: emulator.rest_held == 1)
    assert emulator.rows == []  # held: nothing written yet
    await write
    assert [row["public_id"] for row in emulator.rows] == ["slow/1"]

    reader, writer = await asyncio.open_connection("127.0.0.1", emulator.port)
    body = json.dumps({"public_id": "slow/2"}).encode()
    head = (
        "POST /rest/v1/media_assets HTTP/1.1\r\nHost: emulator\r\n"
        f"apikey: {emulator.service_key}\r\nAuthorization: Bearer {emulator.service_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    await _until(lambda: emulator.rest_held == 1)
    writer.close()  # the client dies while its request is held
    await writer.wait_closed()
    await _until(lambda: emulator.rest_held == 0)
    assert await reader.read() == b""  # no answer was ever sent
    assert emulator.rest_abandoned == 1
    assert [row["public_id"] for row in emulator.rows] == ["slow/1"]
