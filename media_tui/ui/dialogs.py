"""Small modal screens: a yes/no confirmation and the key help."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, str], ...] = (
    ("u", "add files: type, paste or drop paths"),
    ("paste / drop", "on the main screen, opens the prompt filled in"),
    ("arrows, hjkl", "move the cursor"),
    ("PgUp PgDn Home End", "page and jump"),
    ("Enter", "details: preview, metadata, URL"),
    ("y", "copy the URL (OSC 52)"),
    ("o", "open the URL in a browser"),
    ("d", "delete (asks first)"),
    ("/", "filter: words, tag:x, type:video, folder:a/b"),
    ("Esc", "clear the filter, close a view"),
    ("s", "sort: newest, name, size"),
    ("w", "tasks: every upload; x cancel, r retry, p pause"),
    ("p", "pause or resume uploads"),
    ("ctrl+p", "command palette: every action"),
    ("?", "this help"),
    ("q", "quit (unfinished uploads resume next time)"),
)


class ConfirmDialog(ModalScreen[bool]):
    """Ask a yes/no question; `y`/Enter say yes, `n`/Esc say no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: Text, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-title")
            if self.detail:
                yield Static(Text(self.detail), classes="dialog-detail")
            yield Static(Text("y / Enter: yes    n / Esc: no"), classes="dialog-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class HelpScreen(ModalScreen[None]):
    """Every key, in one table."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with Vertical(classes="dialog", id="help"):
            yield Static(Text("Keys"), classes="dialog-title")
            yield Static(table)
            yield Static(Text("Esc closes"), classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
