"""safe_text, safe_json_dumps and truncate: nothing that controls a terminal gets through."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.cells import cell_len

from media_tui.safe_text import REPLACEMENT, safe_json_dumps, safe_text, truncate

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_plain_ascii_is_returned_unchanged() -> None:
    name = "holiday photo (1) [final].jpg"
    assert safe_text(name) is name


def test_escape_sequences_lose_their_esc() -> None:
    hostile = "a\x1b]52;c;ZXZpbA==\x07\x1b[2Jb.jpg"
    result = safe_text(hostile)
    assert "\x1b" not in result and "\x07" not in result
    assert result == f"a{REPLACEMENT}]52;c;ZXZpbA=={REPLACEMENT}{REPLACEMENT}[2Jb.jpg"


@pytest.mark.parametrize("code", [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)])
def test_every_c0_c1_control_and_del_is_replaced(code: int) -> None:
    assert safe_text(f"x{chr(code)}y") == f"x{REPLACEMENT}y"


def test_newline_is_replaced_unless_kept() -> None:
    assert safe_text("a\nb") == f"a{REPLACEMENT}b"
    assert safe_text("a\nb\r", keep_newlines=True) == f"a\nb{REPLACEMENT}"


def test_tab_becomes_one_space() -> None:
    assert safe_text("a\tb") == "a b"


@pytest.mark.parametrize("ch", [*BIDI, "\u2028", "\u2029"])
def test_bidi_controls_and_line_separators_are_replaced(ch: str) -> None:
    assert safe_text(f"invoice{ch}gpj.exe") == f"invoice{REPLACEMENT}gpj.exe"


def test_undecodable_file_name_bytes_become_replacement_chars() -> None:
    raw = b"caf\xe9-\xff.jpg"
    assert safe_text(raw) == f"caf{REPLACEMENT}-{REPLACEMENT}.jpg"
    # The same via the str os.fsdecode makes of it (lone surrogates U+DCE9, U+DCFF).
    assert safe_text(os.fsdecode(raw)) == f"caf{REPLACEMENT}-{REPLACEMENT}.jpg"


def test_path_like_values_are_accepted() -> None:
    assert safe_text(Path("/tmp/a\x1bb.png")) == f"/tmp/a{REPLACEMENT}b.png"


def test_printable_unicode_and_spaces_are_kept() -> None:
    name = "été 東京 🎉 photo.jpg"
    assert safe_text(name) == name


def test_other_non_printable_characters_are_replaced() -> None:
    # U+00A0 (no-break space) and U+E000 (private use) are not printable to Python.
    assert safe_text("a\u00a0b\ue000c") == f"a{REPLACEMENT}b{REPLACEMENT}c"


def test_result_is_always_printable_and_encodable() -> None:
    everything = "".join(chr(c) for c in range(0x0, 0x3000)) + "\udc80\ud800"
    result = safe_text(everything)
    assert all(ch == " " or ch.isprintable() for ch in result)
    result.encode("utf-8")  # would raise on a surrogate


# --- safe_json_dumps ---------------------------------------------------------------------------


def test_json_keeps_separators_and_plain_unicode() -> None:
    assert safe_json_dumps({"path": "été.jpg", "n": 1}) == '{"path": "été.jpg", "n": 1}'


def test_json_escapes_dangerous_chars_and_round_trips() -> None:
    hostile = "a\x1b[2J\x7f\x85\u2028\u2029" + BIDI + os.fsdecode(b"\xff\xfe") + "東京"
    obj = {"name": hostile, "tags": [hostile], hostile: None}
    text = safe_json_dumps(obj)
    assert json.loads(text) == obj
    for ch in "\x1b\x7f\x85\u2028\u2029\udcff\udcfe" + BIDI:
        assert ch not in text
    assert "\\u007f" in text and "\\u202e" in text and "\\udcff" in text
    assert "東京" in text


def test_json_output_can_be_written_to_a_utf8_stream() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8")
    stream.write(safe_json_dumps({"path": os.fsdecode(b"/tmp/\xff.jpg")}))
    stream.flush()
    assert raw.getvalue() == b'{"path": "/tmp/\\udcff.jpg"}'


def test_json_of_non_strings_is_unchanged() -> None:
    obj: list[object] = [1, 2.5, None, True, {"a": []}]
    assert safe_json_dumps(obj) == json.dumps(obj, separators=(", ", ": "))


# --- truncate ---------------------------------------------------------------------------------


def test_truncate_leaves_short_text_alone() -> None:
    assert truncate("abc", 3) == "abc"


def test_truncate_cuts_with_ellipsis() -> None:
    assert truncate("abcdef", 4) == "abc…"


def test_truncate_counts_wide_characters_as_two_cells() -> None:
    result = truncate("東京都庁舎.jpg", 6)
    assert result == "東京…"
    assert cell_len(result) <= 6


def test_truncate_never_splits_a_wide_character() -> None:
    result = truncate("東京都", 4)
    assert result == "東…"
    assert cell_len(result) == 3


@pytest.mark.parametrize("width", range(0, 12))
def test_truncate_never_exceeds_width(width: int) -> None:
    assert cell_len(truncate("a東b京c都d", width)) <= max(width, 0)


def test_truncate_to_one_cell_is_just_the_ellipsis() -> None:
    assert truncate("abc", 1) == "…"
    assert truncate("abc", 0) == ""
