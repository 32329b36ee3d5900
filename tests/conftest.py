"""Fixtures every test can use: the wire-faithful emulators on loopback, and a clean logger."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.emulators.fixtures", "tests.emulators.supabase_fixtures"]


@pytest.fixture(autouse=True)
def media_tui_logger() -> Iterator[None]:
    """Undo what an in-process CLI run does to the `media_tui` logger (a file handler in some
    test's library, `propagate = False`), so the next test's caplog sees its records."""
    logger = logging.getLogger("media_tui")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:], logger.level, logger.propagate = saved
