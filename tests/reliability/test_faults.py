"""Faults on every wire at once: flaky storage and catalogue, realtime sockets that keep dying.

- 30 % transient failures plus 10 % dropped connections on Cloudinary (emulator) and on the
  Supabase (emulator) catalogue's REST path: every file still arrives, exactly once.
- Realtime sockets dropped every 2 s while another operator writes 1,000 rows: two followers
  end with exactly the server's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from pathlib import Path
from typing import Any

import pytest
from postgrest._async import request_builder

from media_tui.backends.cloudinary import CloudinaryStorage
from media_tui.backends.supabase_catalog import SupabaseCatalog
from media_tui.journal import Journal
from media_tui.model import ConnectionState, JobState, MediaAsset
from media_tui.paths import expand
from media_tui.store import MediaStore
from media_tui.uploads import RetryPolicy, UploadQueue
from tests.emulators.cloudinary import CloudinaryEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.media_factory import make_png
from tests.integration.test_cloudinary_pipeline import no_sleep, settings_for
from tests.integration.test_supabase_pipeline import Operator, settings, until

FILES = 100
# Each Cloudinary upload and each Supabase upsert (a POST, which postgrest-py never retries)
# fails with p = 0.1 (drop) + 0.9 * 0.3 (503) = 0.37 per attempt, whatever draws it meets: the
# draws depend on thread timing, so a file can meet a run of faults. Lookups are GETs, which
# postgrest-py itself tries 4 times per attempt, so they fail with 0.37^4 ≈ 0.019. A previous
# test failed once with 8 attempts (0.37^8 ≈ 3.5e-4 per step, about 1 run in 120 for 24 files).
# With 24 attempts a POST step is exhausted with 0.37^24 ≈ 4e-11; 100 files × 2 POST steps
# give about 1e-8 per run, and the lookups (0.019^24) nothing measurable.
ATTEMPTS = 24


async def test_30_percent_failures_and_drops_on_storage_and_catalogue_deliver_every_file_once(
    tmp_path: Path,
    cloudinary_emulator: CloudinaryEmulator,
    supabase_emulator: SupabaseEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100 images through the real queue to Cloudinary and a Supabase catalogue, both answering
    30 % of requests with 503 and dropping 10 % of connections: all 100 jobs end done, each
    file stored exactly once (100 stores, 100 assets) and written once (100 inserts, no second
    write, 100 rows, none twice), and the journal is empty."""
    src = tmp_path / "src"
    src.mkdir()
    expected = {
        f"f{i:03d}": hashlib.sha256(
            make_png(src / f"f{i:03d}.png", seed=5000 + i).read_bytes()
        ).hexdigest()
        for i in range(FILES)
    }
    faults = cloudinary_emulator.faults
    faults.seed(42)
    faults.failure_rate, faults.failure_status, faults.drop_rate = 0.3, 503, 0.1
    supabase_emulator.seed_rest_faults(43)
    supabase_emulator.rest_failure_rate = 0.3
    supabase_emulator.rest_failure_status = 503
    supabase_emulator.rest_drop_rate = 0.1
    # postgrest-py waits 1, 2, 4 s between its own GET retries; the retries stay, the waits go.
    monkeypatch.setattr(request_builder, "get_retry_delay", lambda attempt: 0)

    store = MediaStore()
    storage = CloudinaryStorage(settings_for(cloudinary_emulator), sleep=no_sleep)
    catalog = SupabaseCatalog(settings(supabase_emulator))
    journal_dir = tmp_path / "lib" / "journal"
    queue = UploadQueue(
        store,
        storage,
        catalog,
        Journal(journal_dir),
        concurrency=4,
        retry=RetryPolicy(max_attempts=ATTEMPTS, base_delay=0.01),
        sleep=no_sleep,
    )
    await queue.start()
    try:
        files = expand([str(src)]).files
        assert len(files) == FILES
        await queue.enqueue(files)
        await asyncio.wait_for(queue.wait_idle(), 120)
    finally:
        await queue.aclose()
        await storage.aclose()
        await catalog.aclose()

    failed = [(j.path.name, j.error) for j in store.jobs.values() if j.state is not JobState.DONE]
    assert not failed
    assert len(store.jobs) == FILES
    # The faults really happened, on both services.
    assert faults.failures_injected > 0 and faults.drops_injected > 0
    assert supabase_emulator.rest_failures_injected > 0
    assert supabase_emulator.rest_drops_injected > 0
    # Cloudinary: every file stored exactly once.
    assert {key[2] for key in cloudinary_emulator.assets} == set(expected)
    assert cloudinary_emulator.upload_count == FILES
    # Supabase: one insert per file and no second write of any row.
    rows = supabase_emulator.rows
    assert {str(r["public_id"]): r["checksum"] for r in rows} == expected
    assert len(rows) == FILES
    table = f"/rest/v1/{supabase_emulator.table.name}"
    writes = [
        s
        for m, p, s in supabase_emulator.requests
        if m == "POST" and p.split("?")[0] == table and s in (200, 201)
    ]
    assert writes == [201] * FILES
    assert store.public_ids() == set(expected)
    assert supabase_emulator.claims.rows == {}  # every claim released, through the faults too
    assert not list(journal_dir.glob("*.jsonl"))
    print(
        f"\nfaults: Cloudinary {faults.failures_injected} × 503 + {faults.drops_injected} drops, "
        f"Supabase {supabase_emulator.rest_failures_injected} × 503 + "
        f"{supabase_emulator.rest_drops_injected} drops"
    )


