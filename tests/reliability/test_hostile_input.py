"""Malformed input at every boundary: a clear error for it, and no crash.

The boundaries: realtime frames and change payloads (Supabase), PostgREST and Cloudinary error
bodies that are HTML or empty (a proxy or CDN answered), the config file (truncated TOML,
random bytes), and pasted text (binary junk, NULs, very long lines, 10,000 paths) through
`split_pasted`/`expand` and through the TUI's paste.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual import events
from textual.widgets import Input, Static

from media_tui.backends.base import UploadRequest
from media_tui.backends.cloudinary import CloudinaryStorage
from media_tui.backends.supabase_catalog import SupabaseCatalog
from media_tui.backends.supabase_feed import SupabaseChangeFeed
from media_tui.config import CloudinarySettings, Secret, SupabaseSettings
from media_tui.errors import MediaError, TransferError
from media_tui.model import ConnectionState, MediaAsset, ResourceType
from media_tui.paths import REASON_TOO_LONG, expand, split_pasted
from media_tui.store import MediaStore
from media_tui.ui.app import MediaApp
from media_tui.ui.detail import AssetDetail
from media_tui.ui.prompt import MAX_REJECTED_LINES, PathsField, UploadPrompt
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.media_factory import make_png
from tests.ui.conftest import isolate_app_environment, wait_until

pytestmark = pytest.mark.timeout(120)

SECRET = "Cld!Hostile*Secret7"
SERVICE_KEY = "Sb!Hostile*ServiceKey9"


async def until(condition: Callable[[], bool], limit: float = 20.0) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - the condition spans threads
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), limit)
    except TimeoutError:
        raise AssertionError(f"condition not met within {limit} s") from None


def one_sentence(message: str) -> bool:
    """What every operator-facing error must be: one line, a sentence, of a readable length."""
    return (
        bool(message)
        and "\n" not in message
        and "\r" not in message
        and "Traceback" not in message
        and len(message) < 600
        and message.rstrip().endswith((".", ")", "?"))
    )


# ------------------------------------------------------------------------------------------
# Realtime: garbled frames and payloads


class FeedRunner:
    """A SupabaseChangeFeed into a MediaStore, remembering anything `events()` raised."""

    def __init__(self, emulator: SupabaseEmulator) -> None:
        settings = SupabaseSettings(
            url=emulator.url, key=Secret(emulator.service_key), key_source="test"
        )
        self.catalog = SupabaseCatalog(settings)
        self.feed = SupabaseChangeFeed(
            self.catalog,
            watchdog_interval=0.2,
            realtime_options={"initial_backoff": 0.05, "max_retries": 50},
        )
        self.store = MediaStore()
        self.raised: list[BaseException] = []
        self.resyncs = 0
        self.store.subscribe(self._count)
        self.task: asyncio.Task[None] | None = None

    def _count(self, changes: Any) -> None:
        self.resyncs += bool(changes.reset)

    async def _follow(self) -> None:
        try:
            async for event in self.feed.events():
                self.store.apply(event)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # what the test is about: nothing may get here
            self.raised.append(exc)

    async def start(self) -> None:
        self.task = asyncio.create_task(self._follow())
        await until(lambda: self.store.connection is ConnectionState.LIVE or bool(self.raised))

    async def close(self) -> None:
        await self.feed.aclose()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.catalog.aclose()


@contextlib.asynccontextmanager
async def feed_runner(emulator: SupabaseEmulator) -> AsyncIterator[FeedRunner]:
    runner = FeedRunner(emulator)
    try:
        await runner.start()
        yield runner
    finally:
        await runner.close()


def change(kind: str, record: Any = None, old_record: Any = None, **extra: Any) -> dict[str, Any]:
    """A `postgres_changes` data envelope as the server sends it, around a chosen record."""
    data: dict[str, Any] = {
        "schema": "public",
        "table": "media_assets",
        "commit_timestamp": "2026-01-02T03:04:05.000Z",
        "type": kind,
        "columns": [{"name": "public_id", "type": "text"}],
        "errors": None,
    }
    if record is not None:
        data["record"] = record
    if old_record is not None:
        data["old_record"] = old_record
    data.update(extra)
    return data


def frame(topic: str, event: str, payload: Any, ref: Any = None) -> str:
    return json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref})


HUGE = "h" * 400_000  # under the client's 1 MiB frame limit: it must arrive, and be harmless

# Whole frames no Phoenix server sends: not JSON, JSON of the wrong shape, wrong types.
GARBLED_FRAMES: list[str | bytes | Callable[[str], str]] = [
    "",
    "not json at all",
    "{",
    '{"topic": "realtime:x", "event": "postgres_changes", "payload": {"ids": [1]',  # cut short
    "\x00\x01\x02\x1b[2J\x1b]52;c;ZXZpbA==\x07 junk",
    "null",
    "42",
    '"a string"',
    "[1, 2, 3]",
    "{}",
    "[" * 5000 + "]" * 5000,  # nested deeper than any parser should recurse
    json.dumps({"topic": 5, "event": [], "payload": None, "ref": {}}),
    b"\x00\xff\xfe binary frame \x9b",
    lambda topic: frame(topic, "postgres_changes", "a string"),
    lambda topic: frame(topic, "postgres_changes", {"ids": "x", "data": {}}),
    lambda topic: frame(topic, "postgres_changes", {"ids": [1], "data": None}),
    lambda topic: frame(topic, "system", {"status": 5, "message": ["x"]}),
    lambda topic: frame(topic, "phx_reply", {"status": "ok", "response": 7}, "999999"),
    lambda topic: frame(topic, "presence_diff", {"joins": 1}),
    lambda topic: frame(topic, "broadcast", "x"),
    lambda topic: frame(topic, "no_such_event", {"a": 1}),
]

# `postgres_changes` data that passes the client's envelope check but holds a bad record.
BAD_CHANGES: list[Any] = [
    "not an object",
    {},
    change("INSERT"),  # no record at all
    change("INSERT", {"resource_type": "image"}),  # no public_id
    change("INSERT", {"public_id": None}),
    change("UPDATE", {"format": "png"}),  # no public_id
    change("INSERT", {"public_id": "bad-bytes", "bytes": "lots"}),
    change("INSERT", {"public_id": "bad-digits", "bytes": "9" * 5000}),
    change("INSERT", {"public_id": "bad-width", "width": "wide"}),
    change("INSERT", {"public_id": "bad-tags", "tags": 7}),
    change("INSERT", {"public_id": "bad-created", "created_at": 12}),
    change("INSERT", {"public_id": "bad-updated", "updated_at": "yesterday"}),
    change("INSERT", {"public_id": "bad-type", "resource_type": "hologram"}),
    change("INSERT", {"public_id": "bad-duration", "duration": [1]}),
    change("INSERT", {"public_id": "odd-format", "format": 5, "bytes": 1}),
    change("INSERT", {"public_id": "odd-name", "original_filename": {"a": 1}}),
    change("INSERT", {"public_id": "odd-folder", "folder": [1, 2]}),
    change("INSERT", {"public_id": "odd-url", "url": 3, "thumbnail": 4, "checksum": 5}),
    change("INSERT", {"public_id": "odd-tags", "tags": [1, None, {"x": 1}]}),
    change("INSERT", {"public_id": "odd-time", "created_at": "0001-01-01T00:00:00+23:59"}),
    change("INSERT", {"public_id": "huge", "original_filename": HUGE, "tags": [HUGE]}),
    change("DELETE", old_record={"id": "not a number"}),
    change("DELETE", old_record={"id": None, "public_id": None}),
    change("DELETE", old_record={"id": 1}, commit_timestamp="not a time"),
    change("TRUNCATE"),
    change("*", {"public_id": "star"}),
]

TEXT_FIELDS = ("format", "url", "checksum", "original_filename", "thumbnail")


def assert_well_typed(asset: MediaAsset) -> None:
    """Whatever a hostile row held, what reaches the store has the model's types."""
    assert isinstance(asset.public_id, str)
    assert isinstance(asset.resource_type, ResourceType)
    for name in TEXT_FIELDS:
        value = getattr(asset, name)
        assert value is None or isinstance(value, str), (asset.public_id, name, value)
    assert isinstance(asset.folder, str), (asset.public_id, asset.folder)
    assert all(isinstance(tag, str) for tag in asset.tags), asset.tags
    assert isinstance(asset.bytes, int)
    for stamp in (asset.created_at, asset.updated_at):
        if stamp is not None:
            stamp.isoformat()  # a usable datetime
            assert stamp.utcoffset() is not None


