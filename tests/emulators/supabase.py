"""A wire-faithful Supabase emulator (PostgREST subset + Realtime) on loopback, for tests.

It speaks what supabase-py 2.34.1 sends, as measured in `shared/reference/supabase.md` (cited
below as "ref §n"): PostgREST requests as postgrest-py builds them (ref §3, checklist §9 HTTP),
and the Realtime Phoenix v1 JSON protocol as realtime-py speaks it (ref §4, checklist §9
websocket). Golden frames: `shared/reference/fixtures/realtime_frames.jsonl`.

Strictness is the point (a lenient fake hides real bugs): keys are checked on every request,
unknown columns and bad literals fail with PostgREST's `{code,message,details,hint}` errors,
client websocket frames must have exactly the shape realtime-py sends (ref §4.2), and every
server frame carries `ref` (ref §4.7), or the real client would drop it silently.

One asyncio server in a background thread (its own loop) on 127.0.0.1 and a free port. HTTP/1.1
is parsed by hand on asyncio streams (ref §3: over http:// httpx speaks HTTP/1.1 only); a
websocket upgrade is handed to the sans-I/O `websockets.server.ServerProtocol`, so one port
serves both, with no dependency beyond `websockets`, which supabase already installs.

    with SupabaseEmulator() as emulator:
        sb = await acreate_client(emulator.url, emulator.service_key)

Control plane (thread-safe, for tests): `drop_all_sockets()`, `close_all_sockets(code)`,
`pause_delivery()` / `resume_delivery()`, `delay`, `duplicate_events`, `reorder_events` (a
shuffle on resume), `reorder_window` (ongoing reordering: each step delivers one change drawn
among the oldest N waiting; the rest is drained `reorder_drain` s after the last commit),
`delivery_jitter` (up to that many extra seconds per delivery), `flush_delivery()` (send what
the window holds now), `undelivered` (changes still held, in the window or in transit), `write_as_other(op, row)`, `send_raw(message)` and `send_change_data(data)` (unchecked frames
for hostile-input tests), `rows`, counters `rest_requests`, `frames_sent`, `sockets_open`,
`heartbeats` / `heartbeat_seen`, and `requests` (one `(method, path, status)` per HTTP request).
Fault switches from ref §9 websocket 6: `crash_channels()` (`phx_error`), `expire_channels()`
(`system` error + `phx_close`), `join_error`, `ignore_joins`, `refuse_sockets(seconds)`. REST fault
switches (the PostgREST path only, drawn like the Cloudinary emulator's `FaultSwitch`, from
`seed_rest_faults(seed)`): `rest_latency`, `rest_failure_rate` / `rest_failure_status`,
`rest_drop_rate`, `rest_match`, with counters `rest_failures_injected`, `rest_drops_injected`,
`rest_abandoned` and `rest_held`. Emulator bugs go to
`internal_errors`; frames the real client would never send go to `protocol_violations`; the
pytest fixture fails the test on either.

The table behaves as the DDL in ref §7 (RLS on, `id` an identity column, `public_id` unique,
an `updated_at` trigger). Not emulated: embedded resources, `single()` on writes, JWT parsing
(tokens are compared to the configured keys and `extra_tokens`), broadcast and presence fan-out,
HTTP/1.1 chunked request bodies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import random
import re
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

JSON = dict[str, Any]
Row = dict[str, Any]
T = TypeVar("T")

# ref §7 DDL, reduced to the columns media-tui stores; pg_type.typname per ref §4.5.
DEFAULT_COLUMNS: dict[str, str] = {
    "id": "int8",
    "public_id": "text",
    "resource_type": "text",
    "format": "text",
    "bytes": "int8",
    "width": "int4",
    "height": "int4",
    "duration": "float8",
    "url": "text",
    "folder": "text",
    "tags": "_text",
    "checksum": "text",
    "original_filename": "text",
    "version": "int8",
    "thumbnail": "text",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}
# Names for error messages, as PostgreSQL spells them in "invalid input syntax for type …".
_TYPE_NAMES = {
    "int8": "bigint",
    "int4": "integer",
    "float8": "double precision",
    "text": "text",
    "_text": "text[]",
    "timestamptz": "timestamp with time zone",
    "bool": "boolean",
    "jsonb": "jsonb",
}
# ref §7: `public_id text not null unique`, `tags text[] not null default '{}'`.
NOT_NULL = frozenset({"public_id", "tags", "created_at", "updated_at"})
# The claims table of `media-tui schema`: every column NOT NULL, public_id the primary key.
CLAIM_COLUMNS: dict[str, str] = {
    "public_id": "text",
    "checksum": "text",
    "owner": "text",
    "expires_at": "timestamptz",
}
# ref §3 "Code map" (PostgREST errors.rst). 21000 (pg-safeupdate) status is unconfirmed.
_ERROR_STATUS = {
    "23505": 409,
    "23502": 400,
    "22P02": 400,
    "22007": 400,
    "42703": 400,
    "42P10": 400,
    "428C9": 400,
    "21000": 400,
    "PGRST100": 400,
    "PGRST102": 400,
    "PGRST200": 400,
    "PGRST204": 400,
    "PGRST116": 406,
    "PGRST205": 404,
    "42501": 401,
}
_REASONS = {
    101: "Switching Protocols",
    200: "OK",
    201: "Created",
    204: "No Content",
    206: "Partial Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    411: "Length Required",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_FILTER_OPS = frozenset(
    {"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "is", "in", "cs", "cd"}
)
# ref §2: the server documents only these for Realtime `filter`.
_REALTIME_FILTER_OPS = frozenset({"eq", "neq", "lt", "lte", "gt", "gte", "in"})
_RESERVED_PARAMS = frozenset(
    {
        "select",
        "order",
        "limit",
        "offset",
        "on_conflict",
        "columns",
        "or",
        "and",
        "not.or",
        "not.and",
    }
)
# ref §4.2: realtime-py always sends all five keys, in this order.
_CLIENT_FRAME_KEYS = ["event", "payload", "topic", "ref", "join_ref"]
_MAX_HEAD_BYTES = 64 * 1024
_WS_MAX_SIZE = 1024 * 1024  # ref §4.1: the client's own limit is 1 MiB


class PostgrestError(Exception):
    """A PostgREST error response: `{code, message, details, hint}` and its HTTP status."""

    def __init__(
        self, code: str | None, message: str, details: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details, self.hint = code, message, details, hint
        self.status = _ERROR_STATUS.get(code or "", 401)

    def body(self) -> JSON:
        if self.code is None:  # gateway errors have no code and no details (ref §3 "Errors")
            return {"message": self.message, "hint": self.hint}
        return {
            "code": self.code,
            "details": self.details,
            "hint": self.hint,
            "message": self.message,
        }


def render_timestamptz(value: datetime) -> str:
    """PostgreSQL's `to_json(timestamptz)` in UTC: microseconds with trailing zeros trimmed."""
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "+00:00"


