"""UploadPrompt: every terminal's drop format, refused inputs, folder/tags, hostile names.

The prompt runs inside a tiny App that pushes it on mount and records what it dismissed with.
Pastes are posted as `events.Paste` (there is no `pilot.paste`); the App forwards them to the
focused widget, the paths field, exactly as a terminal's bracketed paste would arrive.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from textual import events
from textual.app import App
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Input, Static

from media_tui import paths
from media_tui.paths import REASON_MISSING, REASON_NOT_MEDIA, ExpandResult, Rejected
from media_tui.ui.prompt import (
    HINT_KEYS,
    HINT_PATHS,
    TITLE,
    PathsField,
    UploadPlan,
    UploadPrompt,
    from_display,
    parse_tags,
    preview_lines,
    to_display,
    truncate_left,
)

SIZE = (120, 40)
NOT_YET = object()  # the prompt has not been dismissed


class PromptApp(App[None]):
    """Pushes an UploadPrompt at start-up and keeps its result."""

    def __init__(self, initial_text: str = "", cwd: Path | None = None) -> None:
        super().__init__()
        self.initial_text = initial_text
        self.cwd = cwd
        self.result: object = NOT_YET  # an UploadPlan or None once dismissed
        self.calls = 0

    def on_mount(self) -> None:
        self.push_screen(UploadPrompt(self.initial_text, cwd=self.cwd), callback=self._done)

    def _done(self, result: UploadPlan | None) -> None:
        self.result = result
        self.calls += 1


# --------------------------------------------------------------------------------------------
# Helpers


def write_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path, format="PNG")
    return path


def write_jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (30, 200, 30)).save(path, format="JPEG")
    return path


def backslash_escaped(path: Path) -> str:
    """How iTerm2 and Terminal.app escape a dropped path (a newline too, with a backslash)."""
    return "".join("\\" + ch if ch in " '\"\\\n()[]&;$`!*?" else ch for ch in str(path))


async def wait_until(
    pilot: Pilot[None], predicate: Callable[[], bool], within: float = 30.0
) -> None:
    """Let the app run until `predicate()` holds; fail after `within` seconds."""
    for _ in range(int(within / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    assert predicate(), "condition not reached in time"


def prompt_of(app: App[None]) -> UploadPrompt:
    screen = app.screen
    assert isinstance(screen, UploadPrompt)
    return screen


def field_of(app: App[None]) -> PathsField:
    return prompt_of(app).query_one(PathsField)


def preview_text(app: App[None]) -> str:
    content = prompt_of(app).query_one("#preview", Static).content
    assert isinstance(content, Content)
    return content.plain


def screen_text(app: App[None]) -> str:
    """Every character the screen would send to the terminal (private compositor API)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def paste(pilot: Pilot[None], text: str) -> None:
    """Paste as a terminal does: the App forwards the event to the focused widget."""
    pilot.app.post_message(events.Paste(text))
    await pilot.pause()


async def submit(pilot: Pilot[None]) -> None:
    """Press Enter and wait until the prompt is dismissed."""
    app = pilot.app
    assert isinstance(app, PromptApp)
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.result is not NOT_YET)


def planned(app: PromptApp) -> UploadPlan:
    assert isinstance(app.result, UploadPlan), app.result
    return app.result


def planned_paths(app: PromptApp) -> list[Path]:
    return [media.path for media in planned(app).files]


async def paste_and_submit(text: str, cwd: Path | None = None) -> PromptApp:
    app = PromptApp(cwd=cwd)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await paste(pilot, text)
        assert field_of(app).exact_text == text  # the paste reached the paths field whole
        await submit(pilot)
    return app


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """A real folder of dropped files, resolved (tmp_path may sit behind a symlink)."""
    folder = tmp_path / "x"
    folder.mkdir()
    return folder.resolve()


# --------------------------------------------------------------------------------------------
# Layout


async def test_opens_with_title_hint_and_focus_on_the_paths_field() -> None:
    app = PromptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert TITLE in text
        assert HINT_PATHS in text
        assert HINT_KEYS in text
        assert "No files yet" in text
        assert app.focused is field_of(app)
        dialog = prompt_of(app).query_one("#dialog")
        assert dialog.region.width == 100  # 90% of 120 is 108, capped at 100 columns
        assert dialog.region.x == 10  # centred


async def test_an_80x24_terminal_still_shows_the_preview(drop: Path) -> None:
    write_png(drop / "a.png")
    app = PromptApp(initial_text=f"{drop / 'a.png'}\n{drop / 'gone.png'}")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "1 file · " in screen_text(app))
        assert "gone.png: no such file" in screen_text(app)
        assert prompt_of(app).query_one("#dialog").region.bottom <= 24


