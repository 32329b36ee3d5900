"""The drop-path prompt: a modal where the operator pastes, drops or types files to upload.

A drag-and-drop onto a terminal arrives as a bracketed paste of the dropped paths, quoted the
way that terminal likes (section 7 of the Textual reference), so the prompt is built around a
multi-line `TextArea` that keeps every line of a paste. Parsing is `media_tui.paths`' job:
`split_pasted` undoes the quoting and `expand` finds the media files. Both touch the disk (a
dropped folder may hold thousands of files), so they run in a thread worker, debounced while
the operator types, and never on the event loop.

The screen dismisses with an `UploadPlan` (files, refused inputs, folder, tags) when Enter is
pressed and at least one file was found, or with None on Escape.

Every name shown here is untrusted: it is passed through `safe_text` and rendered as
`Content`, never as markup, so `[/].jpg` shows literally and an ESC never reaches the
terminal. The paths field needs a little more care, because a `TextArea` shows its document
raw and splits lines on more characters than `\\n` (see `to_display`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Label, Static, TextArea
from textual.worker import Worker, WorkerState

from media_tui import paths
from media_tui.console import human_size
from media_tui.errors import UsageError
from media_tui.naming import normalize_folder
from media_tui.paths import ExpandResult, MediaFile, Rejected
from media_tui.safe_text import safe_text, truncate

__all__ = [
    "PathsField",
    "Preview",
    "SafeInput",
    "UploadPlan",
    "UploadPrompt",
    "compute_preview",
    "from_display",
    "parse_tags",
    "preview_lines",
    "to_display",
    "truncate_left",
]

TITLE = "Add files"
HINT_PATHS = "Paste or drag files here, or type paths (folders, globs and file:// URIs work)."
HINT_KEYS = "Enter uploads · Esc cancels"
HINT = f"{HINT_PATHS} {HINT_KEYS}"
DEBOUNCE_SECONDS = 0.2
MAX_REJECTED_LINES = 8
# In Content spans "$text-muted" ("auto 60%") is not resolved against the background and
# renders at full strength; the muted foreground is a plain colour that themes still set.
MUTED = "$foreground-muted"
MAX_INPUT_CELLS = 48  # a refused input is cut to this many cells so its reason stays in view


# --------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """What the operator asked to upload; the prompt's result."""

    files: tuple[MediaFile, ...]
    rejected: tuple[Rejected, ...]
    folder: str  # normalized with naming.normalize_folder; "" is the root
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Preview:
    """The parse of one exact text of the paths field."""

    text: str
    result: ExpandResult


def parse_tags(text: str) -> tuple[str, ...]:
    """Comma-separated tags: stripped, empty ones dropped, first occurrence order kept."""
    stripped = (tag.strip() for tag in text.split(","))
    return tuple(dict.fromkeys(tag for tag in stripped if tag))


def compute_preview(text: str, cwd: Path | None = None) -> Preview:
    """Split and expand `text`. Blocking (it stats, reads and walks): call it in a thread."""
    inputs = paths.split_pasted(text, cwd=cwd)
    return Preview(text, paths.expand(inputs, cwd=cwd))


# --------------------------------------------------------------------------------------------
# Showing pasted text in a TextArea without letting it control the terminal

# A TextArea writes its document to the terminal as it is (an ESC in a dropped name would
# start an escape sequence) and splits it with `str.splitlines`, which also breaks at
# \v \f \x1c-\x1e \x85 U+2028 U+2029, so such a name would not survive the round trip. Each
# character like that is therefore stored as a private-use stand-in, U+F0000 + its code
# point, and turned back when the text is read. (A name that really holds one of those few
# plane-15 private-use characters is mistaken for the control character; no font assigns
# them, so this is accepted.)
_STAND_IN_BASE = 0xF0000
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})  # controls, surrogates, separators
# Bidi controls would reorder the field's text around them; same list as media_tui.safe_text.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_KEPT = frozenset("\n\t")
# split_pasted treats CR and CRLF as line breaks too; showing them as breaks loses nothing.
_CARRIAGE_RETURN = re.compile(r"\r\n?")