def render_commit_timestamp(value: datetime) -> str:
    """ref §4.5: `commit_timestamp` is `YYYY-MM-DDTHH24:MI:SS.MSZ`."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def _parse_timestamptz(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # the session time zone is UTC


def _split_list(text: str, sep: str = ",") -> list[tuple[str, bool]]:
    """Split a PostgREST list (`in.(…)`, `{…}`, `or=(…)`) at top level; (item, was_quoted)."""
    items: list[tuple[str, bool]] = []
    buf: list[str] = []
    depth, quoted, in_quotes, i = 0, False, False, 0
    while i < len(text):
        ch = text[i]
        if in_quotes:
            if ch == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_quotes = False
            else:
                buf.append(ch)
        elif ch == '"':
            in_quotes = quoted = True
        elif ch in "({":
            depth += 1
            buf.append(ch)
        elif ch in ")}":
            depth -= 1
            buf.append(ch)
        elif ch == sep and depth == 0:
            items.append(("".join(buf), quoted))
            buf, quoted = [], False
        else:
            buf.append(ch)
        i += 1
    if buf or quoted or items:
        items.append(("".join(buf), quoted))
    return items


def _like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # PostgREST accepts `*` as an alias of `%` in like/ilike.
    parts = ["." if ch == "_" else ".*" if ch in "%*" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


@dataclass
class Table:
    """An in-memory table with PostgreSQL's type rules for the column types in use."""

    name: str
    columns: dict[str, str]
    rows: dict[int, Row] = field(default_factory=dict)
    next_id: int = 1
    not_null: frozenset[str] = NOT_NULL
    last_ts: datetime = field(default_factory=lambda: datetime(2000, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        """`now()`, strictly increasing so every write gets a distinct `updated_at`."""
        current = datetime.now(UTC)
        self.last_ts = max(current, self.last_ts + timedelta(microseconds=1))
        return self.last_ts

    def check_column(self, name: str) -> None:
        if name not in self.columns:
            raise PostgrestError("42703", f"column {self.name}.{name} does not exist")

    def coerce_input(self, column: str, value: Any) -> Any:
        """A JSON body value as `json_populate_recordset` would store it."""
        if column not in self.columns:
            raise PostgrestError(
                "PGRST204",
                f"Could not find the '{column}' column of '{self.name}' in the schema cache",
            )
        kind = self.columns[column]
        if value is None or kind == "jsonb":
            return value
        if kind in ("int8", "int4"):
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            return self._literal(kind, value if isinstance(value, str) else json.dumps(value))
        if kind == "float8" and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if kind == "_text":
            if isinstance(value, list) and all(v is None or isinstance(v, str) for v in value):
                return list(value)
            raise PostgrestError("22P02", f'malformed array literal: "{json.dumps(value)}"')
        if kind == "text":
            return value if isinstance(value, str) else json.dumps(value)
        return self._literal(kind, value if isinstance(value, str) else json.dumps(value))

    def _literal(self, kind: str, text: str) -> Any:
        """A query-string or text literal converted to the column type, or PostgreSQL's error."""
        try:
            if kind in ("int8", "int4"):
                return int(text.strip())
            if kind == "float8":
                return float(text)
            if kind == "bool":
                return {"true": True, "false": False, "t": True, "f": False}[text.lower()]
            if kind == "timestamptz":
                return _parse_timestamptz(text)
            if kind == "_text":
                if not (text.startswith("{") and text.endswith("}")):
                    raise ValueError(text)
                return [item for item, _ in _split_list(text[1:-1])]
            if kind == "jsonb":
                return json.loads(text)
        except (ValueError, KeyError) as exc:
            code = "22007" if kind == "timestamptz" else "22P02"
            if kind == "_text":
                raise PostgrestError(code, f'malformed array literal: "{text}"') from exc
            raise PostgrestError(
                code, f'invalid input syntax for type {_TYPE_NAMES[kind]}: "{text}"'
            ) from exc
        return text

    def literal(self, column: str, text: str) -> Any:
        self.check_column(column)
        return self._literal(self.columns[column], text)

    def render(self, row: Row, select: Sequence[tuple[str, str]] | None = None) -> Row:
        """A row as PostgREST renders it (timestamptz as ISO with offset); `select` = (alias, col)."""
        pairs = select if select is not None else [(c, c) for c in self.columns]
        return {
            alias: render_timestamptz(row[col]) if isinstance(row[col], datetime) else row[col]
            for alias, col in pairs
        }

    def check_not_null(self, row: Row) -> None:
        for col in self.columns:
            if col in self.not_null and row.get(col) is None:
                values = ", ".join(
                    "null" if v is None else str(v) for v in self.render(row).values()
                )
                raise PostgrestError(
                    "23502",
                    f'null value in column "{col}" of relation "{self.name}" violates not-null constraint',
                    f"Failing row contains ({values}).",
                )

    def check_unique(self, row: Row, ignore_id: int | None = None) -> None:
        if "public_id" not in self.columns:
            return
        for other in self.rows.values():
            if other["id"] != ignore_id and other["public_id"] == row["public_id"]:
                raise PostgrestError(
                    "23505",
                    f'duplicate key value violates unique constraint "{self.name}_public_id_key"',
                    f"Key (public_id)=({row['public_id']}) already exists.",
                )

    def insert(self, values: Mapping[str, Any], use_defaults_for: Iterable[str] = ()) -> Row:
        """INSERT one row; `values` are already coerced. Defaults apply to absent columns."""
        if "id" in values and "id" not in use_defaults_for:
            raise PostgrestError(
                "428C9",
                'cannot insert a non-DEFAULT value into column "id"',
                'Column "id" is an identity column defined as GENERATED ALWAYS.',
                "Use OVERRIDING SYSTEM VALUE to override.",
            )
        now = self.now()
        row: Row = {col: None for col in self.columns}
        if "tags" in self.columns:
            row["tags"] = []
        if "created_at" in self.columns:
            row["created_at"] = now
        defaults = set(use_defaults_for)
        row.update({k: v for k, v in values.items() if k not in defaults})
        row["id"] = self.next_id
        if "updated_at" in self.columns:
            row["updated_at"] = now  # the app's trigger sets it on every write
        self.check_not_null(row)
        self.check_unique(row)
        self.next_id += 1
        self.rows[row["id"]] = row
        return row

    def update(self, row_id: int, values: Mapping[str, Any]) -> tuple[Row, Row]:
        """UPDATE one row by id; returns (old, new)."""
        if "id" in values:
            raise PostgrestError("428C9", 'column "id" can only be updated to DEFAULT')
        old = self.rows[row_id]
        new = {**old, **values}
        if "updated_at" in self.columns:
            new["updated_at"] = self.now()
        self.check_not_null(new)
        self.check_unique(new, ignore_id=row_id)
        self.rows[row_id] = new
        return old, new

    def find_by(self, column: str, value: Any) -> Row | None:
        return next((r for r in self.rows.values() if r.get(column) == value), None)


@dataclass
class Change:
    """One committed row change, the unit Realtime delivers (ref §4.5)."""

    type: str  # INSERT | UPDATE | DELETE
    record: Row | None
    old: Row
    commit: datetime


# ---------------------------------------------------------------------------------------------
# PostgREST query parsing (ref §3 table, checklist §9 HTTP 2)
# ---------------------------------------------------------------------------------------------

Predicate = Callable[[Row], bool | None]  # None is SQL NULL (unknown)


def _compare(op: str, left: Any, right: Any) -> bool | None:
    if left is None:
        return None
    try:
        if op == "eq":
            return bool(left == right)
        if op == "neq":
            return bool(left != right)
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def parse_condition(table: Table, column: str, expr: str) -> Predicate:
    """`column=[not.]op.value` as one predicate, PostgREST semantics incl. SQL NULL."""
    negate = expr.startswith("not.")
    if negate:
        expr = expr[4:]
    op, dot, raw = expr.partition(".")
    if not dot or op not in _FILTER_OPS:
        raise PostgrestError(
            "PGRST100",
            f'"failed to parse filter ({expr})" (line 1, column 1)',
            "unexpected operator",
        )
    table.check_column(column)
    inner = _operator(table, column, op, raw)
    if not negate:
        return inner

    def negated(row: Row) -> bool | None:
        result = inner(row)
        return None if result is None else not result

    return negated


def _operator(table: Table, column: str, op: str, raw: str) -> Predicate:
    kind = table.columns[column]
    if op == "is":
        wanted = {"null": None, "true": True, "false": False, "unknown": None}.get(raw.lower(), "?")
        if wanted == "?":
            raise PostgrestError(
                "PGRST100", f'"failed to parse filter (is.{raw})" (line 1, column 4)'
            )

        def is_(row: Row) -> bool:
            return row[column] is wanted or (wanted is not None and row[column] == wanted)

        return is_
    if op in ("like", "ilike"):
        regex = _like_regex(raw, op == "ilike")
        return lambda row: None if row[column] is None else bool(regex.fullmatch(str(row[column])))
    if op == "in":
        if not (raw.startswith("(") and raw.endswith(")")):
            raise PostgrestError(
                "PGRST100", f'"failed to parse filter (in.{raw})" (line 1, column 4)'
            )
        values = [table.literal(column, item) for item, _ in _split_list(raw[1:-1])]
        return lambda row: None if row[column] is None else row[column] in values
    if op in ("cs", "cd"):
        wanted_items = table.literal(column, raw) if kind in ("_text", "jsonb") else None
        if not isinstance(wanted_items, list):
            raise PostgrestError(
                "42883", f"operator does not exist: {_TYPE_NAMES[kind]} @> unknown"
            )
        if op == "cs":
            return lambda row: (
                None if row[column] is None else all(v in row[column] for v in wanted_items)
            )
        return lambda row: (
            None if row[column] is None else all(v in wanted_items for v in row[column])
        )
    value = table.literal(column, raw)
    return lambda row: _compare(op, row[column], value)


def parse_logic(table: Table, text: str, conjunction: bool) -> Predicate:
    """`or=(a.eq.1,and(b.gt.2,c.is.null))`: nested logic trees."""
    if not (text.startswith("(") and text.endswith(")")):
        raise PostgrestError(
            "PGRST100", f'"failed to parse logic tree ({text})" (line 1, column 1)'
        )
    parts: list[Predicate] = []
    for item, _ in _split_list(text[1:-1]):
        negate = item.startswith("not.")
        body = item[4:] if negate else item
        if body.startswith(("and(", "or(")):
            word, _, rest = body.partition("(")
            sub = parse_logic(table, "(" + rest, word == "and")
        else:
            column, dot, expr = body.partition(".")
            if not dot:
                raise PostgrestError("PGRST100", f'"failed to parse logic tree ({text})"')
            sub = parse_condition(table, column, expr)
        parts.append(_negate(sub) if negate else sub)
    return _combine(parts, conjunction)


def _negate(pred: Predicate) -> Predicate:
    def run(row: Row) -> bool | None:
        result = pred(row)
        return None if result is None else not result

    return run


def _combine(parts: Sequence[Predicate], conjunction: bool) -> Predicate:
    def run(row: Row) -> bool | None:
        results = [p(row) for p in parts]
        if conjunction:  # SQL three-valued AND / OR
            return False if False in results else None if None in results else True
        return True if True in results else None if None in results else False

    return run


def parse_filters(table: Table, params: Sequence[tuple[str, str]]) -> tuple[Predicate, bool]:
    """Every non-reserved query parameter is a filter; returns (predicate, any_filter_given)."""
    parts: list[Predicate] = []
    for key, value in params:
        if key in ("or", "and", "not.or", "not.and"):
            pred = parse_logic(table, value, key.endswith("and"))
            parts.append(_negate(pred) if key.startswith("not.") else pred)
        elif key not in _RESERVED_PARAMS:
            parts.append(parse_condition(table, key, value))
    return _combine(parts, True), bool(parts)


def parse_select(table: Table, text: str | None) -> list[tuple[str, str]]:
    """`select=*` or `a,alias:b`; unknown columns → 42703, embeds → PGRST200."""
    if text is None or text.strip() == "*":
        return [(c, c) for c in table.columns]
    pairs: list[tuple[str, str]] = []
    for item, _ in _split_list(text):
        item = item.strip()
        if item == "*":
            pairs.extend((c, c) for c in table.columns)
            continue
        if "(" in item:
            name = item.split("(")[0].split(":")[-1]
            raise PostgrestError(
                "PGRST200",
                f"Could not find a relationship between '{table.name}' and '{name}' in the schema cache",
            )
        alias, _, col = item.rpartition(":")
        col = col.split("::")[0]  # casts change only the rendering; not emulated
        table.check_column(col)
        pairs.append((alias or col, col))
    return pairs


def _order_rows(table: Table, rows: list[Row], text: str) -> list[Row]:
    keys: list[tuple[str, bool, bool]] = []  # (column, desc, nulls_first)
    for item, _ in _split_list(text):
        column, *mods = item.strip().split(".")
        table.check_column(column)
        desc = "desc" in mods
        unknown = set(mods) - {"asc", "desc", "nullsfirst", "nullslast"}
        if unknown:
            raise PostgrestError("PGRST100", f'"failed to parse order ({text})" (line 1, column 1)')
        # PostgreSQL default: NULLS LAST for ASC, NULLS FIRST for DESC.
        nulls_first = "nullsfirst" in mods or (desc and "nullslast" not in mods)
        keys.append((column, desc, nulls_first))
    for column, desc, nulls_first in reversed(keys):  # stable sorts, last key first
        present = [r for r in rows if r[column] is not None]
        absent = [r for r in rows if r[column] is None]
        present.sort(key=_column_key(column), reverse=desc)
        rows = absent + present if nulls_first else present + absent
    return rows


def _column_key(column: str) -> Callable[[Row], Any]:
    def key(row: Row) -> Any:
        value = row[column]
        return json.dumps(value, sort_keys=True) if isinstance(value, dict) else value

    return key


def parse_prefer(header: str) -> dict[str, str]:
    """ref §9 HTTP 1: `Prefer` is a comma list of key=value."""
    prefs: dict[str, str] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key:
            prefs[key] = value
    return prefs


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 on asyncio streams
# ---------------------------------------------------------------------------------------------


@dataclass
class HttpRequest:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names (ref §9 HTTP 1: the client sends `apiKey`)
    body: bytes
    head: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.target).query, keep_blank_values=True)


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return HttpResponse(status, body, all_headers)


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """One request head and body; None at a clean end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]},{value.strip()}" if key in headers else value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(method, target, headers, body, head)


def encode_response(response: HttpResponse, head_only: bool) -> bytes:
    reason = _REASONS.get(response.status, "Unknown")
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    headers = {**response.headers, "Content-Length": str(len(response.body))}
    lines += [f"{k}: {v}" for k, v in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only or response.status == 204 else head + response.body


# ---------------------------------------------------------------------------------------------
# Realtime sockets (ref §4)
# ---------------------------------------------------------------------------------------------


class ProtocolViolation(Exception):
    """A client frame realtime-py would never send (ref §4.2/4.3)."""


@dataclass
class Binding:
    spec: JSON  # exactly as sent (ref §4.7: echo exactly)
    id: int
    predicate: Predicate | None


@dataclass
class Channel:
    topic: str
    join_ref: str | None
    bindings: list[Binding]


def binding_id(spec: Mapping[str, Any]) -> int:
    """A stable non-zero id below 2**27, like `:erlang.phash2(params)` (ref §4.4)."""
    value = zlib.crc32(json.dumps(spec, sort_keys=True).encode()) & (2**27 - 1)
    return value or 1


class Socket:
    """One websocket connection: a sans-I/O protocol, the stream writer and joined channels."""

    def __init__(self, protocol: ServerProtocol, writer: asyncio.StreamWriter) -> None:
        self.protocol = protocol
        self.writer = writer
        self.channels: dict[str, Channel] = {}
        self.frames_sent = 0
        self._fragments: list[bytes] = []

    def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)
            elif self.writer.can_write_eof():
                with contextlib.suppress(OSError):
                    self.writer.write_eof()

    def send(self, topic: str, event: str, payload: JSON, ref: str | None) -> None:
        """A server frame: key order as the fixtures, `ref` always present (ref §4.7)."""
        if self.protocol.state is not State.OPEN:
            return  # the peer started closing in the same read; Phoenix drops replies too
        frame = {"topic": topic, "event": event, "payload": payload, "ref": ref}
        self.protocol.send_text(json.dumps(frame, separators=(",", ":")).encode())
        self.frames_sent += 1
        self.flush()

    def text_messages(self, events: Iterable[object]) -> list[str]:
        """Reassemble text messages; binary frames are not vsn 1.0.0 (ref §4.2)."""
        messages = []
        for frame in events:
            if not isinstance(frame, Frame):
                continue
            if frame.opcode == Opcode.BINARY:
                raise ProtocolViolation("binary frame on a vsn=1.0.0 socket")
            if frame.opcode in (Opcode.TEXT, Opcode.CONT):
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    messages.append(b"".join(self._fragments).decode())
                    self._fragments = []
        return messages


def validate_client_frame(text: str) -> JSON:
    """ref §4.2: a JSON object with exactly event, payload, topic, ref, join_ref in that order."""
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise ProtocolViolation(f"not JSON: {text[:200]!r}") from exc
    if not isinstance(frame, dict) or list(frame) != _CLIENT_FRAME_KEYS:
        raise ProtocolViolation(f"not a vsn 1.0.0 client frame: {text[:200]!r}")
    if not isinstance(frame["event"], str) or not isinstance(frame["topic"], str):
        raise ProtocolViolation(f"event/topic must be strings: {text[:200]!r}")
    if not isinstance(frame["payload"], dict):
        raise ProtocolViolation(f"payload must be an object: {text[:200]!r}")
    for key in ("ref", "join_ref"):
        if frame[key] is not None and not isinstance(frame[key], str):
            raise ProtocolViolation(f"{key} must be a string or null: {text[:200]!r}")
    return frame


def parse_realtime_filter(table: Table, text: str) -> Predicate:
    """ref §2: `col=op.value`, the server supports eq, neq, lt, lte, gt, gte, in."""
    column, eq, expr = text.partition("=")
    op = expr.partition(".")[0]
    if not eq or op not in _REALTIME_FILTER_OPS or column not in table.columns:
        raise ValueError(text)
    return parse_condition(table, column, expr)


# ---------------------------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------------------------


class SupabaseEmulator:
    """PostgREST subset + Realtime for one table, on 127.0.0.1 and a free port."""

    def __init__(
        self,
        service_key: str = "service-role-key",
        anon_key: str = "anon-key",
        table: str = "media_assets",
        columns: Sequence[str] | Mapping[str, str] | None = None,
        seed: int = 0,
        replica_identity_full: bool = False,
    ) -> None:
        self.service_key = service_key
        self.anon_key = anon_key
        # Tokens accepted as Realtime `access_token` besides the keys (stand-ins for user JWTs).
        self.extra_tokens: set[str] = set()
        self.table = Table(table, _column_types(columns))
        # media-tui's name claims (`media-tui schema`): public_id is the primary key there; the
        # emulator keeps its internal row id, which is never rendered (not a column).
        self.claims = Table(
            f"{table}_claims", dict(CLAIM_COLUMNS), not_null=frozenset(CLAIM_COLUMNS)
        )
        self.tables = {self.table.name: self.table, self.claims.name: self.claims}
        # ref §4.5: UPDATE old_record is the full row only with REPLICA IDENTITY FULL; DELETE
        # old_record is always only the primary key because RLS is on (ref §7).
        self.replica_identity_full = replica_identity_full
        self.delay = 0.0
        self.duplicate_events = False
        self.reorder_events = False
        # Ongoing, bounded reordering (0 = off): committed changes wait in a buffer, and each
        # step delivers one drawn at random among the oldest `reorder_window`; the buffer is
        # drained `reorder_drain` s after the last commit, so nothing stays behind when writes
        # stop. `delivery_jitter` adds up to that many seconds to each delivery (on top of
        # `delay`). Both draw from their own seeded stream.
        self.reorder_window = 0
        self.reorder_drain = 0.1
        self.delivery_jitter = 0.0
        self._delivery_rng = random.Random(f"{seed}:delivery")
        self._window: list[Change] = []
        self._drain_timer: asyncio.TimerHandle | None = None
        self._in_transit = 0  # deliveries scheduled by `delay` / `delivery_jitter`, not yet sent
        # Fault switches for watchdog tests (ref §9 websocket 6).
        self.join_error: str | None = None  # answer every phx_join with status error, this reason
        self.ignore_joins = False  # never answer phx_join: the client reports TIMED_OUT
        self._refuse_until = 0.0  # time.monotonic() until which websocket handshakes get 503
        # REST fault switches, settable at any time; they touch only /rest/v1/ requests matching
        # `rest_match` (a regex searched in "METHOD /path?query"; None = all). `rest_latency`
        # holds a request before the database sees it (a slow gateway); like the gateway's nginx,
        # a request whose client hung up meanwhile is abandoned, never executed. After the hold,
        # `rest_drop_rate` closes the connection without an answer and `rest_failure_rate`
        # answers `rest_failure_status` (503: PGRST001, 504: PGRST003, others the gateway's
        # code-less body), both before any processing, so nothing is written.
        self.rest_latency = 0.0
        self.rest_failure_rate = 0.0
        self.rest_failure_status = 503
        self.rest_drop_rate = 0.0
        self.rest_match: str | None = None
        self.rest_failures_injected = 0
        self.rest_drops_injected = 0
        self.rest_abandoned = 0  # held requests whose client went away before the database saw them
        self._rest_held = 0
        self._fault_rng = random.Random(seed)  # its own stream: `reorder_events` keeps its draws
        self.rest_requests = 0
        self.heartbeats = 0
        self.heartbeat_seen = threading.Event()  # set on every heartbeat, for tests to wait on
        self.requests: list[tuple[str, str, int]] = []
        self.internal_errors: list[str] = []
        self.protocol_violations: list[str] = []
        self.leaked_threads: list[threading.Thread] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._paused = False
        self._held: list[Change] = []
        self._sockets: set[Socket] = set()
        self._frames_closed_sockets = 0
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Future[None] | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SupabaseEmulator:
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(ready)), name="supabase-emulator", daemon=True
        )
        self._thread.start()
        self.port = ready.result(timeout=10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        stop = self._stop
        if stop is not None:
            self._loop.call_soon_threadsafe(_resolve, stop)
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            self.leaked_threads.append(self._thread)
        self._loop = None

    def __enter__(self) -> SupabaseEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _main(self, ready: concurrent.futures.Future[int]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        server = await asyncio.start_server(
            self._on_connection, "127.0.0.1", 0, limit=_MAX_HEAD_BYTES
        )
        ready.set_result(server.sockets[0].getsockname()[1])
        await self._stop
        server.close()
        # Abort live connections (keep-alive HTTP and websockets) so nothing outlives stop().
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._conn_tasks):
            task.cancel()
        await asyncio.gather(*self._conn_tasks, return_exceptions=True)
        await server.wait_closed()

    # -- control plane (thread-safe) -----------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the emulator loop (where all state changes happen) and wait for it."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("emulator not started")
        if threading.current_thread() is self._thread:
            return fn()  # already on the loop: waiting for it would deadlock

        async def run() -> T:
            return fn()

        return self._run(loop, run())

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=10)

    @property
    def rows(self) -> list[Row]:
        """A snapshot of the table, rendered as PostgREST would return it, ordered by id."""
        with self._lock:
            return [self.table.render(r) for _, r in sorted(self.table.rows.items())]

    @property
    def sockets_open(self) -> int:
        return len(self._sockets)

    @property
    def frames_sent(self) -> int:
        def count() -> int:
            return self._frames_closed_sockets + sum(s.frames_sent for s in self._sockets)

        # Read on the loop while it runs: the socket set changes there while a test thread asks.
        return count() if self._loop is None else self._call(count)

    def drop_all_sockets(self) -> None:
        """Abort every websocket's TCP connection: the client sees 1006 (ref §5)."""

        def drop() -> None:
            for sock in list(self._sockets):
                sock.writer.transport.abort()

        self._call(drop)

    def close_all_sockets(self, code: int = 1000, reason: str = "bye") -> None:
        """A normal websocket close: the client sees ConnectionClosedOK and reconnects (ref §5)."""

        def close() -> None:
            for sock in list(self._sockets):
                sock.protocol.send_close(code, reason)
                sock.flush()

        self._call(close)

    def refuse_sockets(self, seconds: float) -> None:
        """Answer websocket handshakes with 503 for `seconds`, to exhaust the retry budget (ref §5)."""
        self._refuse_until = time.monotonic() + seconds

    def crash_channels(self) -> None:
        """`phx_error` on every joined channel (its process crashed); the client rejoins (ref §4.4)."""

        def crash() -> None:
            for sock in list(self._sockets):
                for channel in list(sock.channels.values()):
                    sock.send(channel.topic, "phx_error", {}, channel.join_ref)
                    del sock.channels[channel.topic]

        self._call(crash)

    def expire_channels(self, message: str = "Token has expired 0 seconds ago") -> None:
        """A channel-level `system` error then `phx_close`: the client ends in CLOSED (ref §2, §4.4)."""

        def expire() -> None:
            for sock in list(self._sockets):
                for channel in list(sock.channels.values()):
                    self._channel_error(sock, channel, message)

        self._call(expire)

    def pause_delivery(self) -> None:
        self._call(lambda: setattr(self, "_paused", True))

    def resume_delivery(self) -> None:
        """Deliver held events (shuffled with the seeded RNG if `reorder_events`)."""

        def resume() -> None:
            self._paused = False
            held, self._held = self._held, []
            if self.reorder_events:
                self._rng.shuffle(held)
            for change in held:
                self._dispatch(change)

        self._call(resume)

    def send_raw(self, message: str | bytes | Callable[[str], str]) -> int:
        """Send what a broken or hostile server might: one frame per socket, never validated.

        A `str` is sent as a text frame and `bytes` as a binary frame, to every open socket; a
        callable is called with each joined channel's topic and its text sent on that socket
        (for frames that must name the topic to reach the channel). Returns the frames sent.
        """

        def send() -> int:
            sent = 0
            for sock in list(self._sockets):
                if sock.writer.transport.is_closing() or sock.protocol.state is not State.OPEN:
                    continue
                if callable(message):
                    texts = [message(topic) for topic in sock.channels]
                    for text in texts:
                        sock.protocol.send_text(text.encode("utf-8", "surrogatepass"))
                        sent += 1
                elif isinstance(message, bytes):
                    sock.protocol.send_binary(message)
                    sent += 1
                else:
                    sock.protocol.send_text(message.encode("utf-8", "surrogatepass"))
                    sent += 1
                sock.flush()
            return sent

        return self._call(send)

    def send_change_data(self, data: Any) -> int:
        """A `postgres_changes` frame whose `data` is exactly `data` (any JSON value, unchecked),
        addressed to every joined channel's bindings, as a buggy or hostile server could send.
        Returns the frames sent."""

        def send() -> int:
            sent = 0
            for sock in list(self._sockets):
                for channel in list(sock.channels.values()):
                    ids = [b.id for b in channel.bindings]
                    if ids:
                        payload = {"ids": ids, "data": data}
                        self._safe_send(sock, channel.topic, "postgres_changes", payload, None)
                        sent += 1
            return sent

        return self._call(send)

    def write_as_other(self, op: str, row: Mapping[str, Any]) -> Row | None:
        """Write as another operator: same table rules and Realtime events as a REST write.

        INSERT takes the new row; UPDATE and DELETE find the row by `id` or `public_id`.
        Returns the rendered new row (INSERT/UPDATE) or the deleted row; raises PostgrestError.
        """
        return self._call(lambda: self._write_other(op.upper(), dict(row)))

    def _write_other(self, op: str, row: Row) -> Row | None:
        table = self.table
        with self._lock:
            if op == "INSERT":
                values = {k: table.coerce_input(k, v) for k, v in row.items()}
                new = table.insert(values)
                self._publish(Change("INSERT", new, {"id": new["id"]}, table.now()))
                return table.render(new)
            key = "id" if "id" in row else "public_id"
            target = table.find_by(key, row[key])
            if target is None:
                return None
            if op == "UPDATE":
                values = {k: table.coerce_input(k, v) for k, v in row.items() if k != key}
                old, new = table.update(target["id"], values)
                self._publish(Change("UPDATE", new, old, table.now()))
                return table.render(new)
            if op == "DELETE":
                del table.rows[target["id"]]
                self._publish(Change("DELETE", None, target, table.now()))
                return table.render(target)
        raise ValueError(f"unknown op {op!r}")

    # -- connections ---------------------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conn_tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the peer went away; nothing to answer
        except asyncio.CancelledError:
            pass  # shutdown
        except Exception:
            self._internal_error()
        finally:
            self._conn_tasks.discard(task)
            self._writers.discard(writer)
            writer.close()  # flushes a pending close frame; stop() aborts instead

    def _internal_error(self) -> None:
        self.internal_errors.append(traceback.format_exc())

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            request = await read_request(reader)
            if request is None:
                return
            if (
                request.path == "/realtime/v1/websocket"
                and "websocket" in request.headers.get("upgrade", "").lower()
            ):
                await self._serve_websocket(request, reader, writer)
                return
            faulted = await self._rest_fault(request, reader, writer)
            if faulted is _DROPPED:
                self.requests.append((request.method, request.path, 0))
                return  # closed without a status line, as a dropped connection looks
            response = faulted if faulted is not None else self._http(request)
            self.requests.append((request.method, request.path, response.status))
            writer.write(encode_response(response, request.method == "HEAD"))
            await writer.drain()
            if request.headers.get("connection", "").lower() == "close":
                return

    @property
    def rest_held(self) -> int:
        """REST requests being held by `rest_latency` right now."""
        return self._rest_held

    def seed_rest_faults(self, seed: int) -> None:
        self._fault_rng = random.Random(seed)

    async def _rest_fault(
        self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> HttpResponse | object | None:
        """Apply the REST fault switches: a response, `_DROPPED`, or None to answer normally."""
        if not request.path.startswith("/rest/v1/"):
            return None
        pattern = self.rest_match
        if pattern is not None and re.search(pattern, f"{request.method} {request.target}") is None:
            return None
        latency = self.rest_latency
        if latency > 0:
            self._rest_held += 1
            try:
                await asyncio.sleep(latency)
            finally:
                self._rest_held -= 1
            if reader.at_eof() or reader.exception() is not None or writer.is_closing():
                self.rest_abandoned += 1
                return _DROPPED  # the client hung up: the gateway never passes the request on
        if self.rest_drop_rate > 0 and self._fault_rng.random() < self.rest_drop_rate:
            self.rest_drops_injected += 1
            return _DROPPED
        if self.rest_failure_rate > 0 and self._fault_rng.random() < self.rest_failure_rate:
            self.rest_failures_injected += 1
            return _failure_response(self.rest_failure_status)
        return None

    def _http(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/realtime/v1/"):
            return json_response(404, {"error": "not found"})
        if not request.path.startswith("/rest/v1/"):
            return json_response(404, {"message": "no Route matched with those values"})
        self.rest_requests += 1
        try:
            role = self._authenticate(request.headers)
            with self._lock:
                return self._rest(request, role)
        except PostgrestError as err:
            return json_response(err.status, err.body())
        except Exception:
            self._internal_error()
            return json_response(
                500,
                {
                    "code": "XX000",
                    "message": "emulator internal error",
                    "details": None,
                    "hint": None,
                },
            )

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        """The gateway checks `apikey`; PostgREST then checks the bearer token (ref §1, §3)."""
        keys = {self.service_key: "service_role", self.anon_key: "anon"}
        apikey = headers.get("apikey")
        if not apikey:
            raise PostgrestError(
                None,
                "No API key found in request",
                hint="No `apikey` request header or url param was found.",
            )
        if apikey not in keys:
            raise PostgrestError(
                None,
                "Invalid API key",
                hint="Double check your Supabase `anon` or `service_role` API key.",
            )
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token not in keys:
            raise PostgrestError("PGRST301", "JWSError JWSInvalidSignature")
        return keys[token]

    # -- PostgREST -----------------------------------------------------------------------------

    def _rest(self, request: HttpRequest, role: str) -> HttpResponse:
        name = request.path[len("/rest/v1/") :].strip("/")
        table = self.tables.get(name)
        if table is None:
            raise PostgrestError(
                "PGRST205",
                f"Could not find the table 'public.{name}' in the schema cache",
                hint=f"Perhaps you meant the table 'public.{self.table.name}'",
            )
        prefer = parse_prefer(request.headers.get("prefer", ""))
        params = request.params
        if request.method in ("GET", "HEAD"):
            return self._select(table, request, params, prefer)
        if role == "anon":  # ref §7: anon has only `grant select`
            raise PostgrestError("42501", f"permission denied for table {table.name}")
        body = self._json_body(request)
        if request.method == "POST":
            return self._insert(table, params, prefer, body)
        if request.method == "PATCH":
            return self._update(table, params, prefer, body)
        if request.method == "DELETE":
            return self._delete(table, params, prefer)
        return json_response(
            405,
            {
                "code": "PGRST117",
                "message": f"Unsupported HTTP method: {request.method}",
                "details": None,
                "hint": None,
            },
        )

    @staticmethod
    def _json_body(request: HttpRequest) -> Any:
        if not request.body:
            return {}
        try:
            return json.loads(request.body)
        except ValueError as exc:
            raise PostgrestError("PGRST102", "Empty or invalid json", str(exc)) from exc

    def _select(
        self,
        table: Table,
        request: HttpRequest,
        params: list[tuple[str, str]],
        prefer: dict[str, str],
    ) -> HttpResponse:
        values = dict(params)
        select = parse_select(table, values.get("select"))
        predicate, _ = parse_filters(table, params)
        rows = [r for r in table.rows.values() if predicate(r) is True]
        rows = _order_rows(table, rows, values["order"]) if "order" in values else rows
        total = len(rows)
        offset = self._int_param(values, "offset", 0)
        limit = self._int_param(values, "limit", None)
        page = rows[offset : None if limit is None else offset + limit]
        body = [table.render(r, select) for r in page]
        counted = prefer.get("count") in ("exact", "planned", "estimated")
        headers = {
            "Content-Range": self._content_range(offset, len(page), total if counted else None)
        }
        if "application/vnd.pgrst.object+json" in request.headers.get("accept", ""):
            if len(body) != 1:
                raise PostgrestError(
                    "PGRST116",
                    "JSON object requested, multiple (or no) rows returned",
                    f"The result contains {len(body)} rows",
                )
            return json_response(200, body[0], headers)
        partial = counted and len(page) < total
        return json_response(206 if partial else 200, body, headers)

    @staticmethod
    def _int_param(values: Mapping[str, str], name: str, default: int | None) -> Any:
        if name not in values:
            return default
        try:
            return max(0, int(values[name]))
        except ValueError as exc:
            raise PostgrestError("PGRST100", f'"failed to parse {name} ({values[name]})"') from exc

    @staticmethod
    def _content_range(offset: int, count: int, total: int | None) -> str:
        """ref §3: `0-24/3573458`, `0-14/*`, and `*/0` / `*/*` for an empty result."""
        span = f"{offset}-{offset + count - 1}" if count else "*"
        return f"{span}/{'*' if total is None else total}"

    def _payload_rows(
        self, table: Table, params: Mapping[str, str], body: Any
    ) -> tuple[list[JSON], list[str] | None]:
        rows = body if isinstance(body, list) else [body]
        if not all(isinstance(r, dict) for r in rows):
            raise PostgrestError("PGRST102", "Empty or invalid json")
        if "columns" in params:  # ref §3: bulk calls send `columns="a","b"` (quoted, any order)
            columns = [item.strip() for item, _ in _split_list(params["columns"])]
            for col in columns:
                table.coerce_input(col, None)  # PGRST204 for unknown names
            return rows, columns
        if isinstance(body, list) and rows and any(set(r) != set(rows[0]) for r in rows):
            raise PostgrestError("PGRST102", "All object keys must match")
        return rows, None

    def _coerced(
        self, table: Table, row: JSON, columns: list[str] | None, missing_default: bool
    ) -> tuple[Row, set[str]]:
        """A payload row as stored values, plus the columns that take their default."""
        if columns is None:
            return {k: table.coerce_input(k, v) for k, v in row.items()}, set()
        values = {c: table.coerce_input(c, row.get(c)) for c in columns}
        # Without `missing=default` absent keys are NULL, as json_populate_recordset gives them.
        defaults = {c for c in columns if c not in row} if missing_default else set()
        return values, defaults

    def _insert(
        self, table: Table, params: list[tuple[str, str]], prefer: dict[str, str], body: Any
    ) -> HttpResponse:
        values = dict(params)
        rows, columns = self._payload_rows(table, values, body)
        resolution = prefer.get("resolution")
        conflict_col = values.get("on_conflict", "id") if resolution else None
        if conflict_col is not None and conflict_col not in ("id", "public_id"):
            raise PostgrestError(
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            )
        snapshot = (copy.deepcopy(table.rows), table.next_id)
        changes: list[Change] = []
        returned: list[Row] = []
        try:
            for payload in rows:
                stored, defaults = self._coerced(
                    table, payload, columns, prefer.get("missing") == "default"
                )
                existing = (
                    table.find_by(conflict_col, stored.get(conflict_col)) if conflict_col else None
                )
                if existing is None:
                    new = table.insert(stored, defaults)
                    changes.append(Change("INSERT", new, {"id": new["id"]}, table.now()))
                    returned.append(new)
                elif resolution == "merge-duplicates":
                    update = {k: v for k, v in stored.items() if k not in defaults and k != "id"}
                    old, new = table.update(existing["id"], update)
                    changes.append(Change("UPDATE", new, old, table.now()))
                    returned.append(new)
        except PostgrestError:
            table.rows, table.next_id = snapshot  # one statement: all or nothing
            raise
        for change in changes:
            self._publish_from(table, change)
        inserted = any(c.type == "INSERT" for c in changes)
        # ref §3: upsert answers 201 if any row was inserted, 200 if all were updated.
        return self._write_response(
            table, 201 if inserted or not changes else 200, prefer, returned, values
        )

    def _write_response(
        self,
        table: Table,
        status: int,
        prefer: Mapping[str, str],
        rows: list[Row],
        params: Mapping[str, str],
    ) -> HttpResponse:
        counted = prefer.get("count") == "exact"
        headers = {"Content-Range": f"*/{len(rows) if counted else '*'}"}
        if prefer.get("return") == "representation":
            select = parse_select(table, params.get("select"))
            return json_response(status, [table.render(r, select) for r in rows], headers)
        # return=minimal: POST keeps 201 with an empty body; PATCH/DELETE answer 204.
        return HttpResponse(status if status == 201 else 204, b"", headers)

    def _matching(self, table: Table, params: list[tuple[str, str]], verb: str) -> list[Row]:
        predicate, filtered = parse_filters(table, params)
        if not filtered:  # Supabase loads pg-safeupdate for API roles
            raise PostgrestError("21000", f"{verb} requires a WHERE clause")
        return [r for _, r in sorted(table.rows.items()) if predicate(r) is True]

    def _update(
        self, table: Table, params: list[tuple[str, str]], prefer: dict[str, str], body: Any
    ) -> HttpResponse:
        if not isinstance(body, dict):
            raise PostgrestError("PGRST102", "Empty or invalid json")
        stored = {k: table.coerce_input(k, v) for k, v in body.items()}
        targets = self._matching(table, params, "UPDATE")
        snapshot = (copy.deepcopy(table.rows), table.next_id)
        changes = []
        try:
            for row in targets:
                old, new = table.update(row["id"], stored)
                changes.append(Change("UPDATE", new, old, table.now()))
        except PostgrestError:
            table.rows, table.next_id = snapshot
            raise
        for change in changes:
            self._publish_from(table, change)
        return self._write_response(
            table, 200, prefer, [c.record for c in changes if c.record], dict(params)
        )

    def _delete(
        self, table: Table, params: list[tuple[str, str]], prefer: dict[str, str]
    ) -> HttpResponse:
        targets = self._matching(table, params, "DELETE")
        for row in targets:
            del table.rows[row["id"]]
            self._publish_from(table, Change("DELETE", None, row, table.now()))
        return self._write_response(table, 200, prefer, targets, dict(params))

    def _publish_from(self, table: Table, change: Change) -> None:
        # Only the catalogue table is in the supabase_realtime publication (ref §7); the
        # claims table is not, so its writes reach no subscriber.
        if table is self.table:
            self._publish(change)

    # -- Realtime delivery ---------------------------------------------------------------------

    def _publish(self, change: Change) -> None:
        """Called on the loop thread right after a commit, in commit order."""
        if self._paused:
            self._held.append(change)
        else:
            self._dispatch(change)

    def _dispatch(self, change: Change) -> None:
        assert self._loop is not None
        copies = [change] * (2 if self.duplicate_events else 1)
        if self.reorder_window <= 0:
            self._drain()  # the window was just switched off: what it held goes first
            for copy_ in copies:
                self._send_later(copy_)
            return
        # Duplicates enter the window separately, so a copy may arrive long after the other.
        self._window.extend(copies)
        while len(self._window) >= self.reorder_window:
            self._step()
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self._drain_timer = self._loop.call_later(self.reorder_drain, self._drain)

    def _step(self) -> None:
        """Send one change drawn among the oldest `reorder_window` waiting in the window."""
        reach = min(len(self._window), max(1, self.reorder_window))
        self._send_later(self._window.pop(self._delivery_rng.randrange(reach)))

    def _drain(self) -> None:
        """Writes stopped (or reordering was switched off): send all the window holds."""
        self._drain_timer = None
        while self._window:
            self._step()

    def _send_later(self, change: Change) -> None:
        assert self._loop is not None
        wait = self.delay
        if self.delivery_jitter > 0:
            wait += self._delivery_rng.uniform(0, self.delivery_jitter)
        if wait > 0:
            self._in_transit += 1
            self._loop.call_later(wait, self._deliver_late, change)
        else:
            self._deliver(change)

    def _deliver_late(self, change: Change) -> None:
        self._in_transit -= 1
        self._deliver(change)

    def flush_delivery(self) -> None:
        """Send what the reorder window holds now (still in its random order)."""

        def flush() -> None:
            if self._drain_timer is not None:
                self._drain_timer.cancel()
            self._drain()

        self._call(flush)

    @property
    def undelivered(self) -> int:
        """Changes committed and not yet sent: in the reorder window, held, or delayed."""
        return self._call(lambda: len(self._window) + len(self._held) + self._in_transit)

    def _deliver(self, change: Change) -> None:
        data = self._change_data(change)
        for sock in list(self._sockets):
            for channel in list(sock.channels.values()):
                ids = [b.id for b in channel.bindings if self._binding_matches(b, change)]
                if ids:
                    payload = {"ids": ids, "data": data}
                    self._safe_send(sock, channel.topic, "postgres_changes", payload, None)

    def _change_data(self, change: Change) -> JSON:
        """ref §4.5: record for INSERT/UPDATE, old_record for UPDATE/DELETE, all required keys."""
        table = self.table
        data: JSON = {
            "schema": "public",
            "table": table.name,
            "commit_timestamp": render_commit_timestamp(change.commit),
            "type": change.type,
            "columns": [{"name": n, "type": t} for n, t in table.columns.items()],
            "errors": None,
        }
        if change.record is not None:
            data["record"] = table.render(change.record)
        if change.type == "UPDATE":
            full = self.replica_identity_full
            data["old_record"] = table.render(change.old) if full else {"id": change.old["id"]}
        elif change.type == "DELETE":
            data["old_record"] = {"id": change.old["id"]}
        return data

    def _binding_matches(self, binding: Binding, change: Change) -> bool:
        spec = binding.spec
        if spec.get("event") not in ("*", change.type):
            return False
        if spec.get("schema") != "public" or spec.get("table") not in (None, self.table.name):
            return False
        # ref §2: DELETE events cannot be filtered (only the key is known with RLS on).
        if binding.predicate is None or change.type == "DELETE" or change.record is None:
            return True
        return binding.predicate(change.record) is True

    def _safe_send(
        self, sock: Socket, topic: str, event: str, payload: JSON, ref: str | None
    ) -> None:
        if sock.writer.transport.is_closing():
            return
        try:
            sock.send(topic, event, payload, ref)
        except Exception:
            self._internal_error()

    # -- Realtime websocket --------------------------------------------------------------------

    def _token_ok(self, token: Any) -> bool:
        return isinstance(token, str) and token in {
            self.service_key,
            self.anon_key,
            *self.extra_tokens,
        }

    async def _serve_websocket(
        self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        params = dict(request.params)
        # ref §4.1: the key comes as `?apikey=`; a refused handshake is an HTTP error with JSON.
        if not self._token_ok(params.get("apikey")) or params.get("apikey") in self.extra_tokens:
            self._refuse(writer, request, 401, "Invalid API key")
            return
        if time.monotonic() < self._refuse_until:
            self._refuse(writer, request, 503, "refused by the test")
            return
        if params.get("vsn") != "1.0.0":  # realtime-py 2.34.1 only speaks 1.0.0 (ref §4.2)
            self._refuse(writer, request, 400, "unsupported vsn")
            return
        protocol = ServerProtocol(max_size=_WS_MAX_SIZE)
        protocol.receive_data(request.head)
        events = protocol.events_received()
        response = protocol.accept(events[0]) if events and isinstance(events[0], Request) else None
        if response is None or response.status_code != 101:
            self._refuse(writer, request, 400, "bad websocket handshake")
            return
        protocol.send_response(response)
        self.requests.append((request.method, request.path, 101))
        sock = Socket(protocol, writer)
        sock.flush()
        self._sockets.add(sock)
        try:
            await self._websocket_loop(sock, reader)
        finally:
            self._sockets.discard(sock)
            self._frames_closed_sockets += sock.frames_sent

    def _refuse(
        self, writer: asyncio.StreamWriter, request: HttpRequest, status: int, error: str
    ) -> None:
        self.requests.append((request.method, request.path, status))
        response = json_response(status, {"error": error}, {"Connection": "close"})
        writer.write(encode_response(response, False))

    async def _websocket_loop(self, sock: Socket, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(65536)
            if data:
                sock.protocol.receive_data(data)
            else:
                sock.protocol.receive_eof()
            try:
                for text in sock.text_messages(sock.protocol.events_received()):
                    self._on_frame(sock, validate_client_frame(text))
            except ProtocolViolation as violation:
                # Phoenix crashes the socket process on an undecodable frame: the socket closes.
                self.protocol_violations.append(str(violation))
                sock.protocol.send_close(1011, "invalid frame")
            sock.flush()
            if not data or sock.protocol.close_expected() or sock.protocol.state is State.CLOSED:
                await sock.writer.drain()
                return

    def _on_frame(self, sock: Socket, frame: JSON) -> None:
        topic, event, ref = frame["topic"], frame["event"], frame["ref"]
        if topic == "phoenix":
            if event != "heartbeat":
                raise ProtocolViolation(f"unexpected event {event!r} on topic phoenix")
            self.heartbeats += 1
            self.heartbeat_seen.set()
            sock.send("phoenix", "phx_reply", {"status": "ok", "response": {}}, ref)
            return
        if not topic.startswith("realtime:"):
            raise ProtocolViolation(f"topic without realtime: prefix: {topic!r}")
        if event == "phx_join":
            self._join(sock, frame)
            return
        channel = sock.channels.get(topic)
        if channel is None:  # ref §4.4: a push to an unjoined topic
            sock.send(
                topic,
                "phx_reply",
                {"status": "error", "response": {"reason": "unmatched topic"}},
                ref,
            )
            return
        if frame["join_ref"] != channel.join_ref:
            raise ProtocolViolation(
                f"join_ref {frame['join_ref']!r} is not the join's {channel.join_ref!r}"
            )
        if event == "phx_leave":
            sock.send(topic, "phx_reply", {"status": "ok", "response": {}}, ref)
            sock.send(topic, "phx_close", {}, channel.join_ref)
            del sock.channels[topic]
        elif event == "access_token":
            self._access_token(sock, channel, frame["payload"])
        elif event in ("broadcast", "presence"):
            pass  # accepted; fan-out is not emulated
        else:
            raise ProtocolViolation(f"unknown channel event {event!r}")

    def _access_token(self, sock: Socket, channel: Channel, payload: JSON) -> None:
        token = payload.get("access_token")
        if list(payload) != ["access_token"] or not isinstance(token, str):
            raise ProtocolViolation(f"bad access_token payload {payload!r}")
        if token.startswith("sb_") or self._token_ok(token):
            return  # ref §2: accepted silently; `sb_` keys are ignored by the server
        self._channel_error(sock, channel, "Invalid JWT Token")

    def _channel_error(self, sock: Socket, channel: Channel, message: str) -> None:
        """ref §4.4: a channel-level `system` error, then `phx_close` with ref = join_ref."""
        name = channel.topic[len("realtime:") :]
        payload = {"channel": name, "extension": "system", "message": message, "status": "error"}
        sock.send(channel.topic, "system", payload, None)
        sock.send(channel.topic, "phx_close", {}, channel.join_ref)
        sock.channels.pop(channel.topic, None)

    def _join(self, sock: Socket, frame: JSON) -> None:
        topic, ref, payload = frame["topic"], frame["ref"], frame["payload"]
        if ref is None or frame["join_ref"] != ref:
            raise ProtocolViolation("phx_join needs ref == join_ref (ref §4.3)")
        config = payload.get("config")
        specs = config.get("postgres_changes", []) if isinstance(config, dict) else None
        if not isinstance(specs, list) or not all(self._valid_spec(s) for s in specs):
            raise ProtocolViolation(f"bad phx_join config {config!r}")
        old = sock.channels.pop(topic, None)
        if old is not None:  # ref §4.4: a second join closes the old channel first
            sock.send(topic, "phx_close", {}, old.join_ref)
        if self.ignore_joins:
            return
        if not self._token_ok(payload.get("access_token")) or self.join_error is not None:
            # ref §4.4: the reason is "<Code>: <msg>".
            text = self.join_error or "InvalidJWTToken: Invalid JWT Token"
            sock.send(topic, "phx_reply", {"status": "error", "response": {"reason": text}}, ref)
            return
        bindings, bad = [], []
        for spec in specs:
            predicate = None
            try:
                if spec.get("table") not in (None, self.table.name) or spec["schema"] != "public":
                    raise ValueError(spec)
                if "filter" in spec:
                    predicate = parse_realtime_filter(self.table, spec["filter"])
            except (ValueError, PostgrestError):
                bad.append(spec)
            bindings.append(Binding(dict(spec), binding_id(spec), predicate))
        sock.channels[topic] = Channel(topic, ref, bindings)
        echoed = [{**b.spec, "id": b.id} for b in bindings]
        sock.send(
            topic, "phx_reply", {"status": "ok", "response": {"postgres_changes": echoed}}, ref
        )
        if specs:
            self._system_subscribed(sock, topic, bad)

    @staticmethod
    def _valid_spec(spec: Any) -> bool:
        """ref §4.3: `{"event","schema"[,"table"][,"filter"][,"select"]}`, as realtime-py sends it."""
        if not isinstance(spec, dict) or spec.get("event") not in (
            "*",
            "INSERT",
            "UPDATE",
            "DELETE",
        ):
            return False
        allowed = {"event", "schema", "table", "filter", "select"}
        return isinstance(spec.get("schema"), str) and set(spec) <= allowed

    @staticmethod
    def _system_subscribed(sock: Socket, topic: str, bad: list[JSON]) -> None:
        name = topic[len("realtime:") :]
        if not bad:
            message, status = "Subscribed to PostgreSQL", "ok"
        else:  # ref §4.4: postgres_changes errors use status error and leave the channel open
            spec = bad[0]
            message = (
                "Unable to subscribe to changes with given parameters. Please check Realtime is "
                "enabled for the given connect parameters: "
                f"[event: {spec.get('event')}, schema: {spec.get('schema')}, "
                f"table: {spec.get('table')}, filters: [{spec.get('filter', '')}]]"
            )
            status = "error"
        payload = {
            "channel": name,
            "extension": "postgres_changes",
            "message": message,
            "status": status,
        }
        sock.send(topic, "system", payload, None)


def _column_types(columns: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Column name → pg typname; names not in DEFAULT_COLUMNS are jsonb. `id` always comes first."""
    if columns is None:
        return dict(DEFAULT_COLUMNS)
    if isinstance(columns, Mapping):
        types = dict(columns)
    else:
        types = {c: DEFAULT_COLUMNS.get(c, "jsonb") for c in columns}
    types.pop("id", None)
    return {"id": "int8", **types}


_DROPPED = object()  # `_rest_fault`'s answer for "close the connection, answer nothing"

# PostgREST's own 503/504 bodies (errors.rst: PGRST001 "could not connect with the database due
# to an internal error", PGRST003 "timed out acquiring a pool connection"); any other status
# comes from the gateway in front, whose bodies have no code (ref §3 "Errors").
_FAILURE_BODIES: dict[int, JSON] = {
    503: {
        "code": "PGRST001",
        "details": None,
        "hint": None,
        "message": "Could not connect with the database due to an internal error.",
    },
    504: {
        "code": "PGRST003",
        "details": None,
        "hint": None,
        "message": "Timed out acquiring connection from connection pool.",
    },
}


def _failure_response(status: int) -> HttpResponse:
    body = _FAILURE_BODIES.get(status) or {"message": _REASONS.get(status, "Error"), "hint": None}
    return json_response(status, body)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