# ----------------------------------------------------------------------- realtime drops

WRITES = 1000
BATCH = 50  # writes per burst; a pause follows each, so the run spans several drops
PAUSE = 0.3  # seconds between bursts: 20 bursts take about 6 s
DROP_EVERY = 2.0  # seconds: the cadence under test


def other_operators_writes(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """1,000 writes: inserts, updates and deletes of earlier rows, deleted ids inserted again,
    and a script's insert-update-delete of one row in a row (within the same millisecond)."""
    ops: list[tuple[str, dict[str, Any]]] = []
    live: list[str] = []
    gone: list[str] = []
    serial = 0
    while len(ops) < WRITES:
        roll = rng.random()
        if live and roll < 0.25:
            target = rng.choice(live)
            ops.append(("UPDATE", {"public_id": target, "bytes": rng.randrange(1, 10**9)}))
        elif live and roll < 0.35:
            target = live.pop(rng.randrange(len(live)))
            gone.append(target)
            ops.append(("DELETE", {"public_id": target}))
        elif gone and roll < 0.40:
            target = gone.pop(rng.randrange(len(gone)))
            live.append(target)
            ops.append(("INSERT", {"public_id": target, "resource_type": "video", "bytes": 1}))
        elif roll < 0.45 and len(ops) + 3 <= WRITES:
            target = f"script/{serial:04d}"
            serial += 1
            gone.append(target)
            ops += [
                ("INSERT", {"public_id": target, "resource_type": "image"}),
                ("UPDATE", {"public_id": target, "tags": ["oops"]}),
                ("DELETE", {"public_id": target}),
            ]
        else:
            target = f"other/{serial:04d}"
            serial += 1
            live.append(target)
            ops.append(("INSERT", {"public_id": target, "resource_type": "image", "bytes": 1}))
    return ops[:WRITES]


def server_assets(emulator: SupabaseEmulator) -> dict[str, MediaAsset]:
    return {str(row["public_id"]): MediaAsset.from_json(row) for row in emulator.rows}


def websocket_handshakes(emulator: SupabaseEmulator) -> int:
    return sum(
        1
        for method, path, status in emulator.requests
        if path == "/realtime/v1/websocket" and status == 101
    )


async def test_sockets_dropped_every_2_s_during_1000_writes_by_another_operator_converge(
    supabase_emulator: SupabaseEmulator,
) -> None:
    """Two followers of the catalogue; another operator makes 1,000 writes (inserts, updates,
    deletes, re-inserts, same-millisecond insert-update-delete bursts) over about 6 s while
    every realtime socket is dropped every 2 s: both followers reconnect after each drop and
    end with exactly the server's rows, field for field."""
    writes = other_operators_writes(random.Random(1000))
    assert len(writes) == WRITES
    team = [Operator(supabase_emulator, initial_backoff=0.1, max_retries=50) for _ in range(2)]
    drops = 0
    try:
        for member in team:
            await member.start()
        handshakes = websocket_handshakes(supabase_emulator)
        resyncs = [member.resyncs for member in team]

        async def drop_sockets() -> None:
            nonlocal drops
            while True:
                await asyncio.sleep(DROP_EVERY)  # the cadence is the point of this loop
                await asyncio.to_thread(supabase_emulator.drop_all_sockets)
                drops += 1

        def burst(batch: list[tuple[str, dict[str, Any]]]) -> None:
            for op, row in batch:
                assert supabase_emulator.write_as_other(op, row) is not None, (op, row)

        dropper = asyncio.create_task(drop_sockets())
        try:
            for start in range(0, WRITES, BATCH):
                await asyncio.to_thread(burst, writes[start : start + BATCH])
                await asyncio.sleep(PAUSE)  # pacing the writer, not waiting for anything
        finally:
            dropper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dropper

        assert drops >= 2, "the writes spanned several drops"
        # Every drop cut both sockets and both came back, each time with a resync.
        for member, before in zip(team, resyncs, strict=True):
            await until(lambda m=member, b=before: m.resyncs - b >= drops, 30)
        assert websocket_handshakes(supabase_emulator) - handshakes >= 2 * drops
        expected = server_assets(supabase_emulator)
        for member in team:
            await until(lambda m=member: m.store.assets == expected, 30)
            assert member.store.connection is ConnectionState.LIVE
        print(
            f"\nrealtime: {WRITES} writes, {drops} drops, {len(expected)} rows at the end, "
            f"resyncs {[m.resyncs for m in team]}"
        )
    finally:
        for member in team:
            await member.close()
