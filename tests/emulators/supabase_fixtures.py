"""Pytest fixture for the Supabase emulator (`tests/emulators/supabase.py`).

    from tests.emulators.supabase_fixtures import supabase_emulator  # noqa: F401

`supabase_emulator` starts a fresh `SupabaseEmulator` on 127.0.0.1 and a free port for each test
and stops it afterwards. Teardown fails the test if the emulator hit an internal error (an
emulator bug must not pass as an app bug), if a client sent a websocket frame realtime-py would
never send (clear `protocol_violations` in tests that do it on purpose), or if the server thread
outlived `stop()`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.supabase import SupabaseEmulator


@pytest.fixture
def supabase_emulator() -> Iterator[SupabaseEmulator]:
    emulator = SupabaseEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
    if emulator.internal_errors:
        pytest.fail("Supabase emulator internal errors:\n" + "\n".join(emulator.internal_errors))
    if emulator.protocol_violations:
        pytest.fail("Realtime protocol violations:\n" + "\n".join(emulator.protocol_violations))
    if emulator.leaked_threads:
        pytest.fail(f"Supabase emulator left threads running: {emulator.leaked_threads}")
