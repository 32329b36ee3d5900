"""A multipart/form-data body streamed from a file region, with progress by bytes sent.

httpx can build multipart bodies itself, but it reads file objects synchronously on the event
loop and says nothing about progress. This builds the same wire format as an async iterator:
the form fields, then the file read in a thread chunk by chunk (each chunk reported once the
transport has taken it), then the closing boundary — with an exact Content-Length, so memory
stays flat for any file size and the server sees an ordinary request.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from media_tui.content import ContentChanged, StreamVerifier

READ_CHUNK = 1024 * 1024  # one thread hop per MiB: few hops, flat memory


def _quote(value: str) -> str:
    # RFC 7578 §4.2: quotes and line breaks in a name are percent-encoded, as browsers do.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


@dataclass(frozen=True, slots=True)
class FileRegion:
    """`length` bytes of `path` from `offset`: a whole file, or one chunk of a chunked upload.

    `data` holds the region's bytes when they were already read (and hashed): they are sent as
    they are, and the file is not opened again. Otherwise the file is read as the body streams,
    each piece handed to `verifier`; `last` marks the region that ends the file, where the
    verifier checks the whole file before the body's closing boundary goes out.
    """

    path: Path
    offset: int
    length: int
    filename: str
    data: bytes | None = None
    verifier: StreamVerifier | None = None
    last: bool = True


def _read_piece(region: FileRegion, handle: BinaryIO, size: int) -> bytes:
    """The next piece of the region, hashed; at the region's end, the file checked (blocking)."""
    data = handle.read(size)
    if len(data) != size:
        raise ContentChanged(region.path, "it became shorter")
    if region.verifier is not None:
        region.verifier.update(data)
    return data


def _finish(region: FileRegion, handle: BinaryIO) -> None:
    if region.verifier is not None and region.last:
        region.verifier.finish(handle)


def _read_small_region(region: FileRegion) -> bytes:
    with open(region.path, "rb") as handle:
        handle.seek(region.offset)
        data = _read_piece(region, handle, region.length)
        _finish(region, handle)
    return data


class MultipartBody:
    """The body and its headers; iterate it (once per attempt) to stream it."""

    def __init__(
        self, fields: Mapping[str, str], file: FileRegion, *, file_field: str = "file"
    ) -> None:
        self.boundary = secrets.token_hex(16)
        head = b"".join(self._field(name, value) for name, value in fields.items())
        head += (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{file_field}"; filename="{_quote(file.filename)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file = file

    def _field(self, name: str, value: str) -> bytes:
        return (
            (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
            ).encode()
            + value.encode("utf-8")
            + b"\r\n"
        )

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int:
        return len(self._head) + self.file.length + len(self._tail)

    async def stream(self, progress: Callable[[int], None]) -> AsyncIterator[bytes]:
        """Yield the body; `progress(n)` gets the file bytes handed to the transport so far.

        A verification failure raises before the closing boundary, so the server never sees a
        complete request and stores nothing.
        """
        region = self.file
        yield self._head
        if region.data is not None:
            view = memoryview(region.data)
            for start in range(0, len(view), READ_CHUNK):
                yield bytes(view[start : start + READ_CHUNK])
                progress(min(len(view), start + READ_CHUNK))
            if not view:
                progress(0)
            yield self._tail
            return
        if region.length <= READ_CHUNK:
            # A small region is one read: one thread hop instead of open, seek, read and close.
            data = await asyncio.to_thread(_read_small_region, region)
            yield data
            progress(len(data))
            yield self._tail
            return
        handle = await asyncio.to_thread(open, region.path, "rb")
        try:
            await asyncio.to_thread(handle.seek, region.offset, os.SEEK_SET)
            remaining, sent = region.length, 0
            while remaining > 0:
                size = min(READ_CHUNK, remaining)
                chunk = await asyncio.to_thread(_read_piece, region, handle, size)
                remaining -= len(chunk)
                yield chunk
                # The transport asked for the next piece: this one has been written out.
                sent += len(chunk)
                progress(sent)
            await asyncio.to_thread(_finish, region, handle)
        finally:
            await asyncio.to_thread(handle.close)
        yield self._tail