def _is_hidden(ch: str) -> bool:
    if ch in _KEPT:
        return False
    return ch in _BIDI_CONTROLS or unicodedata.category(ch) in _HIDDEN_CATEGORIES


def to_display(text: str) -> str:
    """`text` as the paths field stores it: safe to draw, and one line per real line break."""
    text = _CARRIAGE_RETURN.sub("\n", text)
    if text.isascii() and all(ch.isprintable() or ch in _KEPT for ch in text):
        return text  # the usual case: a plain path
    return "".join(chr(_STAND_IN_BASE + ord(ch)) if _is_hidden(ch) else ch for ch in text)


def from_display(text: str) -> str:
    """The exact text behind what `to_display` produced."""
    if text.isascii():
        return text
    return "".join(_reveal(ch) for ch in text)


def _reveal(ch: str) -> str:
    offset = ord(ch) - _STAND_IN_BASE
    if 0 <= offset <= 0xFFFF and _is_hidden(chr(offset)):
        return chr(offset)
    return ch


# --------------------------------------------------------------------------------------------
# Rendering the preview


def preview_lines(
    result: ExpandResult | None,
    *,
    max_rejected: int = MAX_REJECTED_LINES,
    input_cells: int = MAX_INPUT_CELLS,
) -> list[Content]:
    """The summary line, then one line per refused input (at most `max_rejected`)."""
    lines = [_summary_line(result)]
    rejected = result.rejected if result is not None else ()
    lines.extend(_rejected_line(item, input_cells) for item in rejected[:max_rejected])
    hidden = len(rejected) - max_rejected
    if hidden > 0:
        lines.append(Content.styled(f"… and {hidden} more", MUTED))
    return lines


def truncate_left(text: str, width: int) -> str:
    """Cut `text` to `width` cells from the left: a path's file name is the part to keep."""
    return truncate(text[::-1], width)[::-1]


def _summary_line(result: ExpandResult | None) -> Content:
    if result is None or not result.files:
        return Content.styled("No files yet", MUTED)
    count = len(result.files)
    noun = "file" if count == 1 else "files"
    return Content.styled(f"{count} {noun} · {human_size(result.total_bytes)}", "$text-success")


def _rejected_line(item: Rejected, input_cells: int) -> Content:
    name = truncate_left(safe_text(item.input), input_cells)
    return Content.assemble(("✗ ", "$text-error"), name, (f": {safe_text(item.reason)}", MUTED))


def _nothing_to_upload(preview: Preview | None) -> str:
    if preview is None or not preview.text.strip():
        return "Nothing to upload: paste, drag or type the paths of some media files first."
    if preview.result.rejected:
        return "Nothing to upload: none of the paths above is a media file that can be read."
    return "Nothing to upload: no media files were found in what was given."


# --------------------------------------------------------------------------------------------
# Widgets


class PathsField(TextArea):
    """The multi-line paths field: keeps whole pastes, and Enter submits instead of breaking.

    Read the operator's text with `exact_text`, not `text`: `text` holds stand-ins for
    control characters (see `to_display`).
    """

    @dataclass
    class Submitted(Message):
        """Enter was pressed in the field."""

        field: PathsField

        @property
        def control(self) -> PathsField:
            return self.field

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(
            to_display(text), soft_wrap=True, show_line_numbers=False, tab_behavior="focus", id=id
        )

    @property
    def exact_text(self) -> str:
        return from_display(self.text)

    def insert_pasted(self, text: str) -> None:
        """Insert pasted text whole (newlines included) at the cursor, replacing a selection."""
        result = self.replace(to_display(text), *self.selection)
        self.move_cursor(result.end_location)

    async def _on_key(self, event: events.Key) -> None:
        # TextArea inserts a newline on Enter; here Enter means "upload". A newline can still
        # arrive inside a paste, which is how multi-file drops (kitty) come in.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self))
            return
        await super()._on_key(event)

    async def _on_paste(self, event: events.Paste) -> None:
        # Replaces TextArea's handler, which would insert control characters raw. Stopped so
        # the app's own "paste opens the prompt" handler never sees a paste made in here.
        event.stop()
        event.prevent_default()
        if not self.read_only:
            self.insert_pasted(event.text)
            self.focus()


