"""AssetGrid: the library as a virtualised grid of cards, drawn line by line.

A `ScrollView` on Textual's Line API: no widget per card, so mounting and scrolling cost the
same at 100 or 100,000 assets. `render_line(y)` maps a screen line to (card row, line within
the card), assembles that line across the row's cards and caches the `Strip` in an LRU keyed
by the row's version; `refresh_entries()` bumps the versions of rows whose entries changed,
so a repaint of anything else is a cache hit.

Card layout (CARD_W × CARD_H cells; the 1-cell margin around the content is the gutter,
tinted on the cursor card):

    line 0      blank
    lines 1–6   thumbnail (half-block picture, or a placeholder glyph), 22 cells wide
    line 7      name
    line 8      format · size · dimensions
    line 9      badge (and a progress bar while uploading)

Every string on a card is untrusted (file names, ids, formats, tags): it goes through
`safe_text` and `truncate` and becomes a plain `Segment`, never markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from media_tui.console import human_size
from media_tui.safe_text import safe_text, truncate
from media_tui.store import ChangeSet
from media_tui.ui.badges import BADGE_STYLES, badge_for
from media_tui.ui.library_view import GridEntry, LibraryView, SortMode
from media_tui.ui.thumbs import PLACEHOLDER_GLYPHS, Rows, ThumbnailCache, render_placeholder

__all__ = ["CARD_H", "CARD_W", "THUMB_H", "THUMB_W", "AssetGrid"]

CARD_W = 24
CARD_H = 10
THUMB_W = 22
THUMB_H = 6
TEXT_W = THUMB_W
_THUMB_TOP = 1
_NAME_LINE = _THUMB_TOP + THUMB_H
_META_LINE = _NAME_LINE + 1
_BADGE_LINE = _META_LINE + 1

LOADING = "Opening the library…"
EMPTY_TITLE = "Your library is empty."
EMPTY_HINT = "Press u to add files, or paste / drag files onto this window."
NO_MATCH = "Nothing matches the filter ‘{filter}’ — press / to change it, Esc to clear."

# Lines kept rendered: several screens' worth, so scrolling back and forth is free.
_LINE_CACHE_SIZE = 2_048

LineKey = tuple[int, int, int, int, int, str, bool]
StylePair = tuple[Style, Style]  # (on a normal card, on the cursor card)


@dataclass(frozen=True, slots=True)
class _CardStyles:
    """Rich styles resolved from the component classes, for the current theme and focus."""

    base: Style
    cursor: Style
    name: StylePair
    meta: StylePair
    placeholder: StylePair
    progress_todo: StylePair
    badges: dict[str, StylePair]
    empty_title: Style
    empty_hint: Style


class AssetGrid(ScrollView, can_focus=True):
    """The library grid: cards for a `LibraryView`, with a cursor."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "asset-grid--cursor",
        "asset-grid--name",
        "asset-grid--meta",
        "asset-grid--placeholder",
        "asset-grid--progress-todo",
        "asset-grid--empty-title",
        "asset-grid--empty-hint",
        *(f"asset-grid--badge-{style}" for style in BADGE_STYLES),
    }

    DEFAULT_CSS = """
    AssetGrid {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        & > .asset-grid--cursor { background: $accent 15%; }
        &:focus > .asset-grid--cursor { background: $accent 35%; }
        & > .asset-grid--name { color: $foreground; text-style: bold; }
        & > .asset-grid--meta { color: $text-muted; }
        & > .asset-grid--placeholder { color: $text-muted; }
        & > .asset-grid--progress-todo { color: $text-muted; }
        & > .asset-grid--empty-title { color: $foreground; text-style: bold; }
        & > .asset-grid--empty-hint { color: $text-muted; }
        & > .asset-grid--badge-queued { color: $text-muted; }
        & > .asset-grid--badge-uploading { color: $text-accent; }
        & > .asset-grid--badge-syncing { color: $text-warning; }
        & > .asset-grid--badge-synced { color: $text-success; }
        & > .asset-grid--badge-failed { color: $text-error; }
        & > .asset-grid--badge-deleting { color: $text-error; }
        & > .asset-grid--badge-retrying { color: $text-warning; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("left,h", "cursor_left", "Left", show=False),
        Binding("right,l", "cursor_right", "Right", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "activate", "Open"),
    ]

    cursor_index: reactive[int] = reactive(0, repaint=False, init=False)
    """Index (in the view) of the card under the cursor."""

    class Highlighted(Message):
        """The cursor moved to another entry (None: the grid is empty)."""

        def __init__(self, grid: AssetGrid, public_id: str | None, index: int) -> None:
            super().__init__()
            self.grid = grid
            self.public_id = public_id
            self.index = index

        @property
        def control(self) -> AssetGrid:
            return self.grid

    class Activated(Message):
        """Enter (or a double click) on an entry: open its detail view."""

        def __init__(self, grid: AssetGrid, public_id: str, index: int) -> None:
            super().__init__()
            self.grid = grid
            self.public_id = public_id
            self.index = index

        @property
        def control(self) -> AssetGrid:
            return self.grid

    def __init__(
        self,
        view: LibraryView,
        thumbs: ThumbnailCache,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.view = view
        self.thumbs = thumbs
        self._cols = 1
        self._line_cache: LRUCache[LineKey, Strip] = LRUCache(_LINE_CACHE_SIZE)
        self._row_versions: dict[int, int] = {}
        self._styles: _CardStyles | None = None
        self._placeholders: dict[tuple[str, bool], Rows] = {}
        self._thumb_waiters: dict[str, set[str]] = {}  # thumbnail key -> public ids showing it
        self._cursor_id: str | None = None
        self._opening = False  # not `loading`: that is Widget's own reactive (a spinner overlay)
        self._follow_scroll = True  # whether a cursor move scrolls it into view
        self._remove_thumb_listener: Callable[[], None] | None = None

    # ---------------------------------------------------------------- public API

    @property
    def columns(self) -> int:
        """Cards per row at the current width."""
        return self._cols

    @property
    def cursor_public_id(self) -> str | None:
        """The public id under the cursor, or None when the grid is empty."""
        return self._cursor_id

    def apply_changes(self, changes: ChangeSet) -> None:
        """Follow a store change set: update the view, then repaint what changed."""
        self.refresh_entries(self.view.apply(changes))

    def refresh_entries(self, indices: set[int] | None) -> None:
        """Repaint the cards at these view indices; None repaints everything (and re-lays out)."""
        if not self.is_mounted:
            # Nothing is drawn yet; mounting lays out and reads the view afresh.
            self._line_cache.clear()
            self._row_versions.clear()
            return
        if indices is None:
            self._line_cache.clear()
            self._row_versions.clear()
            self._update_layout()
            self._follow_cursor_entry()
            self.refresh()
            return
        if not indices:
            return
        rows = {index // self._cols for index in indices}
        for row in rows:
            self._row_versions[row] = self._row_versions.get(row, 0) + 1
        self._refresh_rows(rows)
        self._follow_cursor_entry()

    def set_sort(self, mode: SortMode) -> None:
        """Sort by `mode`, keeping the cursor on the same entry."""
        self.view.sort = mode
        self.refresh_entries(None)

    def cycle_sort(self) -> SortMode:
        """Switch to the next sort mode (newest → name → size) and return it."""
        self.set_sort(self.view.sort.next())
        return self.view.sort

    def set_filter(self, text: str) -> None:
        """Show only entries matching `text` (see `LibraryView`); "" shows everything."""
        self.view.filter_text = text
        self.refresh_entries(None)

    # --------------------------------------------------------------- lifecycle

    def on_mount(self) -> None:
        self._remove_thumb_listener = self.thumbs.add_listener(self._thumbnail_ready)
        self._update_layout()
        self._sync_cursor_id()

    def on_unmount(self) -> None:
        if self._remove_thumb_listener is not None:
            self._remove_thumb_listener()
            self._remove_thumb_listener = None

    def on_resize(self, event: events.Resize) -> None:
        del event
        self._update_layout()
        self._scroll_to_cursor()

    def notify_style_update(self) -> None:
        # Theme, focus or CSS changed: every resolved style and rendered line is stale.
        super().notify_style_update()
        self._styles = None
        self._placeholders.clear()
        self._line_cache.clear()
        self.refresh()

    def _update_layout(self) -> None:
        """Recompute the columns and the virtual size for the current width and entry count."""
        width, height = self.size
        count = len(self.view)
        cols = max(1, width // CARD_W)
        if _rows(count, cols) * CARD_H > height:
            # The vertical scrollbar will take its share of the width.
            cols = max(1, (width - self.styles.scrollbar_size_vertical) // CARD_W)
        if cols != self._cols:
            self._cols = cols
            self._line_cache.clear()
            self._row_versions.clear()
        self.virtual_size = (
            Size(cols * CARD_W, _rows(count, cols) * CARD_H) if count else Size(0, 0)
        )

    # ------------------------------------------------------------------ cursor

    def validate_cursor_index(self, index: int) -> int:
        return max(0, min(index, len(self.view) - 1))

    def watch_cursor_index(self, old: int, new: int) -> None:
        if not self.is_mounted:
            return
        self._refresh_rows({old // self._cols, new // self._cols})
        if self._follow_scroll:
            self._scroll_to_cursor()
        self._sync_cursor_id()

    def _follow_cursor_entry(self) -> None:
        """After the list changed, keep the cursor on its entry, or clamp it if that is gone."""
        index = self.view.index_of(self._cursor_id) if self._cursor_id is not None else None
        if index is None:
            index = self.validate_cursor_index(self.cursor_index)
        if index == self.cursor_index:
            self._sync_cursor_id()
            return
        # Keep the cursor in view only if it was: an operator who scrolled away with the
        # mouse wheel must not be pulled back by every upload that shifts the list.
        self._follow_scroll = self._row_in_view(self.cursor_index // self._cols)
        try:
            self.cursor_index = index
        finally:
            self._follow_scroll = True

    def _sync_cursor_id(self) -> None:
        """Post `Highlighted` when the entry under the cursor is another one than before."""
        public_id = self.view[self.cursor_index].public_id if len(self.view) else None
        if public_id != self._cursor_id:
            self._cursor_id = public_id
            self.post_message(self.Highlighted(self, public_id, self.cursor_index))

    def _scroll_to_cursor(self) -> None:
        if not len(self.view):
            return
        row, col = divmod(self.cursor_index, self._cols)
        region = Region(col * CARD_W, row * CARD_H, CARD_W, CARD_H)
        self.scroll_to_region(region, animate=False, immediate=True)

    @property
    def _page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height // CARD_H)

    def action_cursor_up(self) -> None:
        if self.cursor_index >= self._cols:
            self.cursor_index -= self._cols

    def action_cursor_down(self) -> None:
        count = len(self.view)
        target = self.cursor_index + self._cols
        if target < count:
            self.cursor_index = target
        elif self.cursor_index // self._cols < (count - 1) // self._cols:
            # Below is the short last row, with no card under the cursor: go to its last card.
            self.cursor_index = count - 1

    def action_cursor_left(self) -> None:
        self.cursor_index -= 1

    def action_cursor_right(self) -> None:
        self.cursor_index += 1

    def action_page_down(self) -> None:
        step = self._page_rows * self._cols
        # Scroll by the same page first, so the cursor keeps its place on screen.
        self.scroll_to(y=self.scroll_y + self._page_rows * CARD_H, animate=False, immediate=True)
        self.cursor_index = min(len(self.view) - 1, self.cursor_index + step)

    def action_page_up(self) -> None:
        step = self._page_rows * self._cols
        self.scroll_to(y=self.scroll_y - self._page_rows * CARD_H, animate=False, immediate=True)
        target = self.cursor_index - step
        self.cursor_index = target if target >= 0 else self.cursor_index % self._cols

    def action_first(self) -> None:
        self.cursor_index = 0

    def action_last(self) -> None:
        self.cursor_index = len(self.view) - 1

    def action_activate(self) -> None:
        if len(self.view):
            entry = self.view[self.cursor_index]
            self.post_message(self.Activated(self, entry.public_id, self.cursor_index))

    def on_click(self, event: events.Click) -> None:
        index = self._index_at(event)
        if index is None:
            return
        self.cursor_index = index
        if event.chain >= 2:
            self.action_activate()

    def _index_at(self, event: events.MouseEvent) -> int | None:
        offset = event.get_content_offset(self)
        if offset is None:
            return None
        x = offset.x + self.scroll_offset.x
        y = offset.y + self.scroll_offset.y
        col = x // CARD_W
        if col >= self._cols:
            return None
        index = (y // CARD_H) * self._cols + col
        return index if index < len(self.view) else None

    # --------------------------------------------------------------- painting

    def _row_in_view(self, row: int) -> bool:
        top = self.scroll_offset.y
        y = row * CARD_H
        return y < top + self.size.height and y + CARD_H > top

    def _refresh_rows(self, rows: set[int]) -> None:
        """Repaint the screen lines of these card rows, skipping rows out of view."""
        for row in rows:
            if self._row_in_view(row):
                self.refresh_lines(row * CARD_H, CARD_H)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        count = len(self.view)
        if not count:
            return self._empty_line(y)
        row, line = divmod(y + scroll_y, CARD_H)
        cols = self._cols
        if row * cols >= count:
            return Strip.blank(self.size.width, self._card_styles().base)
        cursor_row, cursor_col = divmod(self.cursor_index, cols)
        key: LineKey = (
            row,
            line,
            cols,
            cursor_col if row == cursor_row else -1,
            self._row_versions.get(row, 0),
            self.app.theme,
            self.has_focus,
        )
        strip = self._line_cache.get(key)
        if strip is None:
            strip = self._render_row_line(row, line, key[3])
            self._line_cache.set(key, strip)
        return strip.crop(scroll_x, scroll_x + self.size.width) if scroll_x else strip

    def _render_row_line(self, row: int, line: int, cursor_col: int) -> Strip:
        cols = self._cols
        count = len(self.view)
        segments: list[Segment] = []
        for col in range(cols):
            index = row * cols + col
            if index >= count:
                blank = " " * (CARD_W * (cols - col))
                segments.append(Segment(blank, self._card_styles().base))
                break
            segments.extend(self._card_line(self.view[index], line, col == cursor_col))
        return Strip(segments, cols * CARD_W)

    def _card_line(self, entry: GridEntry, line: int, cursor: bool) -> list[Segment]:
        """One line of one card: exactly CARD_W cells."""
        styles = self._card_styles()
        base = styles.cursor if cursor else styles.base
        if line < _THUMB_TOP:
            return [Segment(" " * CARD_W, base)]
        if line < _NAME_LINE:
            picture = self._picture(entry, cursor)[line - _THUMB_TOP]
            return [Segment(" ", base), *Segment.apply_style(picture, base), Segment(" ", base)]
        if line == _NAME_LINE:
            return _text_line(entry.name, styles.name[cursor], base)
        if line == _META_LINE:
            return _text_line(_meta_text(entry), styles.meta[cursor], base)
        return self._badge_line(entry, cursor, base)

    def _badge_line(self, entry: GridEntry, cursor: bool, base: Style) -> list[Segment]:
        styles = self._card_styles()
        badge = badge_for(entry)
        style = styles.badges[badge.style][cursor]
        job = entry.job
        if badge.style != "uploading" or job is None:
            return _text_line(badge.text, style, base)
        # A thin progress bar after the percentage, filling the rest of the line.
        bar_w = TEXT_W - cell_len(badge.text) - 1
        done = round(bar_w * job.fraction)
        return [
            Segment(" ", base),
            Segment(badge.text + " ", style),
            Segment("━" * done, style),
            Segment("─" * (bar_w - done), styles.progress_todo[cursor]),
            Segment(" ", base),
        ]

    def _picture(self, entry: GridEntry, cursor: bool) -> Rows:
        """The thumbnail rows if decoded; otherwise ask for it and show the placeholder."""
        source = entry.thumbnail
        # A URL (a cloud thumbnail) is fetched by the cache's worker threads, like a decode.
        if source and self.thumbs.enabled:
            thumb = self.thumbs.get(source)
            if thumb is None:
                self._thumb_waiters.setdefault(source, set()).add(entry.public_id)
                self.thumbs.request(source, source)
            else:
                rows = thumb.rows(THUMB_W, THUMB_H)
                if rows is not None:
                    return rows
        return self._placeholder(_placeholder_kind(entry), cursor)

    def _placeholder(self, kind: str, cursor: bool) -> Rows:
        rows = self._placeholders.get((kind, cursor))
        if rows is None:
            style = self._card_styles().placeholder[cursor]
            rows = render_placeholder(PLACEHOLDER_GLYPHS[kind], THUMB_W, THUMB_H, style)
            self._placeholders[(kind, cursor)] = rows
        return rows

    def _thumbnail_ready(self, key: str) -> None:
        public_ids = self._thumb_waiters.pop(key, set())
        indices = {i for pid in public_ids if (i := self.view.index_of(pid)) is not None}
        if indices:
            self.refresh_entries(indices)

    def _empty_line(self, y: int) -> Strip:
        styles = self._card_styles()
        width, height = self.size
        lines = self._empty_message(styles)
        index = y - max(0, (height - len(lines)) // 2)
        if not 0 <= index < len(lines):
            return Strip.blank(width, styles.base)
        text, style = lines[index]
        text = truncate(text, width)
        left = (width - cell_len(text)) // 2
        right = width - left - cell_len(text)
        return Strip(
            [
                Segment(" " * left, styles.base),
                Segment(text, style),
                Segment(" " * right, styles.base),
            ],
            width,
        )

    def set_loading(self, loading: bool) -> None:
        """While the first snapshot loads, say so instead of claiming the library is empty."""
        if loading != self._opening:
            self._opening = loading
            self.refresh()

    def _empty_message(self, styles: _CardStyles) -> list[tuple[str, Style]]:
        if self._opening:
            return [(LOADING, styles.empty_hint)]
        if self.view.filter_text.strip() and self.view.total:
            shown = truncate(safe_text(self.view.filter_text.strip()), 40)
            return [(NO_MATCH.format(filter=shown), styles.empty_hint)]
        return [
            (EMPTY_TITLE, styles.empty_title),
            ("", styles.base),
            (EMPTY_HINT, styles.empty_hint),
        ]

    def _card_styles(self) -> _CardStyles:
        if self._styles is None:
            self._styles = self._resolve_styles()
        return self._styles

    def _resolve_styles(self) -> _CardStyles:
        cursor = self.get_component_rich_style("asset-grid--cursor")
        on_cursor = Style(bgcolor=cursor.bgcolor)

        def pair(component: str) -> StylePair:
            style = self.get_component_rich_style(component)
            return (style, style + on_cursor)

        return _CardStyles(
            base=self.rich_style,
            cursor=cursor,
            name=pair("asset-grid--name"),
            meta=pair("asset-grid--meta"),
            placeholder=pair("asset-grid--placeholder"),
            progress_todo=pair("asset-grid--progress-todo"),
            badges={style: pair(f"asset-grid--badge-{style}") for style in BADGE_STYLES},
            empty_title=self.get_component_rich_style("asset-grid--empty-title"),
            empty_hint=self.get_component_rich_style("asset-grid--empty-hint"),
        )


def _rows(count: int, cols: int) -> int:
    return -(-count // cols)


def _text_line(text: str, style: Style, base: Style) -> list[Segment]:
    """A card text line: 1-cell margin, the safe text cut to TEXT_W cells, padding, margin."""
    shown = truncate(safe_text(text), TEXT_W)
    pad = TEXT_W - cell_len(shown)
    return [Segment(" ", base), Segment(shown, style), Segment(" " * (pad + 1), base)]


def _meta_text(entry: GridEntry) -> str:
    kind = entry.format or entry.resource_type.value
    text = f"{kind.upper()} · {human_size(entry.size)}"
    asset = entry.asset
    if asset is not None and asset.width and asset.height:
        with_size = f"{text} · {asset.width}×{asset.height}"
        if cell_len(with_size) <= TEXT_W:
            return with_size
    return text


def _placeholder_kind(entry: GridEntry) -> str:
    if entry.optimistic:
        return "upload"
    return entry.resource_type.value
