"""Hostile file names and remote strings: shown, never obeyed.

Twenty names that a terminal or a markup parser would act on (Rich markup, CSI/OSC sequences
including OSC 52 and OSC 8, bidi overrides, zero-width characters, line breaks, C0 and C1
controls, invalid UTF-8 from the file system, a 255-byte name, emoji and combining marks) go
through the CLI (`upload --json`, plain `upload` piped, `ls`, `rm`) and the TUI (grid, detail
view, upload cards, tasks screen, notifications), and the same strings arrive from another
operator as public ids, tags and folders through the Supabase catalogue. Nothing crashes, and
no terminal-controlling character reaches the terminal: for the CLI the raw stdout/stderr
bytes are checked, for the TUI the rendered screen (the SVG screenshot, which holds every cell
exactly as it would be drawn).
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from media_tui.errors import PermanentError
from media_tui.model import ConnectionState, JobState
from media_tui.naming import storable_name
from media_tui.paths import expand
from media_tui.ui.app import MediaApp
from media_tui.ui.detail import AssetDetail
from media_tui.ui.tasks import TasksScreen
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.media_factory import make_png
from tests.ui.conftest import isolate_app_environment, wait_until

pytestmark = pytest.mark.timeout(180)

# --------------------------------------------------------------------------------------------
# What must never reach a terminal

# C0 controls (a line break is allowed only as the line separator of line output, so it is
# checked per line), DEL, C1 controls, bidi embeddings/overrides/isolates/marks, the Unicode
# line and paragraph separators, and lone surrogates (undecodable file-name bytes).
FORBIDDEN = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\u2028\u2029\ud800-\udfff]"
)


def assert_terminal_safe(text: str, where: str) -> None:
    found = FORBIDDEN.search(text)
    assert found is None, (
        f"{where}: {found.group()!r} at {found.start()}: {text[max(0, found.start() - 60) : found.start() + 60]!r}"
    )  # type: ignore[union-attr]


def assert_output_safe(raw: bytes, where: str) -> str:
    """Raw process output: strict UTF-8 (no lone 8-bit C1 byte), no forbidden character."""
    text = raw.decode("utf-8")  # raises on a raw 0x9b or any undecodable byte
    assert_terminal_safe(text, where)
    return text


_TEXT_TAG = re.compile(r'<text [^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', re.DOTALL)


def screen_check(app: Any, where: str) -> str:
    """The screen as the terminal would get it: no forbidden character anywhere in the SVG
    screenshot; returns its text, one line per row, for presence checks."""
    svg = app.export_screenshot()
    assert_terminal_safe(svg.replace("\n", " "), where)
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in _TEXT_TAG.findall(svg):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text)))
    return "\n".join(
        "".join(text for _, text in sorted(cells)) for _, cells in sorted(rows.items())
    ).replace("\xa0", " ")


# --------------------------------------------------------------------------------------------
# The twenty names

HOSTILE_NAMES: list[str] = [
    # ("/" cannot be in a file name: the closing-tag forms come as remote strings below.)
    "[bold red]x[reverse].png",  # Rich markup
    "[@click=app.quit]quit[@click].png",  # Textual action markup: a click would run it
    "[link=mailto:evil@example.com]click.png",  # markup hyperlink
    "csi\x1b[2J\x1b[31mred\x1b[0m.png",  # clear screen + colour
    "osc\x1b]0;pwned title\x07.png",  # set the window title
    "clip\x1b]52;c;ZXZpbA==\x07.png",  # OSC 52: write the clipboard
    "osc8\x1b]8;;https:evil.example\x1b\\link\x1b]8;;\x1b\\.png",  # OSC 8 hyperlink
    "gnp.\u202eevil.png",  # RLO: reads as a different extension
    "\u2066isolate\u2069\u202bemb\u202c.png",  # LRI/PDI, RLE/PDF
    "zero\u200bwidth\u200c\u200d\ufeff.png",  # ZWSP, ZWNJ, ZWJ, BOM
    "new\nline.png",
    "carriage\rreturn.png",
    "tab\there.png",
    "ü" * 125 + "x.png",  # exactly 255 bytes in UTF-8: the longest name ext4 allows
    os.fsdecode(b"bad\xff\xfeutf8\xc3.png"),  # invalid UTF-8 from the file system
    "c0\x01\x02\x07\x08\x0b\x0c\x1c\x1f\x7f.png",  # NUL-free C0 controls and DEL
    "c1\x85\x8d\x90\x9b31m\x9d0;t\x9c.png",  # NEL, RI, DCS, 8-bit CSI, OSC, ST
    "emoji 👩‍👩‍👧 e\u0301\u0301\u0301 z\u0334\u0322\u031b.png",  # ZWJ sequence, combining marks
    "glob[*]?$(rm -rf ~)`id`;|&.png",  # glob and shell characters, taken literally
    "sep\u2028line\u2029para\u0085nel.png",  # Unicode line/paragraph separators
]
assert len(HOSTILE_NAMES) == 20 and len(set(HOSTILE_NAMES)) == 20
assert len(os.fsencode(HOSTILE_NAMES[13])) == 255


def make_hostile_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [make_png(folder / name, seed=200 + i) for i, name in enumerate(HOSTILE_NAMES)]


# --------------------------------------------------------------------------------------------
# The CLI


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDINARY_", "SUPABASE_", "MEDIA_TUI_", "NEXT_PUBLIC_SUPABASE"))
    }
    env["MEDIA_TUI_CONFIG"] = os.devnull
    env.update(extra)
    return env


def run(args: list[str], library: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    """The CLI as a user runs it, stdout piped; raw bytes kept for the terminal check."""
    return subprocess.run(
        [sys.executable, "-m", "media_tui", *args, "--library", str(library)],
        capture_output=True,
        env=cli_env(**env),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def checked(result: subprocess.CompletedProcess[bytes], where: str) -> tuple[str, str]:
    """stdout and stderr, after proving neither holds a forbidden character or a traceback."""
    out = assert_output_safe(result.stdout, f"{where} stdout")
    err = assert_output_safe(result.stderr, f"{where} stderr")
    assert "Traceback" not in out + err, err
    return out, err


HOSTILE_TAG = "tag\x1b]52;c;ZXZpbA==\x07[bold]\u202e"


def test_cli_upload_ls_rm_never_write_a_control_character(tmp_path: Path) -> None:
    """The 20 names (plus a hostile-named text file and a missing hostile path, which fail)
    through `upload --json`, plain `upload` piped, `ls`, `ls --json`, `rm` and `rm --json`:
    every byte of stdout and stderr is strict UTF-8 without a forbidden character, JSON
    round-trips every name exactly (invalid UTF-8 included), each failure has its reason, and
    every plain line is one line."""
    files = make_hostile_files(tmp_path / "src")
    junk = tmp_path / "src" / "notes\x1b[2J\u202e.txt"
    junk.write_text("not media")
    missing = tmp_path / "src" / "gone\x1b]52;c;eA==\x07.png"
    inputs = [str(p) for p in files] + [str(junk), str(missing)]
    library = tmp_path / "lib"

    result = run(["upload", *inputs, "--json", "--tag", HOSTILE_TAG], library)
    out, err = checked(result, "upload --json")
    assert result.returncode == 1, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 22
    by_path = {row["path"]: row for row in rows}
    assert set(by_path) == set(inputs)  # exact, surrogate-escaped bytes included
    for path in map(str, files):
        assert by_path[path]["status"] == "uploaded", by_path[path]
    for path in (str(junk), str(missing)):
        assert by_path[path]["status"] == "failed" and by_path[path]["error"]

    plain_library = tmp_path / "plain-lib"
    result = run(["upload", *inputs], plain_library)
    out, err = checked(result, "upload")
    assert result.returncode == 1
    lines = out.splitlines()
    assert len(lines) == 22 and sum(line.startswith("uploaded ") for line in lines) == 20
    assert sum(line.startswith("failed ") for line in lines) == 2
    assert "\ufffd" in out and "[bold red]x[reverse]" in out  # shown harmless, not interpreted
    assert "20 uploaded" in err and err.count("\n") == 1

    result = run(["ls"], library)
    out, _ = checked(result, "ls")
    assert result.returncode == 0 and len(out.splitlines()) == 20
    result = run(["ls", "--json"], library)
    out, _ = checked(result, "ls --json")
    assets = [json.loads(line) for line in out.splitlines()]
    # Undecodable bytes cannot be stored as text: that one name is kept with U+FFFD for them.
    assert {a["original_filename"] for a in assets} == {storable_name(n) for n in HOSTILE_NAMES}
    assert all(a["tags"] == [HOSTILE_TAG] for a in assets)

    ids = sorted(str(a["public_id"]) for a in assets)
    result = run(["rm", *ids[:3], *HOSTILE_NAMES[3:8]], library)
    out, err = checked(result, "rm")
    assert result.returncode == 1
    assert out.splitlines() == [f"deleted {i}" for i in ids[:3]]
    errors = err.splitlines()
    assert len(errors) == 5 and all(line.startswith("media-tui: ") for line in errors)
    result = run(["rm", ids[3], "\x1b]8;;https://evil.example\x1b\\x", "--json"], library)
    out, _ = checked(result, "rm --json")
    statuses = [json.loads(line)["status"] for line in out.splitlines()]
    assert statuses == ["deleted", "failed"]

    # Ids, tags and folders typed with bytes that are not UTF-8: refused up front, exit 2.
    not_utf8 = os.fsdecode(b"id\xff\x1b[2J")
    for args in (
        ["rm", ids[4], not_utf8],
        ["ls", "--folder", not_utf8],
        ["upload", str(files[0]), "--tag", not_utf8],
    ):
        result = run(args, library)
        out, err = checked(result, args[0])
        assert result.returncode == 2 and out == "", err
        assert err.startswith("media-tui: ") and "not UTF-8" in err and err.count("\n") == 1


# Remote strings are not file names: they may hold "/" (markup closing tags) and NUL.
REMOTE_STRINGS = [
    *HOSTILE_NAMES,
    "[bold]x[/]",
    "[/]",
    "[link=https://evil.example]click[/link]",
    "nul\x00inside",
    "\x1b",
    "\u202e",
    "",
]


def remote_row(i: int, text: str) -> dict[str, Any]:
    """A row another operator (or a compromised one) wrote: every text column hostile."""
    return {
        "public_id": f"{text}/{i}" if text else f"blank-{i}",
        "resource_type": "image",
        "format": "png\x1b[2J",
        "bytes": 1000 + i,
        "folder": text,
        "tags": [text, "[red]tag[/]", "\x9b31m"],
        "original_filename": text or None,
        "url": f"https://res.example/{text}",
        "checksum": None,
    }


def test_cli_shows_hostile_remote_strings_from_the_supabase_catalogue(
    tmp_path: Path, supabase_emulator: SupabaseEmulator
) -> None:
    """27 rows written by someone else with hostile public ids, folders, tags, names, formats
    and URLs (the 20 names, three markup closing-tag forms, a NUL, a lone ESC, a lone RLO, an
    empty string): `ls`,
    `ls --folder`, `ls --json` and `rm` of such ids write no forbidden character, JSON
    round-trips them exactly, and `rm` deletes by the exact hostile id."""
    emulator = supabase_emulator
    for i, text in enumerate(REMOTE_STRINGS):
        emulator.write_as_other("INSERT", remote_row(i, text))
    env = {"SUPABASE_URL": emulator.url, "SUPABASE_SERVICE_ROLE_KEY": emulator.service_key}
    library = tmp_path / "lib"

    result = run(["ls"], library, **env)
    out, err = checked(result, "ls")
    assert result.returncode == 0, err
    assert len(out.splitlines()) == len(REMOTE_STRINGS)
    result = run(["ls", "--json"], library, **env)
    out, _ = checked(result, "ls --json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert {a["public_id"] for a in listed} == {
        remote_row(i, t)["public_id"] for i, t in enumerate(REMOTE_STRINGS)
    }
    result = run(["ls", "--folder", HOSTILE_NAMES[5]], library, **env)
    out, _ = checked(result, "ls --folder")
    assert len(out.splitlines()) == 1

    doomed = [remote_row(i, REMOTE_STRINGS[i])["public_id"] for i in (0, 3, 6, 7, 19, 22)]
    result = run(["rm", *doomed, "--storage", "local"], library, **env)
    out, err = checked(result, "rm")
    assert result.returncode == 0, err
    assert len(out.splitlines()) == len(doomed)
    remaining = {row["public_id"] for row in emulator.rows}
    assert not remaining & set(doomed) and len(remaining) == len(REMOTE_STRINGS) - len(doomed)


# --------------------------------------------------------------------------------------------
# The TUI


@pytest.fixture
def tui_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`MediaApp()` reads the environment: a fresh library, no config file, no cloud settings."""
    return isolate_app_environment(tmp_path, monkeypatch)


