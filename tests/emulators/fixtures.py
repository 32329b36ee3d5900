"""Pytest fixtures for the emulators, importable from any test module or conftest.

    from tests.emulators.fixtures import cloudinary_emulator  # noqa: F401

`cloudinary_emulator` starts a fresh `CloudinaryEmulator` on 127.0.0.1 and a free port for each
test and stops it afterwards. Teardown fails the test if the emulator hit an internal error
(an emulator bug must not pass as an app bug, nor vanish) or left a connection thread behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.cloudinary import CloudinaryEmulator


@pytest.fixture
def cloudinary_emulator() -> Iterator[CloudinaryEmulator]:
    emulator = CloudinaryEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
    if emulator.internal_errors:
        pytest.fail("Cloudinary emulator internal errors:\n" + "\n".join(emulator.internal_errors))
    if emulator.leaked_threads:
        pytest.fail(f"Cloudinary emulator left threads running: {emulator.leaked_threads}")
