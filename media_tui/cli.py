"""The `media-tui` command: the TUI by default, and headless subcommands over the same pipeline.

Exit codes (DESIGN §3): 0 all done, 1 some item failed, 2 usage or configuration error. Errors
are one sentence on stderr; a traceback only ever goes to the log file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from logging.handlers import RotatingFileHandler
from typing import Any

from media_tui import __version__
from media_tui.backends.factory import open_backends
from media_tui.config import Settings, load_settings
from media_tui.console import UploadReporter, discard_stdout, emit_json, human_size
from media_tui.doctor import run_doctor
from media_tui.errors import ConfigError, MediaError, UsageError
from media_tui.journal import Journal
from media_tui.model import MediaAsset
from media_tui.operations import catalogue_rows, delete_asset
from media_tui.paths import expand
from media_tui.safe_text import safe_text
from media_tui.schema import schema_sql
from media_tui.store import MediaStore
from media_tui.sync import reconcile
from media_tui.sync_console import SyncReporter, WebhookReporter
from media_tui.uploads import UploadQueue

log = logging.getLogger("media_tui")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On subcommands the defaults are suppressed so `media-tui --library L ls` and
    # `media-tui ls --library L` both work without the second erasing the first.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--library", metavar="DIR", default=default, help="local library folder")
    parser.add_argument(
        "--storage", choices=("local", "cloudinary"), default=default, help="where files go"
    )
    parser.add_argument(
        "--catalog",
        choices=("local", "supabase"),
        default=default,
        help="where the catalogue lives",
    )
    parser.add_argument(
        "--json", action="store_true", default=default, help="one JSON object per line"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="media-tui",
        description="A terminal media manager: a live library grid, uploads with progress, a catalogue that stays in sync.",
    )
    parser.add_argument("--version", action="version", version=f"media-tui {__version__}")
    _common_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    upload = commands.add_parser("upload", help="upload files or folders without the TUI")
    upload.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders, globs or file:// URIs"
    )
    upload.add_argument("--folder", default="", help="put the uploads in this folder")
    upload.add_argument("--tag", action="append", default=[], help="tag every upload (repeatable)")
    upload.add_argument(
        "--concurrency", type=int, default=None, help="parallel uploads (default 4)"
    )
    _common_options(upload, suppress=True)

    ls = commands.add_parser("ls", help="list the catalogue")
    ls.add_argument("--folder", default=None, help="only this folder")
    ls.add_argument("--limit", type=int, default=None, help="at most N assets")
    _common_options(ls, suppress=True)

    rm = commands.add_parser("rm", help="delete assets from storage and catalogue")
    rm.add_argument("public_ids", nargs="+", metavar="PUBLIC_ID")
    _common_options(rm, suppress=True)

    doctor = commands.add_parser("doctor", help="check configuration and connectivity")
    _common_options(doctor, suppress=True)

    sync = commands.add_parser(
        "sync", help="reconcile storage into the catalogue (what a missed webhook lost)"
    )
    sync.add_argument(
        "--prune",
        action="store_true",
        help="also delete catalogue rows whose asset is gone from storage",
    )
    _common_options(sync, suppress=True)

    webhook = commands.add_parser(
        "webhook", help="receive Cloudinary notifications and apply them to the catalogue"
    )
    webhook.add_argument("--host", default="127.0.0.1", help="address to listen on")
    webhook.add_argument("--port", type=int, default=8787, help="port to listen on")
    _common_options(webhook, suppress=True)

    schema = commands.add_parser("schema", help="print the SQL that sets up the Supabase table")
    schema.add_argument("--table", default=None, help="table name (default: the configured one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    json_mode = bool(getattr(args, "json", False))
    try:
        if args.command == "doctor":
            return asyncio.run(run_doctor(_flags(args), json_mode=json_mode))
        if args.command == "schema":
            return _schema(args)
        _check_text_arguments(args)
        settings = load_settings(_flags(args))
        _setup_logging(settings)
        if args.command is None:
            return _run_tui(settings)
        command = {
            "upload": _upload,
            "ls": _ls,
            "rm": _rm,
            "sync": _sync,
            "webhook": _webhook,
        }[args.command]
        return asyncio.run(command(settings, args))
    except (ConfigError, UsageError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except MediaError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error(
            "interrupted; unfinished uploads resume the next time media-tui starts on this library."
        )
        return 130
    except Exception as exc:  # the last line of defence: no traceback for users
        log.exception("unexpected error")
        _error(
            f"unexpected error ({type(exc).__name__}); details are in the log file. Please report it."
        )
        return EXIT_FAILED


def _schema(args: argparse.Namespace) -> int:
    # Offline and credential-free: the settings are read only for the table name, with local
    # storage and catalogue forced so missing Cloudinary or Supabase keys are no obstacle.
    table = args.table
    if table is None:
        table = load_settings({**_flags(args), "storage": "local", "catalog": "local"}).table
    sys.stdout.write(schema_sql(table))
    return EXIT_OK


def _check_text_arguments(args: argparse.Namespace) -> None:
    """Refuse ids, tags and folders holding bytes that are not UTF-8 (`rm $'\\xff'`).

    Python keeps such argv bytes as lone surrogates, which no catalogue query or row can
    carry: they failed deep inside with UnicodeEncodeError ("unexpected error … Please report
    it"), for every file of an upload with such a --tag. File paths are exempt: they are
    file names, and a file's name may be any bytes.
    """
    texts: list[str]
    name, texts = {
        "upload": ("--tag", getattr(args, "tag", [])),
        "rm": ("PUBLIC_ID", getattr(args, "public_ids", [])),
        "ls": ("--folder", [args.folder] if getattr(args, "folder", None) else []),
    }.get(args.command, ("", []))
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"the {name} {safe_text(text)!r} holds bytes that are not UTF-8 text; type it as text."
            ) from None


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        name: getattr(args, name, None) for name in ("library", "storage", "catalog", "concurrency")
    }


def _error(message: str) -> None:
    sys.stderr.write(f"media-tui: {safe_text(message)}\n")


def _setup_logging(settings: Settings) -> None:
    """Log to a file in the library; the terminal only ever sees one-sentence errors."""
    if log.handlers:
        return
    try:
        settings.library.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(
            settings.library / "media-tui.log", maxBytes=2_000_000, backupCount=2, encoding="utf-8"
        )
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _run_tui(settings: Settings) -> int:
    from media_tui.ui.app import run_app  # Textual loads only when the TUI runs

    return run_app(settings)


async def _upload(settings: Settings, args: argparse.Namespace) -> int:
    expanded = await asyncio.to_thread(expand, args.paths)
    backends = open_backends(settings)
    store = MediaStore()
    queue = UploadQueue(
        store,
        backends.storage,
        backends.catalog,
        Journal(settings.journal_dir),
        concurrency=settings.concurrency,
    )
    try:
        with UploadReporter(store, json_mode=args.json) as reporter:
            reporter.rejected(expanded.rejected)
            await queue.start()
            await queue.enqueue(expanded.files, folder=args.folder, tags=args.tag)
            await queue.wait_idle()
    finally:
        await queue.aclose()
        await backends.aclose()
    if not args.json and not sys.stdout.isatty():
        sys.stderr.write(f"media-tui: {reporter.summary()}\n")
    return EXIT_FAILED if reporter.failed else EXIT_OK


async def _ls(settings: Settings, args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}.")
    backends = open_backends(settings)
    try:
        async for asset in catalogue_rows(backends.catalog, folder=args.folder, limit=args.limit):
            if args.json:
                emit_json(asset.to_json())
            else:
                sys.stdout.write(_asset_line(asset) + "\n")
    finally:
        await backends.aclose()
    return EXIT_OK


def _asset_line(asset: MediaAsset) -> str:
    dims = f"{asset.width}x{asset.height}" if asset.width and asset.height else "-"
    created = asset.created_at.strftime("%Y-%m-%d %H:%M") if asset.created_at else "-"
    return "  ".join(
        [
            safe_text(asset.public_id),
            asset.resource_type.value,
            safe_text(asset.format or "-"),
            dims,
            human_size(asset.bytes),
            created,
        ]
    )


async def _rm(settings: Settings, args: argparse.Namespace) -> int:
    backends = open_backends(settings)
    store = MediaStore()
    failed = 0
    try:
        for public_id in args.public_ids:
            try:
                asset = await delete_asset(store, backends.storage, backends.catalog, public_id)
            except MediaError as exc:
                failed += 1
                _report_rm(args.json, public_id, "failed", str(exc))
            else:
                _report_rm(args.json, asset.public_id, "deleted", None)
    finally:
        await backends.aclose()
    return EXIT_FAILED if failed else EXIT_OK


async def _sync(settings: Settings, args: argparse.Namespace) -> int:
    backends = open_backends(settings)
    try:
        with SyncReporter(json_mode=args.json) as reporter:
            report = await reconcile(
                backends.storage, backends.catalog, prune=args.prune, progress=reporter
            )
        reporter.finish(report)
    finally:
        await backends.aclose()
    return EXIT_FAILED if report.failed else EXIT_OK


async def _webhook(settings: Settings, args: argparse.Namespace) -> int:
    from media_tui.backends.cloudinary import CloudinaryStorage
    from media_tui.webhook import Receiver, SeenNotifications, build_app, listening_socket, serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}.")
    if settings.cloudinary is None:
        raise ConfigError(
            "the webhook checks Cloudinary's signatures with your API secret: set CLOUDINARY_URL "
            "(or CLOUDINARY_CLOUD_NAME, CLOUDINARY_API_KEY and CLOUDINARY_API_SECRET)."
        )
    sock = listening_socket(args.host, args.port)
    backends = open_backends(replace(settings, storage="cloudinary"))
    seen = SeenNotifications(settings.library / "webhook-seen.sqlite3")
    storage = backends.storage
    assert isinstance(storage, CloudinaryStorage)
    receiver = Receiver(
        secret=settings.cloudinary.api_secret.value,
        catalog=backends.catalog,
        storage=storage,
        seen=seen,
        on_result=WebhookReporter(json_mode=args.json),
    )
    host, port = sock.getsockname()[:2]
    sys.stderr.write(
        f"media-tui: receiving Cloudinary notifications on http://{host}:{port}/ into the "
        f"{backends.catalog.name} catalogue; Ctrl-C stops.\n"
    )
    try:
        await serve(build_app(receiver, backends.catalog.name), sock)
    finally:
        seen.close()
        sock.close()
        await backends.aclose()
    return EXIT_OK


def _report_rm(json_mode: bool, public_id: str, status: str, error: str | None) -> None:
    if json_mode:
        emit_json({"public_id": public_id, "status": status, "error": error})
    elif error:
        _error(error)
    else:
        sys.stdout.write(f"deleted {safe_text(public_id)}\n")


def run() -> None:
    """The console script's entry point."""
    # Python's default would print a BrokenPipeError traceback when piped into `head`.
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()
        code = EXIT_FAILED
    sys.exit(code)
