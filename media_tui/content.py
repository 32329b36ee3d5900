"""Reading a file for upload so that what is stored is exactly what was hashed.

A file can change while media-tui reads it: a camera card still being copied, an export still
being written, an editor saving over it. The checksum a catalogue row records must be the hash
of the bytes storage holds, or dedupe later reports the real file as a `duplicate` and never
sends it. So:

- **Small files** (up to `INLINE_LIMIT`) are read whole, once, in a thread: the hash is taken
  of that buffer and the buffer is what is sent. A file whose size or modification time moved
  while it was read is read again (`READ_ATTEMPTS`), then refused.
- **Large files** are fingerprinted first (sha256 for dedupe, md5 for Cloudinary's `etag`), then
  streamed from disk while `StreamVerifier` hashes and counts the same bytes as they are handed
  to the transport. Before the request's last byte leaves, it checks the count, the md5 and that
  the file has not grown; a mismatch aborts the request (so storage never completes it) with
  "… changed while it was uploading; upload it again."

Storage then compares what it reports (`bytes`, Cloudinary's `etag` = md5 of the stored bytes)
with the fingerprint: a row is written only for bytes that are known to be the hashed ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_tui.errors import PermanentError

INLINE_LIMIT = 8 * 1024 * 1024
"""Files up to this size are read into memory once and sent from that buffer."""

READ_CHUNK = 1 << 20
READ_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A file's identity as stored: its size and two hashes of its bytes."""

    size: int
    sha256: str
    md5: str  # Cloudinary's `etag` is the md5 of the stored bytes


class ContentChanged(PermanentError):
    """The file's bytes changed while media-tui was reading or sending them."""

    def __init__(self, path: Path, detail: str = "") -> None:
        what = f" ({detail})" if detail else ""
        super().__init__(
            f"{os.fsdecode(path)} changed while it was uploading{what}; upload it again once "
            "nothing is writing to it."
        )


def read_error(path: Path, exc: OSError) -> PermanentError:
    """One sentence for a file that cannot be read."""
    reason = exc.strerror or type(exc).__name__
    return PermanentError(
        f"cannot read {os.fsdecode(path)} ({reason}); check the file is still there and readable."
    )


def _new_hashes() -> tuple[Any, Any]:
    return hashlib.sha256(), hashlib.md5(usedforsecurity=False)


def _stamp(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_size, stat.st_mtime_ns


def read_for_upload(
    path: Path, cancelled: threading.Event | None = None
) -> tuple[bytes | None, Fingerprint]:
    """What to send and its fingerprint (blocking: run it in a thread).

    A small file comes back whole (`content`), a large one as `None` with the fingerprint of
    a full read, to be streamed and verified. The size is the file's now, not when it was
    queued: a file that grew or shrank while it waited is sent as it is now.
    """
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise read_error(path, exc) from None
    if size <= INLINE_LIMIT:
        whole = read_whole(path, cancelled)
        if whole is not None:
            return whole
    return None, fingerprint_file(path, cancelled)


def read_whole(
    path: Path, cancelled: threading.Event | None = None
) -> tuple[bytes, Fingerprint] | None:
    """The file's bytes and their fingerprint, from one read that nothing wrote into (blocking).

    None when the file has grown past `INLINE_LIMIT` (the caller streams it instead).
    """
    for _ in range(READ_ATTEMPTS):
        try:
            with open(path, "rb") as handle:
                before = _stamp(os.fstat(handle.fileno()))
                data = handle.read(INLINE_LIMIT + 1)
                after = _stamp(os.fstat(handle.fileno()))
        except OSError as exc:
            raise read_error(path, exc) from None
        if cancelled is not None and cancelled.is_set():
            raise asyncio.CancelledError
        if len(data) > INLINE_LIMIT:
            return None
        if before == after and after[0] == len(data):
            sha, md5 = _new_hashes()
            sha.update(data)
            md5.update(data)
            return data, Fingerprint(len(data), sha.hexdigest(), md5.hexdigest())
    raise ContentChanged(path, "it kept changing while it was read")


def fingerprint_file(path: Path, cancelled: threading.Event | None = None) -> Fingerprint:
    """The fingerprint of a large file, read in chunks (blocking: run it in a thread)."""
    sha, md5 = _new_hashes()
    size = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(READ_CHUNK):
                if cancelled is not None and cancelled.is_set():
                    raise asyncio.CancelledError
                sha.update(chunk)
                md5.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise read_error(path, exc) from None
    return Fingerprint(size, sha.hexdigest(), md5.hexdigest())


class StreamVerifier:
    """Hashes the bytes of a file as they are sent and checks them against its fingerprint.

    Chunked uploads send a file as several requests, and a failed chunk is sent again:
    `checkpoint()` before a chunk and `rewind()` before its resend keep the running hash equal
    to the hash of the bytes storage has accepted, in order.
    """

    def __init__(self, path: Path, expected: Fingerprint) -> None:
        self.path = path
        self.expected = expected
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._count = 0
        self._saved: tuple[Any, int] = (self._md5.copy(), 0)

    def update(self, chunk: bytes) -> None:
        self._md5.update(chunk)
        self._count += len(chunk)

    def checkpoint(self) -> None:
        self._saved = (self._md5.copy(), self._count)

    def rewind(self) -> None:
        md5, self._count = self._saved
        self._md5 = md5.copy()

    def finish(self, handle: Any) -> None:
        """At the end of the file: the count, the hash, and nothing more to read (blocking)."""
        if self._count != self.expected.size:
            raise ContentChanged(self.path, "its size changed")
        if handle.read(1):
            raise ContentChanged(self.path, "it grew")
        # A caller that knows no md5 (not the upload queue, which always does) gets the size
        # and growth checks only.
        if self.expected.md5 and self._md5.hexdigest() != self.expected.md5:
            raise ContentChanged(self.path, "its bytes differ from those hashed")


def check_stored(
    path: Path, expected: Fingerprint, stored_bytes: int | None, etag: str | None
) -> None:
    """Refuse an answer from storage that describes other bytes than the ones sent."""
    if stored_bytes is not None and stored_bytes != expected.size:
        raise PermanentError(
            f"storage kept {stored_bytes:,} bytes of {os.fsdecode(path)} but {expected.size:,} "
            "were sent; upload it again."
        )
    if etag and etag.strip('"').lower() != expected.md5:
        raise PermanentError(
            f"storage holds other bytes for {os.fsdecode(path)} than were sent (its etag "
            "differs); upload it again."
        )