# --------------------------------------------------------------------------------------------
# Every terminal's drop format


async def test_iterm2_and_terminal_app_backslash_escaped_paste(drop: Path) -> None:
    a = write_png(drop / "my photo.png")
    b = write_png(drop / "b.png")
    app = await paste_and_submit(f"{backslash_escaped(a)} {backslash_escaped(b)} ")
    assert planned_paths(app) == [a, b]
    assert planned(app).rejected == ()


async def test_gnome_single_quoted_paste(drop: Path) -> None:
    a = write_png(drop / "it's.png")
    b = write_jpeg(drop / "b c.png")
    app = await paste_and_submit(f"'{drop}/it'\\''s.png' '{drop}/b c.png' ")
    assert planned_paths(app) == [a, b]


async def test_kitty_raw_paths_one_per_line(drop: Path) -> None:
    a = write_png(drop / "a b.png")
    c = write_jpeg(drop / "c.png")
    app = await paste_and_submit(f"{a}\n{c}")
    assert planned_paths(app) == [a, c]


async def test_wezterm_spaces_only_escaping(drop: Path) -> None:
    # WezTerm's default escapes spaces and nothing else, so the quote stays raw.
    a = write_png(drop / "it's here.png")
    b = write_png(drop / "two words.png")
    text = f"{str(a).replace(' ', chr(92) + ' ')} {str(b).replace(' ', chr(92) + ' ')}"
    app = await paste_and_submit(text)
    assert planned_paths(app) == [a, b]


async def test_double_quoted_paste(drop: Path) -> None:
    a = write_png(drop / "a b.png")
    app = await paste_and_submit(f'"{a}"')
    assert planned_paths(app) == [a]


async def test_file_uri_with_percent_escapes(drop: Path) -> None:
    a = write_png(drop / "a b.png")
    app = await paste_and_submit("file://" + urllib.parse.quote(str(a)))
    assert planned_paths(app) == [a]


async def test_typed_path_and_enter(drop: Path) -> None:
    a = write_png(drop / "typed.png")
    app = PromptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*str(a))
        assert field_of(app).exact_text == str(a)
        await submit(pilot)
    assert planned_paths(app) == [a]


async def test_relative_paths_resolve_against_cwd(drop: Path) -> None:
    a = write_png(drop / "rel.png")
    app = await paste_and_submit("rel.png", cwd=drop)
    assert planned_paths(app) == [a]


async def test_initial_text_prefills_and_previews_at_once(drop: Path) -> None:
    a = write_png(drop / "a.png")
    app = PromptApp(initial_text=f"{a}\n")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "1 file · " in preview_text(app))
        assert field_of(app).exact_text == f"{a}\n"
        await submit(pilot)
    assert planned_paths(app) == [a]


async def test_enter_right_after_a_paste_waits_for_the_parse(drop: Path) -> None:
    # No pause for the debounce: Enter must parse the current text itself, never use none.
    files = [write_png(drop / f"{n}.png") for n in range(3)]
    app = PromptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.post_message(events.Paste("\n".join(map(str, files))))
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.result is not NOT_YET)
    assert planned_paths(app) == files


async def test_enter_during_a_slow_parse_says_checking_then_uploads(
    drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write_png(drop / "a.png")
    gate = threading.Event()
    real_expand = paths.expand

    def slow_expand(inputs: object, *, cwd: Path | None = None) -> ExpandResult:
        gate.wait(10)  # a big folder being walked
        return real_expand(inputs, cwd=cwd)  # type: ignore[arg-type]

    monkeypatch.setattr(paths, "expand", slow_expand)
    app = PromptApp(initial_text=str(a))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Checking the paths…" in preview_text(app))
        assert app.result is NOT_YET  # the event loop is free while the thread walks
        gate.set()
        await wait_until(pilot, lambda: app.result is not NOT_YET)
    assert planned_paths(app) == [a]


async def test_submitting_twice_or_cancelling_after_enter_dismisses_once(drop: Path) -> None:
    a = write_png(drop / "a.png")
    app = PromptApp(initial_text=str(a))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "1 file · " in preview_text(app))
        prompt = prompt_of(app)

        def enter_enter_escape() -> None:
            # All three in one handler of the screen, before the pop can happen.
            prompt.action_submit()
            prompt.action_submit()
            prompt.action_cancel()

        prompt.call_later(enter_enter_escape)
        await wait_until(pilot, lambda: not isinstance(app.screen, UploadPrompt))
        await pilot.pause(0.1)  # let any second callback show up (there must be none)
    assert app.calls == 1
    assert planned_paths(app) == [a]


