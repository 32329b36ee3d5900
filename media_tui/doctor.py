"""`media-tui doctor`: configuration and connectivity, one check per line, secrets masked."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_tui.backends.factory import Backends, open_backends
from media_tui.config import Settings, load_settings
from media_tui.console import emit_json, human_size
from media_tui.errors import ConfigError, MediaError
from media_tui.journal import SUFFIX
from media_tui.model import ConnectionChanged, ConnectionState
from media_tui.safe_text import safe_text


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


async def run_doctor(flags: Mapping[str, Any], *, json_mode: bool) -> int:
    """Print every check; exit 2 for unusable settings, 1 if any check failed, else 0."""
    try:
        settings = load_settings(flags)
    except ConfigError as exc:
        _print(Check("config", "fail", str(exc)), json_mode)
        return 2
    checks = [_config_check(settings), *_credential_checks(settings)]
    checks.append(await asyncio.to_thread(_library_check, settings.library))
    if settings.cloudinary is not None:
        checks.append(await _cloudinary_ping(settings))
    checks.extend(await _backend_checks(settings))
    checks.append(_journal_check(settings))
    for check in checks:
        _print(check, json_mode)
    return 1 if any(c.status == "fail" for c in checks) else 0


def _print(check: Check, json_mode: bool) -> None:
    if json_mode:
        emit_json({"check": check.name, "status": check.status, "detail": check.detail})
    else:
        sys.stdout.write(f"{check.status:<5} {check.name:<11} {safe_text(check.detail)}\n")


def _config_check(settings: Settings) -> Check:
    source = (
        f"read {settings.config_file}"
        if settings.config_file
        else "no config file; using flags, environment and defaults"
    )
    return Check(
        "config", "ok", f"{source}; storage={settings.storage}, catalog={settings.catalog}"
    )


def _credential_checks(settings: Settings) -> list[Check]:
    checks = []
    cld = settings.cloudinary
    if cld is None:
        checks.append(
            Check("cloudinary", "ok", "not configured (set CLOUDINARY_URL to use Cloudinary)")
        )
    else:
        where = f", API at {cld.upload_prefix}" if cld.upload_prefix else ""
        checks.append(
            Check(
                "cloudinary",
                "ok",
                f"cloud {cld.cloud_name}, key {cld.api_key}, secret {cld.api_secret.masked()}, "
                f"{cld.signature_algorithm} signatures{where} (from {cld.source})",
            )
        )
    sb = settings.supabase
    if sb is None:
        checks.append(
            Check("supabase", "ok", "not configured (set SUPABASE_URL and a key to use Supabase)")
        )
    else:
        checks.append(
            Check(
                "supabase",
                "ok",
                f"{sb.url}, table {sb.table}, key {sb.key.masked()} (from {sb.key_source})",
            )
        )
    return checks


def _library_check(library: Path) -> Check:
    try:
        library.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=library, prefix=".doctor-"):
            pass
        free = shutil.disk_usage(library).free
    except OSError as exc:
        return Check(
            "library",
            "fail",
            f"{library} is not writable ({exc.strerror}); pick another with --library.",
        )
    status = "warn" if free < 1_000_000_000 else "ok"
    return Check("library", status, f"{library} (writable, {human_size(free)} free)")


async def _backend_checks(settings: Settings) -> list[Check]:
    try:
        backends = open_backends(settings)
    except MediaError as exc:
        return [Check("backends", "fail", str(exc))]
    try:
        page = await backends.catalog.page(limit=1)
        catalog = Check(
            "catalog", "ok", f"{backends.catalog.name} catalogue answers: {page.total} assets"
        )
    except MediaError as exc:
        catalog = Check("catalog", "fail", str(exc))
    extra: list[Check] = []
    try:
        if catalog.status == "ok":
            extra = await _supabase_checks(backends)
    finally:
        await backends.aclose()
    return [Check("storage", "ok", f"{backends.storage.name} storage"), catalog, *extra]


async def _supabase_checks(backends: Backends) -> list[Check]:
    """Columns, write permission and a live realtime subscription — each one line."""
    from media_tui.backends.supabase_catalog import SupabaseCatalog

    catalog = backends.catalog
    if not isinstance(catalog, SupabaseCatalog):
        return []
    checks = []
    for name, probe, good in (
        ("table", catalog.check_columns, f"{catalog.table} has every column media-tui uses"),
        ("write", catalog.check_write, "the key may write to the table"),
    ):
        try:
            await probe()
            checks.append(Check(name, "ok", good))
        except MediaError as exc:
            checks.append(Check(name, "fail", str(exc)))
    checks.append(await _realtime_check(backends))
    return checks


async def _realtime_check(backends: Backends, limit: float = 15.0) -> Check:
    feed = backends.change_feed()
    events = feed.events()

    async def until_live() -> None:
        async for event in events:
            if isinstance(event, ConnectionChanged) and event.state is ConnectionState.LIVE:
                return

    try:
        await asyncio.wait_for(until_live(), limit)
        return Check("realtime", "ok", "a postgres_changes subscription is live")
    except TimeoutError:
        return Check(
            "realtime",
            "fail",
            f"no realtime subscription within {limit:.0f} s; check that the table is in the supabase_realtime publication (see `media-tui schema`).",
        )
    finally:
        await feed.aclose()
        close = getattr(events, "aclose", None)  # an async generator: finish it now
        if close is not None:
            await close()


async def _cloudinary_ping(settings: Settings) -> Check:
    """The Admin API's ping: proves the host answers and the key and secret are accepted."""
    from media_tui.backends.cloudinary import CloudinaryStorage

    assert settings.cloudinary is not None
    storage = CloudinaryStorage(settings.cloudinary)
    try:
        await storage.ping()
    except MediaError as exc:
        return Check("cloudinary-api", "fail", str(exc))
    finally:
        await storage.aclose()
    return Check(
        "cloudinary", "ok", f"{settings.cloudinary.api_base} answers and accepts the credentials"
    )


def _journal_check(settings: Settings) -> Check:
    files = list(settings.journal_dir.glob(f"*{SUFFIX}")) if settings.journal_dir.is_dir() else []
    if not files:
        return Check("journal", "ok", "no unfinished uploads")
    return Check(
        "journal",
        "warn",
        f"{len(files)} journal file(s): unfinished uploads resume on the next start",
    )