async def wait_for(pilot: Any, condition: Callable[[], bool], limit: float = 30.0) -> None:
    await wait_until(pilot, condition, limit)


async def details_of_every_asset(app: MediaApp, pilot: Any, ids: Iterable[str]) -> list[str]:
    """Open the detail view of each asset and check its screen; returns the screens' text."""
    screens = []
    for public_id in ids:
        app.push_screen(AssetDetail(app.store.assets[public_id], app.thumbs))
        await wait_for(pilot, lambda: "Public id" in screen_check(app, "detail"))
        screens.append(screen_check(app, f"detail of {public_id!r}"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AssetDetail))
    return screens


async def test_tui_shows_hostile_names_in_cards_tasks_grid_detail_and_notifications(
    tui_env: Path, tmp_path: Path
) -> None:
    """The 20 files uploaded in the TUI, one failing with an error that quotes a hostile name:
    the upload cards (mid-upload and failed), the tasks screen, the grid, the detail view of
    every asset and an error notification quoting a name all render with no forbidden
    character on screen, markup shown literally (`[bold red]`, `[@click=app.quit]`), and the
    app keeps running."""
    from tests.ui.conftest import ControlledStorage, controlled_backends

    files = make_hostile_files(tmp_path / "src")
    storages: list[ControlledStorage] = []
    app = MediaApp(backends_factory=controlled_backends(storages), thumbnails=False)
    async with app.run_test(size=(160, 60), notifications=True) as pilot:
        await wait_for(pilot, app.ready.is_set)
        storage = storages[0]
        storage.gate = asyncio.Event()
        storage.upload_failures = [PermanentError(f"the test refused {HOSTILE_NAMES[5]}.")]
        app.enqueue(expand([str(p) for p in files]).files)
        await wait_for(
            pilot,
            lambda: (
                sum(j.state is JobState.UPLOADING for j in app.store.jobs.values()) >= 2
                and any(j.state is JobState.FAILED for j in app.store.jobs.values())
            ),
        )
        # The cards repaint on the app's tick: wait for the picture, never a fixed pause. If the
        # names were parsed as markup or lost their replacement characters, this never comes.
        await wait_for(
            pilot,
            lambda: (
                "failed" in (cards := screen_check(app, "upload cards")).lower()
                and "\ufffd" in cards
            ),
        )

        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, TasksScreen))
        await wait_for(
            pilot,
            lambda: (
                "[bold red]x[reverse]" in (tasks := screen_check(app, "tasks screen"))
                and "[@click=app.quit]" in tasks
            ),
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TasksScreen))

        storage.gate.set()
        await wait_for(pilot, lambda: not app.store.active_jobs())
        assert len(app.store.assets) == 19  # one upload failed on purpose
        await wait_for(pilot, lambda: len(app.view) == 19)
        await wait_for(
            pilot,
            lambda: "[bold red]" in (grid := screen_check(app, "grid")) and "\ufffd" in grid,
        )

        details = await details_of_every_asset(app, pilot, sorted(app.store.assets))
        assert any("[link=mailto:" in d for d in details)

        victim = sorted(app.store.assets)[0]
        storage.delete_failures = [PermanentError(f"cannot delete {HOSTILE_NAMES[6]} now.")]
        app.delete(victim)
        await wait_for(pilot, lambda: "Delete failed" in screen_check(app, "notification"))
        await wait_for(
            pilot, lambda: victim in app.store.assets and not app.store.is_deleting(victim)
        )
        assert app.is_running