async def test_a_failing_parse_is_shown_not_fatal(
    drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_expand(inputs: object, *, cwd: Path | None = None) -> ExpandResult:
        raise RuntimeError("disk on fire\x1b[2J")

    monkeypatch.setattr(paths, "expand", broken_expand)
    app = PromptApp(initial_text=str(drop / "a.png"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Could not read the paths" in preview_text(app))
        assert "disk on fire\ufffd[2J" in preview_text(app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Could not read the paths" in preview_text(app))
        assert app.result is NOT_YET
        assert "\x1b" not in screen_text(app)


# --------------------------------------------------------------------------------------------
# Preview and refused inputs


async def test_mixed_paste_lists_refused_inputs_and_keeps_the_valid_file(drop: Path) -> None:
    good = write_png(drop / "good.png")
    notes = drop / "notes.txt"
    notes.write_text("just text\n")
    missing = drop / "missing.png"
    app = PromptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await paste(pilot, f"{good}\n{missing}\n{notes}")
        await wait_until(pilot, lambda: "1 file · " in preview_text(app))
        shown = preview_text(app)
        size = f"{good.stat().st_size} B"
        assert shown.splitlines()[0] == f"1 file · {size}"
        # Long inputs lose their start, never their file name, and keep their reason.
        assert shown.splitlines()[1:] == [
            "✗ " + truncate_left(str(missing), 48) + f": {REASON_MISSING}",
            "✗ " + truncate_left(str(notes), 48) + f": {REASON_NOT_MEDIA}",
        ]
        await submit(pilot)
    plan = planned(app)
    assert planned_paths(app) == [good]
    assert plan.rejected == (
        Rejected(str(missing), REASON_MISSING),
        Rejected(str(notes), REASON_NOT_MEDIA),
    )


async def test_preview_follows_edits(drop: Path) -> None:
    a = write_png(drop / "a.png")
    b = write_png(drop / "b.png")
    app = PromptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await paste(pilot, str(a))
        await wait_until(pilot, lambda: preview_text(app).startswith("1 file · "))
        await paste(pilot, f"\n{b}")
        await wait_until(pilot, lambda: preview_text(app).startswith("2 files · "))
        field_of(app).clear()
        await wait_until(pilot, lambda: preview_text(app).startswith("No files yet"))


def test_preview_lines_cap_refused_inputs() -> None:
    rejected = tuple(Rejected(f"/nope/{n}.png", REASON_MISSING) for n in range(11))
    lines = [line.plain for line in preview_lines(ExpandResult((), rejected))]
    assert lines[0] == "No files yet"
    assert len(lines) == 1 + 8 + 1
    assert lines[1] == f"✗ /nope/0.png: {REASON_MISSING}"
    assert lines[-1] == "… and 3 more"


def test_preview_lines_truncate_long_inputs() -> None:
    long_name = "/very/long/" + "x" * 200 + ".png"
    (line,) = preview_lines(ExpandResult((), (Rejected(long_name, REASON_MISSING),)))[1:]
    assert line.plain.startswith("✗ …")  # the start goes, the file name stays
    assert line.plain.endswith(f"xxx.png: {REASON_MISSING}")
    assert len(line.plain) < 48 + len(REASON_MISSING) + 5


# --------------------------------------------------------------------------------------------
# Folder and tags


async def test_folder_and_tags_are_normalized(drop: Path) -> None:
    a = write_png(drop / "a.png")
    app = PromptApp(initial_text=str(a))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = prompt_of(app)
        screen.query_one("#folder", Input).value = " /shots//2026/ "
        screen.query_one("#tags", Input).value = "a, b,,a , c"
        await pilot.pause()
        screen.query_one("#tags", Input).focus()
        await submit(pilot)  # Enter in the tags field submits too
    plan = planned(app)
    assert plan.folder == "shots/2026"
    assert plan.tags == ("a", "b", "c")
    assert planned_paths(app) == [a]


async def test_folder_with_dot_dot_is_refused_with_its_message(drop: Path) -> None:
    a = write_png(drop / "a.png")
    app = PromptApp(initial_text=str(a))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "1 file · " in preview_text(app))
        folder = prompt_of(app).query_one("#folder", Input)
        folder.focus()
        await pilot.press(*"a/../b")
        assert "contains '.' or '..'" in preview_text(app)  # shown while typing
        await pilot.press("enter")  # refused at once: a bad folder needs no parse
        await pilot.pause()
        assert app.result is NOT_YET
        assert isinstance(app.screen, UploadPrompt)
        assert "The folder 'a/../b' contains '.' or '..'" in screen_text(app)
        folder.value = "b"
        await pilot.pause()
        assert "contains" not in preview_text(app)
        await submit(pilot)
    assert planned(app).folder == "b"


def test_parse_tags() -> None:
    assert parse_tags("a, b,,a , c") == ("a", "b", "c")
    assert parse_tags("") == ()
    assert parse_tags(" , ,") == ()


# --------------------------------------------------------------------------------------------
# Enter without files, Escape


async def test_enter_with_nothing_valid_stays_open_with_the_error(drop: Path) -> None:
    app = PromptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await paste(pilot, str(drop / "missing.png"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Nothing to upload" in preview_text(app))
        assert app.result is NOT_YET
        assert isinstance(app.screen, UploadPrompt)
        assert "Nothing to upload: none of the paths above" in screen_text(app)
        assert field_of(app).exact_text == str(drop / "missing.png")  # no newline inserted
        # Editing the text clears the error again.
        await pilot.press("x")
        await pilot.pause()
        assert "Nothing to upload" not in preview_text(app)


async def test_enter_on_an_empty_field_stays_open() -> None:
    app = PromptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Nothing to upload" in preview_text(app))
        assert app.result is NOT_YET
        assert field_of(app).text == ""


async def test_escape_cancels_with_none(drop: Path) -> None:
    a = write_png(drop / "a.png")
    app = PromptApp(initial_text=str(a))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.result is not NOT_YET)
        assert not isinstance(app.screen, UploadPrompt)
    assert app.result is None


async def test_paste_with_no_field_focused_goes_to_the_paths_field(drop: Path) -> None:
    a = write_png(drop / "a.png")
    app = PromptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.set_focus(None)
        await paste(pilot, str(a))
        assert field_of(app).exact_text == str(a)


# --------------------------------------------------------------------------------------------
# Hostile names


async def test_hostile_names_render_literally_and_upload(drop: Path) -> None:
    root = drop
    bracket = write_png(root / "[" / "].jpg")
    open_bracket = write_png(root / "a[" / "b.png")
    escape = write_png(root / "red\x1b[31mname.png")
    newline = write_png(root / "two\nlines.png")
    osc = root / "gone\x1b]52;c;aGk=\x07[/].png"  # missing, so it is listed with its reason
    text = " ".join(
        [
            backslash_escaped(bracket),
            backslash_escaped(open_bracket),
            f"'{escape}'",
            backslash_escaped(newline),
            f"'{osc}'",
        ]
    )
    app = PromptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await paste(pilot, text)
        assert field_of(app).exact_text == text  # control characters kept, not just shown
        await wait_until(pilot, lambda: "4 files · " in preview_text(app))
        shown = screen_text(app)
        assert "\x1b" not in shown
        assert "\x07" not in shown
        (refused,) = preview_text(app).splitlines()[1:]
        assert refused.startswith("✗ ")
        assert "/gone\ufffd]52;c;aGk=\ufffd[/].png: no such file" in refused
        await submit(pilot)
    assert planned_paths(app) == [bracket, open_bracket, escape, newline]


def test_the_paths_field_round_trips_control_characters() -> None:
    nasty = "a\x1bb\x1ec\x85d\u2028e\u202ef\x00g\tv\u202fw\ud800z"
    shown = to_display(nasty)
    assert all(ch not in shown for ch in "\x1b\x1e\x85\u2028\u202e\x00\ud800")
    assert shown.splitlines() == [shown]  # one line: nothing in there breaks a TextArea line
    assert "\t" in shown and "\u202f" in shown  # tabs and no-break spaces (macOS) stay
    assert from_display(shown) == nasty
    assert to_display("a\r\nb\rc") == "a\nb\nc"
    assert from_display(to_display("/plain/path.png")) == "/plain/path.png"


# --------------------------------------------------------------------------------------------
# Threading


async def test_parsing_runs_off_the_event_loop(drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write_png(drop / "a.png")
    seen: list[threading.Thread] = []
    real_expand = paths.expand

    def recording_expand(inputs: object, *, cwd: Path | None = None) -> ExpandResult:
        seen.append(threading.current_thread())
        return real_expand(inputs, cwd=cwd)  # type: ignore[arg-type]

    monkeypatch.setattr(paths, "expand", recording_expand)
    app = PromptApp(initial_text=str(a))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "1 file · " in preview_text(app))
        await submit(pilot)
    assert seen
    assert all(thread is not threading.main_thread() for thread in seen)
    assert planned_paths(app) == [a]