async def test_garbled_realtime_frames_and_payloads_never_stop_the_feed(
    supabase_emulator: SupabaseEmulator,
) -> None:
    """21 garbled frames (not JSON, wrong shapes, a binary frame, deep nesting) and 26 bad change
    payloads (no public_id, wrong types, a 400 KB string, bad deletes) arrive on a live feed:
    nothing raises out of `events()`, the feed stays live, every asset that reaches the store
    has the model's types, and a valid change sent afterwards still arrives."""
    emulator = supabase_emulator
    async with feed_runner(emulator) as runner:
        for message in GARBLED_FRAMES:
            assert await asyncio.to_thread(emulator.send_raw, message) >= 1
        for data in BAD_CHANGES:
            assert await asyncio.to_thread(emulator.send_change_data, data) == 1
        await asyncio.to_thread(
            emulator.write_as_other, "INSERT", {"public_id": "after-garbage", "bytes": 10}
        )
        await until(lambda: "after-garbage" in runner.store.assets or bool(runner.raised))

        assert runner.raised == []
        assert runner.task is not None and not runner.task.done()
        assert runner.store.connection is ConnectionState.LIVE
        assert runner.resyncs == 1, "in-band garbage must not cost a reconnect"
        # Rows that cannot be read as an asset are skipped (the next resync has the real row);
        # a huge string is fine, and tags are read as text whatever they hold.
        assert set(runner.store.assets) == {"after-garbage", "huge", "odd-tags"}
        for asset in runner.store.assets.values():
            assert_well_typed(asset)
        assert runner.store.assets["huge"].original_filename == HUGE
        assert runner.store.assets["odd-tags"].tags == ("1", "None", "{'x': 1}")