async def test_tui_shows_hostile_remote_strings_as_text(
    tui_env: Path, monkeypatch: pytest.MonkeyPatch, supabase_emulator: SupabaseEmulator
) -> None:
    """27 rows from another operator with hostile public ids, folders, tags, names, formats
    and URLs — half in the catalogue before the TUI starts (the snapshot), half arriving live
    through realtime: the grid (scrolled through), every detail view, the "Copied" notification
    of a hostile URL and the filter box holding a pasted hostile string show no forbidden
    character, markup closing tags appear literally, and the app keeps running."""
    from textual import events
    from textual.widgets import Input

    emulator = supabase_emulator
    monkeypatch.setenv("SUPABASE_URL", emulator.url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", emulator.service_key)
    rows = [remote_row(i, text) for i, text in enumerate(REMOTE_STRINGS)]
    # A lone surrogate cannot travel through realtime (realtime-py's strict JSON parser drops
    # the frame, and Postgres could not store one anyway): that row is in the snapshot half.
    surrogates = [r for r in rows if re.search("[\ud800-\udfff]", str(r["public_id"]))]
    before = surrogates + [r for r in rows[::2] if r not in surrogates]
    live = [r for r in rows if r not in before]
    for row in before:
        emulator.write_as_other("INSERT", row)
    ids = {str(row["public_id"]) for row in rows}

    app = MediaApp(thumbnails=False)
    async with app.run_test(size=(160, 60), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.store.connection is ConnectionState.LIVE)
        for row in live:
            await asyncio.to_thread(emulator.write_as_other, "INSERT", row)
        await wait_for(pilot, lambda: set(app.store.assets) == ids and len(app.view) == len(ids))
        shown = screen_check(app, "grid")
        for _ in range(6):  # page through the grid: every card is drawn at least once
            await pilot.press("pagedown")
            await pilot.pause()
            shown += screen_check(app, "grid, paged")
        await wait_for(pilot, lambda: "\ufffd" in shown + screen_check(app, "grid, paged"))

        details = await details_of_every_asset(app, pilot, sorted(app.store.assets))
        assert any("[bold]x[/]" in d for d in details) and any("[/]" in d for d in details)

        app.grid.focus()
        # The asset whose URL holds a lone surrogate: copying it once took the app down.
        index = app.view.index_of(str(surrogates[0]["public_id"]))
        assert index is not None
        app.grid.cursor_index = index
        app.action_copy_url()
        await wait_for(pilot, lambda: "Copied" in screen_check(app, "copied notification"))

        app.action_filter()
        box = app.query_one("#filter", Input)
        await wait_for(pilot, lambda: box.has_focus)
        box.post_message(events.Paste("\x1b[2J\x1b]52;c;ZXZpbA==\x07\u202e[bold]x[/]"))
        await wait_for(pilot, lambda: bool(box.value))
        await wait_for(pilot, lambda: "[bold]x[/]" in screen_check(app, "filter box"))
        assert app.is_running
