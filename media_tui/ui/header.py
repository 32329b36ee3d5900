"""The top bar: the app's name and badges for storage, catalogue and the live connection.

Each badge is its own widget with a state class (`-live`, `-offline`, …), so the theme colours
them through CSS variables in app.tcss.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from media_tui.config import Settings
from media_tui.model import ConnectionState, utcnow
from media_tui.safe_text import safe_text, truncate
from media_tui.store import MediaStore
from media_tui.ui.quiet_update import update_if_changed

CONNECTION_LABEL = {
    ConnectionState.CONNECTING: "◌ connecting",
    ConnectionState.LIVE: "● live",
    ConnectionState.RECONNECTING: "◌ reconnecting",
    ConnectionState.OFFLINE: "○ offline",
}


def since_text(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


class TopBar(Horizontal):
    """`media-tui  local storage  local catalogue  ● live · 2m  <detail>`."""

    def __init__(
        self,
        store: MediaStore,
        settings: Settings,
        *,
        now: Callable[[], datetime] = utcnow,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.store = store
        self.settings = settings
        self.now = now

    def compose(self) -> ComposeResult:
        yield Static(Text("media-tui"), id="app-name", classes="badge")
        yield Static(Text(f"{self.settings.storage} storage"), id="badge-storage", classes="badge")
        yield Static(
            Text(f"{self.settings.catalog} catalogue"), id="badge-catalog", classes="badge"
        )
        yield Static(id="badge-connection", classes="badge")
        yield Static(id="connection-detail")

    def on_mount(self) -> None:
        self.refresh_badges()

    def refresh_badges(self) -> None:
        state = self.store.connection
        badge = self.query_one("#badge-connection", Static)
        since = since_text(self.store.connection_since, self.now())
        update_if_changed(
            badge, Text(f"{CONNECTION_LABEL[state]} · {since}"), f"badge -{state.value}"
        )
        detail = self.store.connection_detail if state is not ConnectionState.LIVE else None
        update_if_changed(
            self.query_one("#connection-detail", Static),
            Text(truncate(safe_text(detail or ""), 70)),
        )