async def test_frames_that_break_the_socket_end_in_a_reconnect_and_resync(
    supabase_emulator: SupabaseEmulator,
) -> None:
    """A text frame that is not UTF-8 and a 2 MiB frame (over the client's 1 MiB limit) make
    the client drop the socket: the feed reports reconnecting, comes back live with a resync,
    nothing raises out of `events()`, and a change written afterwards still arrives."""
    emulator = supabase_emulator
    async with feed_runner(emulator) as runner:
        states: list[ConnectionState] = []

        def note_state(changes: Any) -> None:
            if changes.connection:
                states.append(runner.store.connection)

        unsubscribe = runner.store.subscribe(note_state)
        for breaker in ("bad utf-8 \udcff\udcfe", "x" * (2 * 1024 * 1024)):
            states.clear()
            before = runner.resyncs
            assert await asyncio.to_thread(emulator.send_raw, breaker) == 1
            await until(lambda: runner.resyncs > before or bool(runner.raised))  # noqa: B023
            assert runner.raised == []
            assert ConnectionState.RECONNECTING in states
            assert runner.store.connection is ConnectionState.LIVE
        unsubscribe()
        await asyncio.to_thread(emulator.write_as_other, "INSERT", {"public_id": "after-reconnect"})
        await until(lambda: "after-reconnect" in runner.store.assets)
        assert runner.raised == []


