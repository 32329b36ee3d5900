"""The notification receiver: Cloudinary webhooks, verified, applied to the catalogue once.

`media-tui webhook` serves this on Starlette under uvicorn. For each POST it:

1. caps the body (`MAX_BODY`, 413 beyond it), before reading more than that;
2. checks `X-Cld-Timestamp` is within two hours in the past and five minutes in the future
   (401 otherwise: an old notification replayed, or a wrong clock);
3. checks `X-Cld-Signature` = sha1 or sha256 of raw body + timestamp + API secret (reference
   cloudinary.md §8), compared in constant time (401 when it does not match: a tampered body, a
   wrong secret);
4. claims the signature in a small SQLite table in the library, so the same notification
   delivered twice (or replayed by someone who captured it) has one effect (409 the second
   time), across restarts too;
5. applies it (`sync.apply_notification`), one at a time, ordered by the asset's version against
   the catalogue and against the versions deletes ended (a second table in the same file, so a
   late upload redelivered after a restart still finds its delete), and answers 200 — also when
   it was ignored as older than what is known — or 503 when the catalogue could not be reached:
   the claim is released, so Cloudinary's redelivery can try again.

`GET /healthz` answers 200 for probes. The log says what was applied; never the secret, the
signature or the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from media_tui.backends.base import Catalog
from media_tui.errors import ConfigError, MediaError, PermanentError, TransientError
from media_tui.safe_text import safe_text
from media_tui.sync import Applied, AssetReader, NotificationTombstones, apply_notification

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Cloudinary's notifications are a few KiB; a bulk delete stays far below
MAX_AGE = 2 * 60 * 60  # seconds: the SDK's own `valid_for` default
MAX_AHEAD = 5 * 60  # seconds: clock skew allowed for a timestamp in the future
APPLY_TIMEOUT = 20.0  # seconds before answering 503 and letting Cloudinary redeliver


class Refused(Exception):
    """A notification turned away: the HTTP status and the one-sentence reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature_for(body: str, timestamp: str, secret: str, algorithm: str = "sha1") -> str:
    """Cloudinary's notification signature: a plain hash (not an HMAC) of body + timestamp + secret."""
    return hashlib.new(algorithm, (body + timestamp + secret).encode("utf-8")).hexdigest()


def check_timestamp(timestamp: str | None, now: float) -> None:
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit():
        raise Refused(
            401, "the X-Cld-Timestamp header is missing or not a whole number of seconds."
        )
    age = now - int(timestamp)
    if age > MAX_AGE:
        raise Refused(
            401, f"the notification is {age / 3600:.1f} hours old; older than 2 hours is refused."
        )
    if age < -MAX_AHEAD:
        raise Refused(
            401, "the notification's timestamp is in the future; check this machine's clock."
        )


def check_signature(body: str, timestamp: str, signature: str | None, secret: str) -> str:
    """The signature, normalised, if it is body + timestamp + secret's; else Refused (401)."""
    given = (signature or "").strip().lower()
    if not given:
        raise Refused(401, "the X-Cld-Signature header is missing.")
    # Both algorithms are computed and compared, so the time taken says nothing about which
    # one the sender used or how much of the signature matched.
    matches = [
        hmac.compare_digest(given.encode(), signature_for(body, timestamp, secret, name).encode())
        for name in ("sha1", "sha256")
    ]
    if not any(matches):
        raise Refused(
            401,
            "the signature does not match the body; it was altered, or signed with another secret.",
        )
    return given


FORGET_AFTER = MAX_AGE + MAX_AHEAD
"""Seconds a signature or a tombstone is kept: past that, what it guards against is refused
by its timestamp anyway, so nothing that could still be accepted is ever forgotten."""


