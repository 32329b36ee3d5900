"""LocalStorage: originals as content-addressed files in the library folder.

Layout under the library folder:
    objects/<sha[:2]>/<sha256>.<ext>   the original bytes, named by their hash
    thumbs/<sha256>.png                a thumbnail fitting 256×256, for images only

A file appears under its final name only once it is complete and on disk (temp file in
`objects/`, fsync, `os.replace`, fsync of the directory), so a crash, a full disk or a
cancelled upload never leaves a partial object where a reader could find it. Everything
blocking (copying, hashing, Pillow) runs in a worker thread; progress is handed back to the
event loop thread, because the callback updates a store that is not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import io
import os
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from media_tui.backends.base import ProgressCallback, UploadRequest
from media_tui.content import ContentChanged
from media_tui.errors import PermanentError
from media_tui.imaging import make_thumbnail, probe_image
from media_tui.model import MediaAsset, ResourceType, utcnow
from media_tui.naming import storable_name

CHUNK_SIZE = 1 << 20
"""Bytes copied between progress reports and cancellation checks."""

STALE_TEMP_AGE = 24 * 3600
"""Seconds after which a temp file in objects/ is a crashed upload's leftover, not a live one."""

_TEMP_PREFIX = ".upload-"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FORMAT = re.compile(r"[a-z0-9]{1,16}")
_IMAGE_EXTENSIONS = frozenset(
    [
        "jpg",
        "jpeg",
        "png",
        "gif",
        "webp",
        "bmp",
        "tif",
        "tiff",
        "heic",
        "heif",
        "avif",
        "ico",
        "svg",
    ]
)
_VIDEO_EXTENSIONS = frozenset(
    [
        "mp4",
        "m4v",
        "mov",
        "webm",
        "mkv",
        "avi",
        "mpg",
        "mpeg",
        "ogv",
        "mp3",
        "m4a",
        "aac",
        "wav",
        "flac",
        "ogg",
        "oga",
        "opus",
    ]
)