# ------------------------------------------------------------------------------------------
# Error bodies from something in front of the API: HTML pages, empty bodies, wrong shapes

NGINX_502 = b"""<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""
CDN_504 = (
    b"<!DOCTYPE html>\n<!--[if lt IE 7]> <html class='no-js ie6'> <![endif]-->\n<html><head>"
    b"<title>example.com | 504: Gateway time-out</title><meta charset='UTF-8' />"
    + b"<style>body{margin:0}</style>" * 200
    + b"</head><body><h1>Gateway time-out</h1></body></html>"
)
NOT_FOUND_HTML = (
    b"<!doctype html><html><head><title>404 Not Found</title></head><body>nope</body></html>"
)
PORTAL_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in to the hotel Wi-Fi</title></head></html>"
)
HOSTILE_TEXT = b"\x1b[2J\x1b]52;c;ZXZpbA==\x07" + b"A" * 50_000 + b"\r\nsecond line\x9b"

# (status, content type, body, transient?) as a proxy, CDN or captive portal might answer.
ERROR_BODIES = [
    pytest.param(502, "text/html", NGINX_502, True, id="502-nginx-html"),
    pytest.param(504, "text/html", CDN_504, True, id="504-cdn-html"),
    pytest.param(500, "text/plain", b"", True, id="500-empty"),
    pytest.param(500, "text/plain", HOSTILE_TEXT, True, id="500-control-chars-50kb"),
    pytest.param(404, "text/html", NOT_FOUND_HTML, False, id="404-html"),
    pytest.param(
        401,
        "text/html",
        b"<html><body>401 Authorization Required</body></html>",
        False,
        id="401-html",
    ),
    pytest.param(403, "text/plain", b"Forbidden", False, id="403-text"),
    pytest.param(
        400,
        "application/json",
        b'{"error": "just a string", "message": 5}',
        False,
        id="400-wrong-json",
    ),
    pytest.param(400, "application/json", b"[]", False, id="400-json-array"),
]


def assert_clear_error(exc: BaseException, transient: bool) -> None:
    """One sentence, classified, with no markup, no raw controls and no secret in it."""
    assert isinstance(exc, TransferError), repr(exc)
    message = str(exc)
    assert one_sentence(message), message
    assert exc.transient is transient, message
    lowered = message.lower()
    assert "<html" not in lowered and "<!doctype" not in lowered and "<head" not in lowered
    assert "\x1b" not in message and "\x9b" not in message
    assert SECRET not in message and SERVICE_KEY not in message


class ScriptedServer:
    """A stand-in for a proxy in front of an API: every request gets the answer it is set to."""

    def __init__(self) -> None:
        self.answer: tuple[int, str, bytes] = (200, "application/json", b"[]")
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append(f"{self.command} {self.path}")
                status, content_type, body = owner.answer
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def proxy() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.mark.parametrize(("status", "content_type", "body", "transient"), ERROR_BODIES)
async def test_postgrest_error_bodies_that_are_not_postgrest_json_read_as_one_sentence(
    proxy: ScriptedServer, status: int, content_type: str, body: bytes, transient: bool
) -> None:
    """A proxy's HTML page, an empty body or JSON of the wrong shape instead of PostgREST's
    error object: listing, writing and deleting each fail with one clear sentence, transient
    for 5xx and permanent for 4xx, with no markup, control character or key in it."""
    proxy.answer = (status, content_type, body)
    catalog = SupabaseCatalog(
        SupabaseSettings(url=proxy.url, key=Secret(SERVICE_KEY), key_source="test")
    )
    try:
        for call in (
            lambda: catalog.page(limit=5),
            lambda: catalog.upsert(MediaAsset(public_id="a/b", bytes=1)),
            lambda: catalog.delete("a/b"),
        ):
            with pytest.raises(MediaError) as caught:
                await call()
            assert_clear_error(caught.value, transient)
            assert str(status) in str(caught.value) or status == 401  # "refused the key"
    finally:
        await catalog.aclose()
    assert len(proxy.requests) == 3


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/html", PORTAL_HTML), ("text/html", NGINX_502), ("text/plain", b"ok")],
)
async def test_a_200_page_instead_of_postgrest_is_one_sentence_not_a_crash(
    proxy: ScriptedServer, content_type: str, body: bytes
) -> None:
    """A captive portal or a SUPABASE_URL that names a web site answers 200 with a page:
    reading the catalogue fails with one sentence pointing at SUPABASE_URL (it is not read
    as rows, one character each), and the change feed's resync reports it instead of raising
    out of `events()`."""
    proxy.answer = (200, content_type, body)
    catalog = SupabaseCatalog(
        SupabaseSettings(url=proxy.url, key=Secret(SERVICE_KEY), key_source="test")
    )
    try:
        for call in (lambda: catalog.page(limit=5), catalog.snapshot):
            with pytest.raises(MediaError) as caught:
                await call()
            assert_clear_error(caught.value, False)
            assert "SUPABASE_URL" in str(caught.value)
    finally:
        await catalog.aclose()


def cloudinary_with(answer: tuple[int, str, bytes]) -> CloudinaryStorage:
    status, content_type, body = answer

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": content_type}, content=body)

    settings = CloudinarySettings(cloud_name="demo", api_key="1234", api_secret=Secret(SECRET))
    return CloudinaryStorage(settings, transport=httpx.MockTransport(respond))


@pytest.mark.parametrize(("status", "content_type", "body", "transient"), ERROR_BODIES)
async def test_cloudinary_error_bodies_that_are_not_cloudinary_json_read_as_one_sentence(
    tmp_path: Path, status: int, content_type: str, body: bytes, transient: bool
) -> None:
    """The same bodies from Cloudinary's side (its `{"error": {"message"}}` missing): upload,
    delete, listing and ping each fail with one sentence that names the status and, for an
    HTML page, what its title says — never the page's markup, a control character or the
    API secret — transient for 5xx and permanent for 4xx."""
    path = make_png(tmp_path / "a.png", seed=1)
    storage = cloudinary_with((status, content_type, body))
    request = UploadRequest(
        path=path,
        public_id="a",
        resource_type=ResourceType.IMAGE,
        size=path.stat().st_size,
        checksum="c" * 64,
    )

    async def listing() -> None:
        async for _ in storage.list_assets():
            pass

    try:
        for call in (
            lambda: storage.upload(request, lambda sent: None),
            lambda: storage.delete(MediaAsset(public_id="a")),
            listing,
            storage.ping,
        ):
            with pytest.raises(MediaError) as caught:
                await call()
            assert_clear_error(caught.value, transient)
            assert str(status) in str(caught.value) or status == 401
            if b"<title>" in body:
                title = re.search(rb"<title>(.*?)</title>", body)
                assert title is not None
                assert title.group(1).decode() in str(caught.value)
    finally:
        await storage.aclose()


@pytest.mark.parametrize(
    "body", [PORTAL_HTML, b"", b"[1, 2]"], ids=["portal-html", "empty", "json-array"]
)
async def test_a_200_cloudinary_answer_that_is_not_an_asset_is_one_sentence(
    tmp_path: Path, body: bytes
) -> None:
    """A 200 whose body is a captive portal's page, empty, or JSON of another shape: the upload
    fails with one clear sentence (no crash, no markup), never counts as uploaded."""
    path = make_png(tmp_path / "a.png", seed=2)
    storage = cloudinary_with((200, "text/html", body))
    request = UploadRequest(
        path=path,
        public_id="a",
        resource_type=ResourceType.IMAGE,
        size=path.stat().st_size,
        checksum="c" * 64,
    )
    try:
        with pytest.raises(MediaError) as caught:
            await storage.upload(request, lambda sent: None)
        assert isinstance(caught.value, TransferError)
        assert one_sentence(str(caught.value)), str(caught.value)
        assert "<html" not in str(caught.value).lower()
    finally:
        await storage.aclose()


# ------------------------------------------------------------------------------------------
# The config file: truncated, binary


GOOD_CONFIG = (
    'library = "/tmp/unused"\n'
    "[cloudinary]\n"
    f'url = "cloudinary://1234:{SECRET}@demo"\n'
    "[supabase]\n"
    'url = "https://example.supabase.co"\n'
    f'key = "{SERVICE_KEY}"\n'
).encode()


def bad_configs() -> dict[str, bytes]:
    rng = random.Random(7)
    return {
        "half of a valid file": GOOD_CONFIG[: len(GOOD_CONFIG) // 2],
        "cut inside the secret": GOOD_CONFIG[: GOOD_CONFIG.index(SECRET.encode()) + 4],
        "random bytes": rng.randbytes(4096),
        "UTF-8 with NULs and controls": b'library = "a\x00b"\n\x1b[2J[cloudinary\x00]\n',
        "a UTF-16 file": GOOD_CONFIG.decode().encode("utf-16"),
        "a section that is a value": b'cloudinary = "yes"\n',
    }


def cli(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "media_tui", *args],
        capture_output=True,
        env=env,
        timeout=60,
        **kw,
    )


def base_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDINARY_", "SUPABASE_", "MEDIA_TUI_", "NEXT_PUBLIC_SUPABASE"))
    }
    env["MEDIA_TUI_CONFIG"] = os.devnull
    env.update(extra)
    return env


def test_a_truncated_or_binary_config_file_is_exit_2_with_one_sentence(tmp_path: Path) -> None:
    """Six broken config files (half a TOML file, cut inside the secret, 4 KiB of random bytes,
    NULs and ESC, UTF-16, a section that is a string), each through `ls` and `doctor --json`,
    and the first two also through `upload`, the TUI's default command and plain `doctor`:
    exit 2, one sentence naming the file, no traceback, no secret, no raw control character."""
    photo = make_png(tmp_path / "p.png", seed=3)
    for number, (label, content) in enumerate(bad_configs().items()):
        config = tmp_path / f"config-{number}.toml"
        config.write_bytes(content)
        env = base_env(MEDIA_TUI_CONFIG=str(config), MEDIA_TUI_LIBRARY=str(tmp_path / "lib"))
        commands: list[list[str]] = [["ls"], ["doctor", "--json"]]
        if number < 2:  # the same loading code: two files are enough for the other commands
            commands += [["upload", str(photo)], [], ["doctor"]]
        for args in commands:
            result = cli(args, env, stdin=subprocess.DEVNULL)
            out = (result.stdout + result.stderr).decode("utf-8")
            assert result.returncode == 2, (label, args, out)
            assert "Traceback" not in out, (label, args, out)
            assert SECRET not in out and SERVICE_KEY not in out, (label, args, out)
            assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", out), (label, args, out)
            if args and args[0] == "doctor":
                (line,) = result.stdout.decode().splitlines()
                assert "config" in line and str(config) in line
                if "--json" in args:
                    assert json.loads(line)["status"] == "fail"
            else:
                assert result.stdout == b""
                (line,) = result.stderr.decode().splitlines()
                assert line.startswith("media-tui: ") and str(config) in line, (label, line)
                assert one_sentence(line), line
    assert not (tmp_path / "lib").exists() or not any((tmp_path / "lib").iterdir())


# ------------------------------------------------------------------------------------------
# Pastes of junk


def junk_lines(rng: random.Random, count: int) -> list[str]:
    """Random bytes as a terminal would paste them: decoded with surrogateescape."""
    return [
        rng.randbytes(rng.randrange(1, 200)).decode("utf-8", "surrogateescape")
        for _ in range(count)
    ]


def test_pasted_binary_junk_gets_a_reason_per_input_and_valid_files_still_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random bytes (surrogate-escaped), NULs, a 1 MB line, a 300-character name, a 5,000-deep
    path and 10,000 paths of which 3 are real photos, through `split_pasted` and `expand`: no
    exception, every input either resolves to one of the real files or is refused with its own
    one-sentence reason, and the real files are found."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a junk "~" must not walk the real home
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    photos = [make_png(tmp_path / f"real {i}.png", seed=i) for i in range(3)]
    rng = random.Random(11)
    lines = junk_lines(rng, 300)
    lines += ["\x00", "a\x00b.png", str(photos[0]) + "\x00", "\x00" * 1000]
    lines += ["x" * 1_000_000, "n" * 300 + ".png", "/".join(["d"] * 5000)]
    lines += ["\x1b[2J\x1b]52;c;ZXZpbA==\x07.png", "\u202egnp.exe", "file://host/x.png", "~\udcff"]
    lines += [str(tmp_path / f"missing-{i}.png") for i in range(10_000 - len(lines) - 3)]
    lines += [str(p) for p in photos]
    assert len(lines) == 10_000
    text = "\n".join(lines)

    inputs = split_pasted(text, cwd=cwd)
    assert inputs, "something must come out of 10,000 lines"
    result = expand(inputs, cwd=cwd)
    assert {f.path for f in result.files} == {p.resolve() for p in photos}
    rejected = {r.input for r in result.rejected}
    for raw in inputs:
        assert raw in rejected or Path(raw) in photos, repr(raw[:80])
    for item in result.rejected:
        assert item.reason and "\n" not in item.reason and ";" in item.reason, item.reason
    too_long = [r for r in result.rejected if r.input.startswith("x" * 1000)]
    assert [r.reason for r in too_long] == [REASON_TOO_LONG]

    # Straight to `expand`, as the CLI's arguments arrive: the same guarantees.
    direct = expand(lines, cwd=cwd)
    assert {f.path for f in direct.files} == {p.resolve() for p in photos}
    assert len(direct.rejected) == len(lines) - len(photos)
    assert [r.input for r in direct.rejected] == [raw for raw in lines if Path(raw) not in photos]


@pytest.fixture
def tui_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`MediaApp()` reads the environment: a fresh library, no config file, no cloud settings."""
    return isolate_app_environment(tmp_path, monkeypatch)


