"""Fetching cloud thumbnails (small derived images) into a disk cache, for the grid.

Runs on the thumbnail decoder's worker threads, so a plain synchronous httpx client is right
here: it never touches the event loop. Each URL is fetched once; the file is written
atomically and reused on the next start. Anything that goes wrong means "no thumbnail".
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import httpx

log = logging.getLogger(__name__)
MAX_BYTES = 5_000_000  # a thumbnail; anything bigger is not what we asked for


class RemoteThumbnails:
    """`fetch(url) -> local path or None`, cached under `cache_dir`."""

    def __init__(self, cache_dir: Path, *, timeout: float = 15.0) -> None:
        self.cache_dir = cache_dir
        self._client: httpx.Client | None = None
        self._timeout = timeout
        self._lock = threading.Lock()

    def cached_path(self, url: str) -> Path:
        return self.cache_dir / (hashlib.sha256(url.encode()).hexdigest()[:40] + ".img")

    def fetch(self, url: str) -> Path | None:
        if not url.startswith(("http://", "https://")):
            return None
        target = self.cached_path(url)
        if target.exists():
            return target
        try:
            with self._client_once().stream("GET", url) as response:
                if response.status_code != 200:
                    log.info("thumbnail %s: HTTP %s", url, response.status_code)
                    return None
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_BYTES:
                        return None
            self._write(target, bytes(data))
        except (httpx.HTTPError, OSError) as exc:
            log.info("thumbnail %s: %s", url, exc)
            return None
        return target

    def _client_once(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self._timeout, follow_redirects=True)
            return self._client

    def _write(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