class _CopyCancelled(Exception):
    """Raised in the worker thread when the awaiting task was cancelled."""


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the worker thread found out while storing a file."""

    path: Path
    format: str | None
    width: int | None
    height: int | None
    thumbnail: Path | None


class LocalStorage:
    """The `Storage` protocol over a library folder."""

    name = "local"
    # Objects are named by their sha256 and carry nothing else: no public id, no tags.
    sync_key: Literal["public_id", "checksum"] = "checksum"
    sync_fields: tuple[str, ...] = ("format", "bytes", "url")

    def __init__(self, library_dir: Path) -> None:
        self.library_dir = Path(library_dir)
        self.objects_dir = self.library_dir / "objects"
        self.thumbs_dir = self.library_dir / "thumbs"
        self._swept = False

    # --- paths --------------------------------------------------------------------------------

    def object_path(self, checksum: str, fmt: str | None) -> Path:
        """Where the bytes with this sha256 live: `objects/<sha[:2]>/<sha>.<fmt>`."""
        sha = _valid_sha256(checksum)
        name = f"{sha}.{_valid_format(fmt)}" if fmt else sha
        return self.objects_dir / sha[:2] / name

    def thumbnail_path(self, checksum: str) -> Path:
        return self.thumbs_dir / f"{_valid_sha256(checksum)}.png"

    # --- the Storage protocol -----------------------------------------------------------------

    async def upload(self, request: UploadRequest, progress: ProgressCallback) -> MediaAsset:
        """Copy the file into the library and describe it; see the module docstring.

        Cancelling the awaiting task stops the copy at the next chunk and removes the temp
        file before the cancellation propagates.
        """
        loop = asyncio.get_running_loop()
        cancel = _new_cancel_flag()

        def deliver(total: int) -> None:  # on the loop thread
            if not cancel.is_set():
                progress(total)

        def report(total: int) -> None:  # on the worker thread
            loop.call_soon_threadsafe(deliver, total)

        work = asyncio.ensure_future(asyncio.to_thread(self._store, request, cancel, report))
        try:
            # shield: a cancellation must reach us, not the thread's future, so that we can
            # tell the thread to stop and wait for it to clean up.
            stored = await asyncio.shield(work)
        except asyncio.CancelledError:
            cancel.set()
            await asyncio.wait({work})
            if not work.cancelled():
                work.exception()  # retrieved on purpose: the cancellation is what matters
            raise
        return _asset_for(request, stored)

    async def delete(self, asset: MediaAsset) -> None:
        """Remove the asset's object and thumbnail; already gone counts as deleted.

        The caller decides whether another catalogue row still points at the same bytes.
        """
        if asset.checksum:
            await self.delete_object(asset.checksum, asset.format)

    async def delete_object(self, checksum: str, fmt: str | None) -> None:
        """Remove the object with this hash and format, and the hash's thumbnail."""
        paths = (self.object_path(checksum, fmt), self.thumbnail_path(checksum))
        await asyncio.to_thread(_remove_files, paths, self.library_dir)

    async def list_assets(self) -> AsyncIterator[MediaAsset]:
        """Every stored object, as an asset keyed by its sha (the public id is not on disk)."""
        shards = await asyncio.to_thread(_shard_dirs, self.objects_dir)
        for shard in shards:
            for asset in await asyncio.to_thread(self._scan_shard, shard):
                yield asset

    async def aclose(self) -> None:
        """Nothing to release: no connections, no background work."""

    # --- worker-thread side -------------------------------------------------------------------

    def _store(
        self, request: UploadRequest, cancel: threading.Event, report: Callable[[int], None]
    ) -> _Stored:
        if cancel.is_set():  # cancelled while queued for a worker thread
            raise _CopyCancelled
        checksum = _valid_sha256(request.checksum)
        self._sweep_stale_temp_files()
        naming_format = _naming_format(request)
        target = self.object_path(checksum, naming_format)
        if target.exists():
            report(request.size)  # same bytes already stored: nothing to copy
        else:
            self._copy_into_place(request, checksum, target, cancel, report)
        if request.resource_type is not ResourceType.IMAGE:
            return _Stored(target, naming_format, None, None, None)
        probe = probe_image(target)
        if probe is None:  # not decodable by Pillow: still stored, just without size/thumb
            return _Stored(target, naming_format, None, None, None)
        fmt, width, height = probe
        return _Stored(target, fmt, width, height, self._ensure_thumbnail(checksum, target))

    def _copy_into_place(
        self,
        request: UploadRequest,
        checksum: str,
        target: Path,
        cancel: threading.Event,
        report: Callable[[int], None],
    ) -> None:
        try:
            self.objects_dir.mkdir(parents=True, exist_ok=True)
            # The pid in the name lets the next process tell a dead upload's leftovers from
            # a live one's file in progress (two processes may share one library).
            fd, tmp_name = tempfile.mkstemp(
                prefix=f"{_TEMP_PREFIX}{os.getpid()}-", suffix=".tmp", dir=self.objects_dir
            )
        except OSError as exc:
            raise _library_error(exc, self.objects_dir) from exc
        tmp = Path(tmp_name)
        try:
            if request.content is not None:
                # These bytes were hashed when read: `checksum` is theirs by construction.
                _write_content(request.content, fd, cancel, report)
                digest = checksum
            else:
                digest = _copy_and_hash(request.path, fd, cancel, report)
            if digest != checksum:
                raise ContentChanged(request.path)
            _publish(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise _library_error(exc, self.objects_dir) from exc
            raise

    def _ensure_thumbnail(self, checksum: str, original: Path) -> Path | None:
        thumb = self.thumbnail_path(checksum)
        if thumb.exists() or make_thumbnail(original, thumb):
            return thumb
        return None

    def _sweep_stale_temp_files(self) -> None:
        """Remove temp files a crashed upload left behind (once per LocalStorage)."""
        if self._swept:
            return
        self._swept = True
        cutoff = time.time() - STALE_TEMP_AGE
        with contextlib.suppress(OSError):
            for tmp in self.objects_dir.glob(f"{_TEMP_PREFIX}*.tmp"):
                with contextlib.suppress(OSError):
                    if not _owner_alive(tmp.name) or tmp.stat().st_mtime < cutoff:
                        tmp.unlink()
        # Thumbnails are written through temp files too (`.<sha>.png.<pid>-<random>.tmp`, see
        # imaging): a process killed while saving one leaves it behind, so sweep those as well.
        with contextlib.suppress(OSError):
            for tmp in self.thumbs_dir.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    if not _thumb_owner_alive(tmp.name) or tmp.stat().st_mtime < cutoff:
                        tmp.unlink()

    def _scan_shard(self, shard: Path) -> list[MediaAsset]:
        assets = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(shard):
                asset = self._asset_from_object(Path(entry.path))
                if asset is not None:
                    assets.append(asset)
        return assets

    def _asset_from_object(self, path: Path) -> MediaAsset | None:
        sha, _, ext = path.name.partition(".")
        if not _SHA256_HEX.fullmatch(sha):
            return None  # a temp file or something that is not ours
        try:
            stat = path.stat()
        except OSError:
            return None  # removed while we looked
        thumb = self.thumbnail_path(sha)
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        return MediaAsset(
            public_id=sha,
            resource_type=_resource_type_for(ext),
            format=ext or None,
            bytes=stat.st_size,
            url=path.as_uri(),
            checksum=sha,
            thumbnail=str(thumb) if thumb.exists() else None,
            created_at=modified,
            updated_at=modified,
        )


# --- helpers (worker thread) ---------------------------------------------------------------------


def _new_cancel_flag() -> threading.Event:
    """The flag the copy loop checks between chunks (a function, so tests can watch it)."""
    return threading.Event()


def _copy_and_hash(
    src: Path, fd: int, cancel: threading.Event, report: Callable[[int], None]
) -> str:
    """Copy `src` into the open file `fd` (closed on return), returning the sha256 of the bytes."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    total = 0
    try:
        with _open_source(src) as source:
            while count := _read_into(source, view, src):
                if cancel.is_set():
                    raise _CopyCancelled
                chunk = view[:count]
                _write_all(fd, chunk)
                digest.update(chunk)
                total += count
                report(total)
        os.fsync(fd)  # the bytes must be on disk before the rename makes them visible
    finally:
        os.close(fd)
    return digest.hexdigest()


def _write_content(
    content: bytes, fd: int, cancel: threading.Event, report: Callable[[int], None]
) -> None:
    """Write bytes already read (and hashed) into `fd` (closed on return)."""
    view = memoryview(content)
    try:
        for start in range(0, len(view), CHUNK_SIZE):
            if cancel.is_set():
                raise _CopyCancelled
            _write_all(fd, view[start : start + CHUNK_SIZE])
            report(min(len(view), start + CHUNK_SIZE))
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: memoryview) -> None:
    """Write every byte (os.write may write fewer than asked)."""
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _open_source(src: Path) -> io.BufferedReader:
    try:
        return open(src, "rb")
    except OSError as exc:
        raise _source_error(exc, src) from exc


def _read_into(source: io.BufferedReader, view: memoryview, src: Path) -> int:
    try:
        return source.readinto(view)
    except OSError as exc:
        raise _source_error(exc, src) from exc


def _owner_alive(temp_name: str) -> bool:
    """Whether the process named in `.upload-<pid>-….tmp` still runs (unknown counts as alive)."""
    return _pid_alive(temp_name[len(_TEMP_PREFIX) :].split("-", 1)[0])


def _thumb_owner_alive(temp_name: str) -> bool:
    """The same for a thumbnail's `.<sha>.png.<pid>-<random>.tmp`."""
    return _pid_alive(temp_name.removesuffix(".tmp").rsplit(".", 1)[-1].split("-", 1)[0])


def _pid_alive(pid_text: str) -> bool:
    if not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def _publish(tmp: Path, target: Path) -> None:
    """Atomically give the finished temp file its content-addressed name, durably."""
    shard = target.parent
    new_shard = not shard.exists()
    shard.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
    _fsync_dir(shard)  # makes the rename itself survive a power cut
    if new_shard:
        _fsync_dir(shard.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_files(paths: tuple[Path, ...], library_dir: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise PermanentError(
                f"Could not delete {path} from the library {library_dir} "
                f"({exc.strerror or exc}); check the folder's permissions."
            ) from exc


def _shard_dirs(objects_dir: Path) -> list[Path]:
    try:
        return sorted(p for p in objects_dir.iterdir() if p.is_dir() and len(p.name) == 2)
    except FileNotFoundError:
        return []


# --- small pure helpers -------------------------------------------------------------------------


def _valid_sha256(checksum: str) -> str:
    # The hash becomes a path component: anything but 64 hex digits could escape the folder.
    sha = checksum.strip().lower()
    if not _SHA256_HEX.fullmatch(sha):
        raise PermanentError(f"{checksum!r} is not a sha256 checksum (64 hex digits).")
    return sha


def _valid_format(fmt: str) -> str:
    # Formats can come back from the catalogue (hand-editable): never let one name a path.
    if not _FORMAT.fullmatch(fmt):
        raise PermanentError(f"{fmt!r} is not a file format media-tui can store (a-z, 0-9).")
    return fmt


def _extension(path: Path) -> str | None:
    """The file's extension, lower case, letters and digits only (it ends up in a path)."""
    ext = re.sub(r"[^a-z0-9]", "", path.suffix.lower())[:16]
    return ext or None


def _naming_format(request: UploadRequest) -> str | None:
    """The extension the object is stored under: what the bytes are, for images Pillow reads."""
    if request.resource_type is ResourceType.IMAGE:
        source = request.path if request.content is None else io.BytesIO(request.content)
        probe = probe_image(source)
        if probe is not None:
            return probe[0]
    return _extension(request.path)


def _resource_type_for(ext: str) -> ResourceType:
    if ext in _IMAGE_EXTENSIONS:
        return ResourceType.IMAGE
    if ext in _VIDEO_EXTENSIONS:
        return ResourceType.VIDEO
    return ResourceType.RAW


def _asset_for(request: UploadRequest, stored: _Stored) -> MediaAsset:
    now = utcnow()
    return MediaAsset(
        public_id=request.public_id,
        resource_type=request.resource_type,
        format=stored.format,
        bytes=request.size,
        width=stored.width,
        height=stored.height,
        url=stored.path.as_uri(),
        folder=request.folder,
        tags=request.tags,
        checksum=request.checksum.strip().lower(),
        original_filename=storable_name(request.path.name),  # a catalogue needs valid UTF-8
        thumbnail=str(stored.thumbnail) if stored.thumbnail else None,
        created_at=now,
        updated_at=now,
    )


def _library_error(exc: OSError, where: Path) -> PermanentError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return PermanentError(
            f"The library disk is full ({where}); free some space and run the upload again."
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermanentError(
            f"media-tui may not write to the library folder ({where}); check its permissions "
            "and run the upload again."
        )
    return PermanentError(
        f"Could not write to the library folder ({where}): {exc.strerror or exc}."
    )


def _source_error(exc: OSError, src: Path) -> PermanentError:
    if isinstance(exc, FileNotFoundError):
        return PermanentError(f"{src} no longer exists; it was moved or deleted before upload.")
    if isinstance(exc, PermissionError):
        return PermanentError(f"media-tui may not read {src}; check the file's permissions.")
    return PermanentError(f"Could not read {src}: {exc.strerror or exc}.")