class SeenNotifications:
    """Signatures already applied, in SQLite beside the library, forgotten after `MAX_AGE`.

    A notification older than that is refused by its timestamp anyway, so nothing that could
    still be accepted is ever forgotten. The same file holds `tombstones`, the versions that
    delete notifications ended, kept as long and for the same reason.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute(
            "create table if not exists seen (signature text primary key, at real not null)"
        )
        self._db.execute(
            "create table if not exists deleted ("
            "public_id text primary key, version integer not null, at real not null)"
        )
        self.tombstones = DeletedVersions(self._db, self._lock, clock)

    def claim(self, signature: str) -> bool:
        """Record the signature; False if it was already there (blocking: run in a thread)."""
        now = self._clock()
        with self._lock:
            self._db.execute("delete from seen where at < ?", (now - FORGET_AFTER,))
            cursor = self._db.execute(
                "insert or ignore into seen (signature, at) values (?, ?)", (signature, now)
            )
            return cursor.rowcount == 1

    def release(self, signature: str) -> None:
        """Forget a claim whose notification could not be applied, so a redelivery can be."""
        with self._lock:
            self._db.execute("delete from seen where signature = ?", (signature,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class DeletedVersions:
    """`NotificationTombstones` in SQLite: the highest version deleted per public id.

    Kept `FORGET_AFTER` seconds after the last delete of that id: an upload notification it
    could make stale is, by then, refused by its timestamp before it is applied. Blocking, like
    `SeenNotifications.claim`: `apply_notification` calls it in a worker thread. A database
    error is a `TransientError`, so the receiver answers 503 and Cloudinary redelivers, rather
    than applying a notification it could not order.
    """

    def __init__(
        self, db: sqlite3.Connection, lock: threading.Lock, clock: Callable[[], float]
    ) -> None:
        self._db = db
        self._lock = lock
        self._clock = clock

    def get(self, public_id: str) -> int | None:
        cutoff = self._clock() - FORGET_AFTER
        try:
            with self._lock:
                row = self._db.execute(
                    "select version from deleted where public_id = ? and at >= ?",
                    (public_id, cutoff),
                ).fetchone()
        except sqlite3.Error as exc:
            raise TransientError(
                f"the record of deleted assets could not be read ({exc})."
            ) from exc
        return None if row is None else int(row[0])

    def record(self, public_id: str, version: int) -> None:
        now = self._clock()
        try:
            with self._lock:
                self._db.execute("delete from deleted where at < ?", (now - FORGET_AFTER,))
                # A delayed delete of an older version never lowers the tombstone; any delete
                # renews how long it is kept, since its own redeliveries may still come.
                self._db.execute(
                    "insert into deleted (public_id, version, at) values (?, ?, ?) "
                    "on conflict (public_id) do update set "
                    "version = max(version, excluded.version), at = excluded.at",
                    (public_id, version, now),
                )
        except sqlite3.Error as exc:
            raise TransientError(
                f"the record of deleted assets could not be written ({exc})."
            ) from exc


@dataclass
class Receiver:
    """Everything a request needs: the secret, the catalogue, and what was already applied."""

    secret: str
    catalog: Catalog
    storage: AssetReader
    seen: SeenNotifications
    clock: Callable[[], float] = time.time
    on_result: Callable[[dict[str, Any]], None] | None = None
    # One notification at a time: each reads the row (and tombstone) and then writes, so two
    # deliveries about one asset applied at once could both pass the version check and the
    # older could land last. Notifications are few; waiting counts against APPLY_TIMEOUT.
    _applying: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    @property
    def tombstones(self) -> NotificationTombstones:
        """What deletes ended, kept beside the seen signatures (so a restart keeps it too)."""
        return self.seen.tombstones

    async def receive(self, request: Request) -> JSONResponse:
        try:
            applied = await self._receive(request)
        except Refused as refused:
            self._report(request, refused.status, refused.reason)
            return JSONResponse({"error": refused.reason}, status_code=refused.status)
        message = applied.describe()
        self._report(request, 200, message, applied)
        return JSONResponse({"result": message})

    async def _receive(self, request: Request) -> Applied:
        raw = await read_capped(request, MAX_BODY)
        timestamp = request.headers.get("x-cld-timestamp")
        check_timestamp(timestamp, self.clock())
        assert timestamp is not None
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "the body is not UTF-8 text.") from None
        key = check_signature(body, timestamp, request.headers.get("x-cld-signature"), self.secret)
        try:
            payload = json.loads(body)
        except ValueError:
            raise Refused(400, "the body is not JSON.") from None
        if not isinstance(payload, dict):
            raise Refused(400, "the body is not a JSON object.")
        if not await asyncio.to_thread(self.seen.claim, key):
            raise Refused(409, "this notification was already applied; a repeat changes nothing.")
        try:
            async with asyncio.timeout(APPLY_TIMEOUT), self._applying:
                return await apply_notification(
                    payload, self.catalog, self.storage, tombstones=self.tombstones
                )
        except PermanentError as exc:
            # Retrying cannot help a payload we cannot use: keep the claim, say why.
            raise Refused(422, f"the notification could not be applied: {exc}") from None
        except (MediaError, TimeoutError) as exc:
            await asyncio.to_thread(self.seen.release, key)
            reason = str(exc) or "the catalogue did not answer in time"
            raise Refused(
                503, f"the catalogue could not be updated ({reason}); redeliver later."
            ) from None

    def _report(
        self, request: Request, status: int, message: str, applied: Applied | None = None
    ) -> None:
        client = request.client.host if request.client else "?"
        level = logging.INFO if status == 200 else logging.WARNING
        log.log(level, "webhook %s from %s: %s", status, client, safe_text(message))
        if self.on_result is not None:
            self.on_result(
                {
                    "status": status,
                    "result": message,
                    "kind": applied.kind if applied else None,
                    "public_ids": list(applied.public_ids) if applied else [],
                }
            )


async def read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over `limit` before reading past it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the body is {int(declared):,} bytes; at most {limit:,} are accepted.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"the body is over {limit:,} bytes; it is refused.")
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(receiver: Receiver, catalog_name: str) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "catalog": catalog_name})

    return Starlette(
        routes=[
            Route("/", receiver.receive, methods=["POST"]),
            Route("/webhook", receiver.receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind before serving, so a taken port is one clear sentence and not a server crash."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}; check --host.") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port."
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(
    app: Starlette,
    sock: socket.socket,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until cancelled, Ctrl-C, or `stop` is set."""
    import uvicorn  # imported here: only the webhook command needs the server

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    watcher: asyncio.Task[None] | None = None
    if stop is not None:

        async def stop_when_asked() -> None:
            await stop.wait()
            server.should_exit = True

        watcher = asyncio.create_task(stop_when_asked())
    try:
        await server.serve(sockets=[sock])
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