async def test_the_tui_shows_garbled_rows_without_crashing(
    tui_env: Path, monkeypatch: pytest.MonkeyPatch, supabase_emulator: SupabaseEmulator
) -> None:
    """The same garbled frames and bad records reach a running TUI on the Supabase catalogue:
    the app keeps running, the grid draws every asset that got in, the detail view of each
    opens, and a valid row sent afterwards appears in the grid."""
    emulator = supabase_emulator
    monkeypatch.setenv("SUPABASE_URL", emulator.url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", emulator.service_key)
    from tests.reliability.test_hostile_names import screen_check

    app = MediaApp(thumbnails=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.store.connection is ConnectionState.LIVE)
        for message in GARBLED_FRAMES:
            await asyncio.to_thread(emulator.send_raw, message)
        for data in BAD_CHANGES:
            await asyncio.to_thread(emulator.send_change_data, data)
        await asyncio.to_thread(emulator.write_as_other, "INSERT", {"public_id": "after-garbage"})
        await wait_for(pilot, lambda: app.view.index_of("after-garbage") is not None)
        assert app.store.connection is ConnectionState.LIVE
        await pilot.pause(0.1)
        screen_check(app, "grid")  # every visible card drawn
        for public_id in list(app.store.assets):
            assert_well_typed(app.store.assets[public_id])
            app.push_screen(AssetDetail(app.store.assets[public_id], app.thumbs))
            # (A 400 KB name fills the whole dialog, so its "Public id" row may be off screen.)
            await wait_for(pilot, lambda: bool(app.screen.query("#detail-meta")))
            await pilot.pause(0.05)
            screen_check(app, f"detail of {public_id[:40]!r}")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, AssetDetail))
        assert app.is_running


