"""Public ids and folders: deriving safe, stable identities from file names.

A public id is chosen when a job is queued so the optimistic grid entry has its final name from
the first frame, and it depends only on the file name and folder, so a retried or resumed job
writes the same id (an overwrite) instead of a second asset.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path

from media_tui.errors import UsageError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_SEGMENT = 100


def safe_segment(text: str) -> str:
    """One path segment of a public id: ASCII letters, digits, `_ . -`; never empty."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE.sub("_", folded).strip("._-")
    return cleaned[:MAX_SEGMENT].rstrip("._-") or "file"


def storable_name(name: str) -> str:
    """A file name as valid Unicode: bytes that are not UTF-8 become U+FFFD.

    `os.fsdecode` keeps such bytes as lone surrogates, which no catalogue (SQLite, Postgres),
    JSON body or HTTP header can hold: storing `bad\\xff.png` as the original file name failed
    the whole upload with a UnicodeEncodeError. The name is only shown, so the lossy form is
    right; the path itself is never changed.
    """
    return os.fsencode(name).decode("utf-8", "replace")


def normalize_folder(folder: str | None) -> str:
    """A folder as the operator typed it (`/a//b/`) in canonical form (`a/b`)."""
    if not folder:
        return ""
    parts = [p for p in folder.replace("\\", "/").split("/") if p.strip()]
    if any(p in (".", "..") for p in parts):
        raise UsageError(
            f"the folder {folder!r} contains '.' or '..'; give a plain folder name like photos/2026."
        )
    return "/".join(safe_segment(p) for p in parts)


def public_id_for(path: Path, folder: str = "") -> str:
    """`folder/stem` from the file name, made safe for Cloudinary and URLs."""
    stem = safe_segment(Path(os.fsdecode(path.name)).stem)
    return f"{folder}/{stem}" if folder else stem


def disambiguated(public_id: str, key: str) -> str:
    """The same id made distinct by a short stable hash of `key` (a path or a checksum)."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{public_id}-{digest}"
