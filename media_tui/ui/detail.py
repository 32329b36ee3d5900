"""The detail view: a larger preview, every field of the asset, and its URL."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from media_tui.console import human_size
from media_tui.model import MediaAsset, format_timestamp
from media_tui.safe_text import safe_text
from media_tui.ui.thumbs import Rows, ThumbnailCache, render_placeholder

PREVIEW_W, PREVIEW_H = 40, 16


class _Rows:
    """Pre-rendered half-block rows as a Rich renderable."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for row in self.rows:
            yield from row
            yield Segment.line()


def metadata_table(asset: MediaAsset) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    dims = f"{asset.width} × {asset.height}" if asset.width and asset.height else "—"
    rows = [
        ("Name", asset.name),
        ("Public id", asset.public_id),
        ("Type", f"{asset.resource_type.value} / {asset.format or '—'}"),
        ("Size", f"{human_size(asset.bytes)} ({asset.bytes:,} bytes)"),
        ("Dimensions", dims),
        ("Duration", f"{asset.duration:.1f} s" if asset.duration else "—"),
        ("Folder", asset.folder or "—"),
        ("Tags", ", ".join(asset.tags) or "—"),
        ("Checksum", asset.checksum or "—"),
        ("Created", format_timestamp(asset.created_at) or "—"),
        ("Updated", format_timestamp(asset.updated_at) or "—"),
        ("URL", asset.url or "—"),
    ]
    for label, value in rows:
        table.add_row(label, Text(safe_text(value)))  # remote text: never markup
    return table


class AssetDetail(ModalScreen[None]):
    """One asset in full. y copies the URL, o opens it, d deletes, Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close"),
        Binding("y", "copy", "Copy URL"),
        Binding("o", "open", "Open"),
        Binding("d", "delete", "Delete"),
    ]

    def __init__(self, asset: MediaAsset, thumbs: ThumbnailCache) -> None:
        super().__init__()
        self.asset = asset
        self.thumbs = thumbs

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="detail"):
            yield Static(Text(safe_text(self.asset.name)), classes="dialog-title")
            with Horizontal(id="detail-body"):
                yield Static(self._preview(), id="detail-preview")
                yield Static(metadata_table(self.asset), id="detail-meta")
            yield Static(Text("y copy URL · o open · d delete · Esc close"), classes="dialog-hint")

    def on_mount(self) -> None:
        self._remove_listener = self.thumbs.add_listener(self._thumb_ready)

    def on_unmount(self) -> None:
        self._remove_listener()

    def _preview(self) -> _Rows:
        key = self.asset.thumbnail
        if key:
            thumb = self.thumbs.get(key)
            if thumb is not None:
                rows = thumb.rows(PREVIEW_W, PREVIEW_H)
                if rows is not None:
                    return _Rows(rows)
            self.thumbs.request(key, key)
        glyph = {"video": "▶", "raw": "▤"}.get(self.asset.resource_type.value, "▣")
        return _Rows(render_placeholder(glyph, PREVIEW_W, PREVIEW_H))

    def _thumb_ready(self, key: str) -> None:
        if key == self.asset.thumbnail:
            self.query_one("#detail-preview", Static).update(self._preview())

    def action_close(self) -> None:
        self.dismiss(None)

    async def action_copy(self) -> None:
        await self.app.run_action("copy_url")

    async def action_open(self) -> None:
        await self.app.run_action("open_url")

    async def action_delete(self) -> None:
        self.dismiss(None)
        await self.app.run_action("delete")