class SafeInput(Input):
    """A one-line `Input` whose pastes cannot put terminal controls on screen.

    `Input` draws its value as it is, so a pasted or dropped name holding ESC reached the
    terminal raw (typed keys never carry controls). A paste is inserted as Input does it, first
    line only, after `safe_text`: controls become U+FFFD.
    """

    def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # Input's own handler would insert the raw text
        event.stop()
        if event.text:
            line = safe_text(event.text.splitlines()[0])
            if self.selection.is_empty:
                self.insert_text_at_cursor(line)
            else:
                self.replace(line, *self.selection)


# --------------------------------------------------------------------------------------------
# The screen


class UploadPrompt(ModalScreen[UploadPlan | None]):
    """Ask which files to upload, into which folder, with which tags."""

    DEFAULT_CSS = """
    UploadPrompt {
        align: center middle;
    }
    UploadPrompt > #dialog {
        width: 90%;
        max-width: 100;
        height: auto;
        max-height: 95%;
        padding: 1 2;
        background: $panel;
        border: thick $primary;
    }
    UploadPrompt #title {
        text-style: bold;
        color: $text;
    }
    UploadPrompt #hint {
        width: 1fr;  /* wrap inside the dialog instead of being cut off */
        color: $text-muted;
        margin-bottom: 1;
    }
    UploadPrompt PathsField {
        height: 6;
    }
    UploadPrompt #options {
        height: auto;
        margin-top: 1;
    }
    UploadPrompt #options > Vertical {
        width: 1fr;
        height: auto;
    }
    UploadPrompt #options Label {
        color: $text-muted;
        padding: 0 1;
    }
    UploadPrompt #preview-scroll {
        height: auto;
        max-height: 12;
        margin-top: 1;
    }
    UploadPrompt #preview {
        width: 1fr;
    }
    /* An 80x24 terminal: drop the spacing so the preview keeps a few rows. */
    UploadPrompt.-short #dialog {
        padding: 0 1;
    }
    UploadPrompt.-short #hint, UploadPrompt.-short #options, UploadPrompt.-short #preview-scroll {
        margin: 0;
    }
    UploadPrompt.-short PathsField {
        height: 4;
    }
    UploadPrompt.-short #preview-scroll {
        max-height: 7;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#paths"
    # Below 32 rows the screen gets `-short` (compact CSS above); `-tall` styles nothing.
    # Not ClassVar-annotated: Screen declares it as an instance variable, so mypy refuses that.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]  # noqa: RUF012

    def __init__(self, initial_text: str = "", *, cwd: Path | None = None) -> None:
        super().__init__()
        self._initial_text = initial_text
        self._cwd = cwd
        self._preview: Preview | None = None  # the latest finished parse
        self._worker: Worker[Preview] | None = None  # the parse whose result is wanted
        self._worker_text: str | None = None
        self._debounce: Timer | None = None
        self._submit_requested = False
        self._folder_error: str | None = None
        self._notice: str | None = None  # "Nothing to upload" or a failed parse
        self._dismissed = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(TITLE, id="title", markup=False)
            # Too long for one row of a 100-column dialog: break it where it reads well
            # rather than wherever the wrap falls.
            yield Label(f"{HINT_PATHS}\n{HINT_KEYS}", id="hint", markup=False)
            yield PathsField(self._initial_text, id="paths")
            with Horizontal(id="options"):
                with Vertical():
                    yield Label("Folder", markup=False)
                    yield SafeInput(placeholder="e.g. shots/2026", id="folder")
                with Vertical():
                    yield Label("Tags (comma-separated)", markup=False)
                    yield SafeInput(placeholder="e.g. holiday, beach", id="tags")
            with VerticalScroll(id="preview-scroll", can_focus=False):
                yield Static(id="preview", markup=False)

    def on_mount(self) -> None:
        field = self.query_one(PathsField)
        field.move_cursor(field.document.end)
        self._render_preview()
        if field.exact_text.strip():
            self._start_preview()  # no debounce: the operator already dropped these

    # -- input ---------------------------------------------------------------------------------

    @on(TextArea.Changed, "#paths")
    def _paths_changed(self) -> None:
        # A submit still waiting for its parse was for the old text: never upload what the
        # operator did not see. A "Nothing to upload" was about the old text too.
        stale = self._submit_requested or self._notice is not None
        self._submit_requested = False
        self._notice = None
        if stale:
            self._render_preview()
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_SECONDS, self._start_preview)

    @on(Input.Changed, "#folder")
    def _folder_changed(self) -> None:
        self._validated_folder()
        self._render_preview()

    @on(PathsField.Submitted)
    @on(Input.Submitted)
    def _submitted(self, event: Message) -> None:
        event.stop()
        self.action_submit()

    def on_paste(self, event: events.Paste) -> None:
        # A paste reaches the screen directly when no field has focus; it is meant for the
        # paths. One that bubbled up from an Input was already handled there.
        event.stop()
        if not isinstance(self.focused, Input | TextArea):
            field = self.query_one(PathsField)
            field.insert_pasted(event.text)
            field.focus()

    def action_cancel(self) -> None:
        self._close(None)

    def action_submit(self) -> None:
        if self._dismissed:
            return
        self._notice = None
        if self._validated_folder() is None:
            self._render_preview()
            return
        self._submit_requested = True
        if self._debounce is not None:
            self._debounce.stop()
        self._start_preview()  # finishes at once when the current text is already parsed
        if self._submit_requested:
            self._render_preview()  # says "Checking…" while a big folder is walked

    # -- parsing -------------------------------------------------------------------------------

    def _start_preview(self) -> None:
        """Parse the current text in a thread, unless it is parsed or being parsed already."""
        text = self.query_one(PathsField).exact_text
        if self._preview is not None and self._preview.text == text:
            self._preview_ready()
            return
        if self._worker_text == text and self._worker is not None:
            return  # its result will arrive
        self._worker_text = text
        self._worker = self.run_worker(
            partial(compute_preview, text, self._cwd),
            name="upload-prompt-preview",
            group="preview",
            exclusive=True,  # a newer text makes the older parse pointless
            thread=True,
            exit_on_error=False,  # a failed parse is shown, not fatal
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._worker:
            return  # a superseded parse
        if event.state == WorkerState.SUCCESS:
            result = event.worker.result
            assert isinstance(result, Preview)
            self._worker = self._worker_text = None
            self._preview = result
            self._preview_ready()
        elif event.state == WorkerState.ERROR:
            self._worker = self._worker_text = None
            self._submit_requested = False
            self._notice = f"Could not read the paths: {event.worker.error}"
            self._render_preview()

    def _preview_ready(self) -> None:
        submit, self._submit_requested = self._submit_requested, False
        self._render_preview()
        if submit:
            self._finish()

    def _finish(self) -> None:
        """Dismiss with the plan, or say why not; the preview matches the current text."""
        folder = self._validated_folder()
        preview = self._preview
        if folder is None:
            self._render_preview()
        elif preview is None or not preview.result.files:
            self._notice = _nothing_to_upload(preview)
            self._render_preview()
        else:
            tags = parse_tags(self.query_one("#tags", Input).value)
            self._close(UploadPlan(preview.result.files, preview.result.rejected, folder, tags))

    def _close(self, result: UploadPlan | None) -> None:
        # A second Enter or an Esc can arrive before the pop: dismissing twice would hand the
        # app the plan twice (two uploads) and pop the screen underneath.
        if not self._dismissed:
            self._dismissed = True
            self.dismiss(result)

    def _validated_folder(self) -> str | None:
        """The normalized folder, or None after recording why the typed one is refused."""
        try:
            folder = normalize_folder(self.query_one("#folder", Input).value)
        except UsageError as exc:
            message = str(exc)  # a sentence fragment written for the CLI's "error: " prefix
            self._folder_error = message[:1].upper() + message[1:]
            return None
        self._folder_error = None
        return folder

    # -- display -------------------------------------------------------------------------------

    def _render_preview(self) -> None:
        status = [
            Content.styled(safe_text(message), "$text-error")
            for message in (self._folder_error, self._notice)
            if message
        ]
        if self._submit_requested:
            status.append(Content.styled("Checking the paths…", MUTED))
        result = self._preview.result if self._preview is not None else None
        self.query_one("#preview", Static).update(
            Content("\n").join([*status, *preview_lines(result)])
        )
