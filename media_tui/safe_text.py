"""Making untrusted strings safe to show on a terminal.

File names, public ids, tags and anything else that comes from disk or the network may hold
characters that a terminal obeys instead of showing: ESC starts a CSI/OSC sequence (clear the
screen, set the clipboard), C1 controls do the same in one byte, bidi overrides reorder the
text around them so a name can pose as another, and lone surrogates (what `os.fsdecode`
makes of a non-UTF-8 file name) cannot even be encoded for output. Every place that puts such
text on screen passes it through `safe_text` first; `--json` output goes through
`safe_json_dumps`, which escapes the same characters while keeping the JSON exact.

This module only neutralises control characters. Markup is a separate concern: render the
result as plain text (`Content(...)`, `markup=False`), never through a markup parser.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from rich.cells import cell_len, get_character_cell_size

__all__ = ["REPLACEMENT", "safe_json_dumps", "safe_text", "truncate"]

REPLACEMENT = "\ufffd"
ELLIPSIS = "…"

# Bidi embeddings/overrides/isolates and marks. All are also non-printable to `str.isprintable`,
# but listing them keeps the guarantee explicit and independent of the Unicode database version.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_LINE_SEPARATORS = frozenset("\u2028\u2029")
_ALWAYS_REPLACED = _BIDI_CONTROLS | _LINE_SEPARATORS

# Characters json.dumps(ensure_ascii=False) leaves raw but a terminal may act on. JSON itself
# already escapes C0 controls; everything else non-printable is caught by the callback below.
_JSON_SUSPECT = re.compile(r"[^\x20-\x7e]")


def safe_text(
    value: str | bytes | os.PathLike[str] | os.PathLike[bytes], *, keep_newlines: bool = False
) -> str:
    """Return `value` as a string with every terminal-controlling character replaced by U+FFFD.

    Replaced: C0 controls (except `\\n` when `keep_newlines`), DEL, C1 controls, lone
    surrogates (undecodable bytes of a file name), bidi controls, U+2028/U+2029 and anything
    else `str.isprintable()` rejects, except the ordinary space. A tab becomes one space, so
    columns stay predictable. Bytes and bytes paths are decoded with `os.fsdecode`.
    """
    text = _as_str(value)
    # Fast path: this runs for every grid cell, and almost every name is plain ASCII.
    if text.isascii() and text.isprintable():
        return text
    return "".join(_safe_char(ch, keep_newlines) for ch in text)


def _as_str(value: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    if isinstance(value, str):
        return value
    return os.fsdecode(value)


def _safe_char(ch: str, keep_newlines: bool) -> str:
    if ch == "\t":
        return " "
    if ch == "\n" and keep_newlines:
        return ch
    if ch in _ALWAYS_REPLACED or not ch.isprintable():
        # Surrogates (U+D800–U+DFFF) are category Cs, so isprintable() is False for them too.
        return REPLACEMENT
    return ch


def safe_json_dumps(obj: Any) -> str:
    """`json.dumps` with real Unicode, but with terminal-dangerous characters `\\uXXXX`-escaped.

    The output is valid JSON and `json.loads` returns exactly `obj` again, yet it contains no
    DEL, C1 control, lone surrogate, line/paragraph separator, bidi control or other
    non-printable character, so it can be printed to a terminal and encoded as UTF-8 (a raw
    lone surrogate would make `print` raise). One limit is JSON's own: a high surrogate
    immediately followed by a low one reads back as the single astral character they encode;
    `os.fsdecode` only ever produces low surrogates, so file names round-trip exactly.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
    if text.isascii() and "\x7f" not in text:
        return text
    # Outside strings json.dumps emits only printable ASCII, so every match lies inside a
    # string literal, where a \uXXXX escape means the same character.
    return _JSON_SUSPECT.sub(_json_escape_if_unsafe, text)


def _json_escape_if_unsafe(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _ALWAYS_REPLACED or not ch.isprintable():
        return f"\\u{ord(ch):04x}"
    return ch


def truncate(text: str, width: int) -> str:
    """Cut `text` to at most `width` terminal cells, ending with "…" when anything was cut.

    Cells, not characters: a CJK character or most emoji take two. A wide character that
    would straddle the limit is dropped whole rather than split.
    """
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    budget = width - cell_len(ELLIPSIS)
    used = 0
    end = 0
    for index, ch in enumerate(text):
        size = get_character_cell_size(ch)
        if used + size > budget:
            break
        used += size
        end = index + 1
    return text[:end] + ELLIPSIS
