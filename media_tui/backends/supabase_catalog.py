"""SupabaseCatalog: the catalogue as a Supabase table, through supabase-py's async client.

Rows are written the moment an upload finishes (`upsert` on the unique `public_id`: the
"immediate sync"), paged newest first with an exact count, and mapped to and from
`MediaAsset` by the same field names. PostgREST errors (`{code, message, details, hint}`,
reference/supabase.md §3) become one operator-ready sentence; network trouble, 5xx and the
PGRST000–003 "database unreachable" codes are transient, everything else is permanent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
from postgrest.exceptions import APIError
from postgrest.types import CountMethod
from supabase import AsyncClient, acreate_client

from media_tui.backends.base import CatalogDigest, CatalogPage, NameClaim
from media_tui.config import SupabaseSettings
from media_tui.errors import PermanentError, TransferError, TransientError
from media_tui.model import (
    CATALOG_COLUMNS,
    SERVER_COLUMNS,
    MediaAsset,
    format_timestamp,
    parse_timestamp,
    utcnow,
)

# Columns the app writes; `id`, `created_at` and `updated_at` belong to the database.
WRITABLE = tuple(c for c in CATALOG_COLUMNS if c not in SERVER_COLUMNS)
TRANSIENT_CODES = {"PGRST000", "PGRST001", "PGRST002", "PGRST003", "503", "520"}


def row_of(asset: MediaAsset) -> dict[str, Any]:
    """The row to upsert for an asset."""
    data = asset.to_json()
    return {key: data[key] for key in WRITABLE}


def error_for(exc: Exception, what: str) -> TransferError:
    """One sentence for a failed Supabase call."""
    if isinstance(exc, httpx.TransportError):
        return TransientError(
            f"cannot reach Supabase while {what} ({type(exc).__name__}); it will be retried."
        )
    if isinstance(exc, APIError):
        code = str(exc.code or "")
        message = exc.message or "no message"
        if code in TRANSIENT_CODES or code.startswith("5"):
            return TransientError(f"Supabase could not answer while {what} ({code}: {message}).")
        if (
            code in ("PGRST301", "PGRST302", "401", "42501")
            or "API key" in message
            or "authentication credentials" in message  # the API gateway's own 401
        ):
            return PermanentError(
                f"Supabase refused the key while {what} ({message}); check SUPABASE_URL and the key "
                "(the service role key can write; the anon key needs the write policy)."
            )
        if code in ("PGRST205", "42P01", "PGRST204", "42703"):
            return PermanentError(
                f"the Supabase table is missing or lacks a column while {what} ({message}); "
                "create it with the SQL from `media-tui schema`."
            )
        if not code:
            # PostgREST's own errors always carry a code; a JSON error without one comes from
            # the gateway in front of it (e.g. Kong's 502 "An invalid response was received
            # from the upstream server"), which a retry can get past.
            return TransientError(f"Supabase's gateway could not answer while {what} ({message}).")
        hint = f" Hint: {exc.hint}" if exc.hint else ""
        return PermanentError(f"Supabase refused {what} ({code}: {message}).{hint}")
    return PermanentError(f"unexpected error while {what} ({type(exc).__name__}: {exc}).")


class SupabaseCatalog:
    """The `Catalog` protocol over PostgREST. The client is created on first use."""

    name = "supabase"

    def __init__(self, settings: SupabaseSettings) -> None:
        self.settings = settings
        self.table = settings.table
        self.claims_table = claims_table_for(settings.table)
        self._client: AsyncClient | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> AsyncClient:
        async with self._lock:
            if self._client is None:
                # Creating the client makes no network call (reference §1): errors come later.
                self._client = await acreate_client(self.settings.url, self.settings.key.value)
            return self._client

    async def _run(self, what: str, query: Any) -> Any:
        try:
            response = await query.execute()
        except (APIError, httpx.HTTPError) as exc:
            raise error_for(exc, what) from exc
        # postgrest-py hands back a 2xx body that is not JSON as a string, which the callers
        # read as rows, one character each (AttributeError): a captive portal, or a
        # SUPABASE_URL naming a web site, answers 200 with an HTML page.
        if isinstance(response.data, str):
            raise PermanentError(
                f"Supabase answered {what} with something that is not PostgREST JSON; check "
                "that SUPABASE_URL is the project's API URL (https://<project>.supabase.co)."
            )
        return response

    async def page(
        self, *, offset: int = 0, limit: int = 1000, folder: str | None = None
    ) -> CatalogPage:
        sb = await self.client()
        query = sb.table(self.table).select("*", count=CountMethod.exact)
        if folder is not None:
            query = query.eq("folder", folder)
        query = (
            query.order("created_at", desc=True)
            .order("id", desc=True)
            .range(offset, offset + limit - 1)
        )
        response = await self._run("listing the catalogue", query)
        assets = tuple(MediaAsset.from_json(row) for row in response.data)
        return CatalogPage(
            assets=assets, total=response.count if response.count is not None else len(assets)
        )

    async def _one(self, column: str, value: str, what: str) -> MediaAsset | None:
        sb = await self.client()
        response = await self._run(
            what, sb.table(self.table).select("*").eq(column, value).limit(1)
        )
        return MediaAsset.from_json(response.data[0]) if response.data else None

    async def get(self, public_id: str) -> MediaAsset | None:
        return await self._one("public_id", public_id, f"reading {public_id}")

    async def find_by_checksum(self, checksum: str) -> MediaAsset | None:
        return await self._one("checksum", checksum, "checking for a duplicate")

    async def upsert(self, asset: MediaAsset) -> MediaAsset:
        sb = await self.client()
        query = sb.table(self.table).upsert(row_of(asset), on_conflict="public_id")
        response = await self._run(f"writing {asset.public_id}", query)
        if not response.data:
            raise PermanentError(
                f"Supabase wrote {asset.public_id} but returned no row; check the table's grants."
            )
        return MediaAsset.from_json(response.data[0])

    async def delete(self, public_id: str) -> bool:
        sb = await self.client()
        response = await self._run(
            f"deleting {public_id}", sb.table(self.table).delete().eq("public_id", public_id)
        )
        return bool(response.data)

    async def digest(self) -> CatalogDigest:
        """Count and newest `updated_at` in one request: the newest row's stamp, with the
        exact count PostgREST puts in Content-Range (one statement, so the two agree)."""
        sb = await self.client()
        query = (
            sb.table(self.table)
            .select("updated_at", count=CountMethod.exact)
            .order("updated_at", desc=True)
            .limit(1)
        )
        response = await self._run("checking the catalogue", query)
        newest = parse_timestamp(response.data[0]["updated_at"]) if response.data else None
        count = response.count if response.count is not None else len(response.data)
        return CatalogDigest(count=count, newest=newest)

    async def claim_name(self, public_id: str, checksum: str, owner: str, ttl: float) -> NameClaim:
        """Claim a name with PostgREST's atomic statements; no read-then-write.

        1. `INSERT … ON CONFLICT DO NOTHING` (`resolution=ignore-duplicates`): a row back means
           the name was free and is ours.
        2. Otherwise read the holder. If it is us, or its claim has expired, take it over with
           an UPDATE filtered on the holder we read (`owner=eq.<holder>`, and for an expired
           claim `expires_at=lt.<now>`): PostgreSQL re-checks that filter under the row lock,
           so of two takers exactly one matches; the other reads the winner and returns it.
        """
        sb = await self.client()
        what = f"claiming the name {public_id}"
        for _ in range(3):  # each round ends in a decision unless the holder just vanished
            now = utcnow()
            claim = NameClaim(public_id, checksum, owner, now + timedelta(seconds=ttl))
            row = _claim_row(claim)
            inserted = await self._run(
                what,
                sb.table(self.claims_table).upsert(
                    row, on_conflict="public_id", ignore_duplicates=True
                ),
            )
            if inserted.data:
                return claim
            held = await self._held_claim(public_id, what)
            if held is None:
                continue  # released between our insert and our read: try again
            if held.owner != owner and held.expires_at > now:
                return held
            query = (
                sb.table(self.claims_table)
                .update(row)
                .eq("public_id", public_id)
                .eq("owner", held.owner)
            )
            if held.owner != owner:
                query = query.lt("expires_at", format_timestamp(now))
            taken = await self._run(what, query)
            if taken.data:
                return claim
            winner = await self._held_claim(public_id, what)
            if winner is not None:
                return winner
        raise TransientError(f"the name {public_id} kept changing hands while {what}.")

    async def _held_claim(self, public_id: str, what: str) -> NameClaim | None:
        sb = await self.client()
        response = await self._run(
            what, sb.table(self.claims_table).select("*").eq("public_id", public_id).limit(1)
        )
        return _claim_of(response.data[0]) if response.data else None

    async def release_name(self, public_id: str, owner: str) -> None:
        sb = await self.client()
        query = sb.table(self.claims_table).delete().eq("public_id", public_id).eq("owner", owner)
        await self._run(f"releasing the name {public_id}", query)

    async def live_claims(self) -> list[NameClaim]:
        sb = await self.client()
        now = format_timestamp(utcnow())
        claims: list[NameClaim] = []
        offset, page = 0, 1000
        while True:
            query = (
                sb.table(self.claims_table)
                .select("*")
                .gt("expires_at", now)
                .order("public_id")
                .range(offset, offset + page - 1)
            )
            response = await self._run("reading the upload claims", query)
            claims.extend(_claim_of(row) for row in response.data)
            if len(response.data) < page:
                return claims
            offset += page

    async def count_by_checksum(self, checksum: str) -> int:
        sb = await self.client()
        query = sb.table(self.table).select("id", count=CountMethod.exact).eq("checksum", checksum)
        response = await self._run("counting the rows sharing a file", query.limit(1))
        return int(response.count or 0)

    async def check_columns(self) -> None:
        """Fail with the schema hint unless the table has every column the app reads and writes."""
        sb = await self.client()
        columns = ",".join(CATALOG_COLUMNS)
        await self._run(
            "checking the table's columns", sb.table(self.table).select(columns).limit(1)
        )

    async def check_write(self) -> None:
        """Prove the key may write, without writing: an update that matches no row.

        Grants are checked even when no row matches, and no realtime event is sent to anyone.
        """
        sb = await self.client()
        probe = (
            sb.table(self.table)
            .update({"folder": ""})
            .eq("public_id", "__media-tui doctor probe, never a real id__")
        )
        await self._run("checking the key can write", probe)

    async def snapshot(self, page_size: int = 1000) -> list[MediaAsset]:
        """Every row, oldest id first, page by page (what a resync compares with)."""
        sb = await self.client()
        assets: list[MediaAsset] = []
        offset = 0
        while True:
            query = (
                sb.table(self.table).select("*").order("id").range(offset, offset + page_size - 1)
            )
            response = await self._run("reading the catalogue", query)
            assets.extend(MediaAsset.from_json(row) for row in response.data)
            if len(response.data) < page_size:
                return assets
            offset += page_size

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.remove_all_channels()
            await client.postgrest.aclose()


def claims_table_for(table: str) -> str:
    """The claims table that goes with a catalogue table (created by `media-tui schema`)."""
    return f"{table}_claims"


def _claim_row(claim: NameClaim) -> dict[str, Any]:
    return {
        "public_id": claim.public_id,
        "checksum": claim.checksum,
        "owner": claim.owner,
        "expires_at": format_timestamp(claim.expires_at),
    }


def _claim_of(row: Mapping[str, Any]) -> NameClaim:
    expires_at = parse_timestamp(row.get("expires_at"))
    if expires_at is None or not all(
        isinstance(row.get(k), str) for k in ("public_id", "checksum", "owner")
    ):
        raise PermanentError("the claims table holds a row media-tui cannot read.")
    return NameClaim(str(row["public_id"]), str(row["checksum"]), str(row["owner"]), expires_at)


def mapping_for_delete(old_record: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """What a realtime DELETE carries: with RLS on, only the primary key (reference §4.5)."""
    row_id = old_record.get("id")
    public_id = old_record.get("public_id")
    return (str(public_id) if public_id else None, int(row_id) if row_id is not None else None)
