"""The local library backends: everything media-tui needs with no account at all.

A library folder holds `catalog.sqlite3` (the catalogue and its change log) and
`objects/` + `thumbs/` (the files). Each backend lives in its own module; this one gathers
them so callers can write `from media_tui.backends.local import LocalStorage, ...`.
"""

from __future__ import annotations

from media_tui.backends.local_catalog import KEEP_CHANGES, LocalCatalog
from media_tui.backends.local_db import CATALOG_FILENAME, ChangesPruned
from media_tui.backends.local_feed import LocalChangeFeed
from media_tui.backends.local_schema import SCHEMA_VERSION
from media_tui.backends.local_storage import LocalStorage

__all__ = [
    "CATALOG_FILENAME",
    "KEEP_CHANGES",
    "SCHEMA_VERSION",
    "ChangesPruned",
    "LocalCatalog",
    "LocalChangeFeed",
    "LocalStorage",
]