async def wait_for(pilot: Any, condition: Callable[[], bool], limit: float = 20.0) -> None:
    await wait_until(pilot, condition, limit)


async def test_pasting_junk_into_the_tui_shows_reasons_and_uploads_the_valid_files(
    tui_env: Path, tmp_path: Path
) -> None:
    """A paste of binary junk, NULs, escape sequences, a 1 MB line and 2,000 missing paths
    around two real photos, dropped on the main screen and then pasted again into the open
    prompt, and an OSC 52 sequence pasted into the Tags field: the prompt lists refused inputs
    with reasons and "… and N more", the screen never holds a control character, Enter uploads
    exactly the two photos (tagged, without the ESC), and the app runs on."""
    from tests.reliability.test_hostile_names import screen_check

    photos = [make_png(tmp_path / f"good {i}.png", seed=40 + i) for i in range(2)]
    rng = random.Random(5)
    junk = junk_lines(rng, 50)
    junk += ["\x00", "nul\x00.png", "\x1b[2J\x1b]52;c;ZXZpbA==\x07", "x" * 1_000_000]
    junk += [str(tmp_path / f"missing-{i}.png") for i in range(2_000)]
    app = MediaApp(thumbnails=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, app.ready.is_set)
        app.post_message(events.Paste("\n".join([*junk[:30], str(photos[0])])))
        await wait_for(pilot, lambda: isinstance(app.screen, UploadPrompt))
        prompt = app.screen
        assert isinstance(prompt, UploadPrompt)
        await wait_for(pilot, lambda: "1 file " in screen_check(app, "prompt"), 30)
        field = prompt.query_one(PathsField)
        field.post_message(events.Paste("\n" + "\n".join([*junk[30:], str(photos[1])])))
        await wait_for(pilot, lambda: "2 files" in screen_check(app, "prompt"), 30)
        assert "✗" in screen_check(app, "prompt")
        preview = str(prompt.query_one("#preview", Static).content)
        assert preview.count("✗") == MAX_REJECTED_LINES and "more" in preview, preview
        tags = prompt.query_one("#tags", Input)
        tags.focus()
        tags.post_message(events.Paste("\x1b]52;c;ZXZpbA==\x07holiday\u202e\nsecond line"))
        await wait_for(pilot, lambda: "holiday" in tags.value)
        assert "\x1b" not in tags.value and "second" not in tags.value
        screen_check(app, "tags field")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, UploadPrompt), 30)
        await wait_for(
            pilot,
            lambda: {"good_0", "good_1"} <= set(app.store.assets) and not app.store.active_jobs(),
            30,
        )
        assert set(app.store.assets) == {"good_0", "good_1"}
        assert all(len(a.tags) == 1 and "holiday" in a.tags[0] for a in app.store.assets.values())
        screen_check(app, "grid after upload")
        assert app.is_running


def test_a_stray_quote_above_a_path_does_not_swallow_it(tmp_path: Path) -> None:
    """A pasted line with an unbalanced quote used to be shell-joined with the lines below it
    until the quotes balanced, eating an existing path on the next line: the file was silently
    not uploaded. Each existing path line now stays itself; the junk line gets its reason."""
    photo = make_png(tmp_path / "holiday photo.png", seed=9)
    text = f"it's a note\n{photo}\n'another stray quote"
    inputs = split_pasted(text, cwd=tmp_path)
    assert str(photo) in inputs
    result = expand(inputs, cwd=tmp_path)
    assert [f.path for f in result.files] == [photo.resolve()]
    assert result.rejected and all(r.reason for r in result.rejected)
