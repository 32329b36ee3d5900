"""AssetGrid pilot tests, plus the thumbnail renderer and cache it draws with."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from media_tui.model import MediaAsset, ResourceType, UploadJob
from media_tui.store import ChangeSet, MediaStore
from media_tui.ui import thumbs as thumbs_module
from media_tui.ui.grid import CARD_H, CARD_W, EMPTY_HINT, EMPTY_TITLE, AssetGrid
from media_tui.ui.library_view import LibraryView, SortMode
from media_tui.ui.thumbs import ThumbnailCache, render_halfblock, render_placeholder

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SIZE = (120, 40)


def asset(public_id: str, seconds: float = 0, **kw: object) -> MediaAsset:
    fields: dict[str, object] = {"format": "jpg", "bytes": 2_048}
    fields.update(kw)
    return MediaAsset(
        public_id=public_id,
        created_at=T0 + timedelta(seconds=seconds),
        updated_at=T0 + timedelta(seconds=seconds),
        **fields,  # type: ignore[arg-type]
    )


def numbered(count: int) -> list[MediaAsset]:
    """`count` assets, newest last created, so index i shows `a{count-1-i}`."""
    return [asset(f"a{i:06d}", i) for i in range(count)]


class GridApp(App[None]):
    """Just the grid over a store the test fills directly."""

    def __init__(self, store: MediaStore, thumbs: ThumbnailCache | None = None) -> None:
        super().__init__()
        self.store = store
        self.view = LibraryView(store)
        self.thumbs = thumbs if thumbs is not None else ThumbnailCache(enabled=False)
        self.highlighted: list[str | None] = []
        self.activated: list[str] = []

    def compose(self) -> ComposeResult:
        yield AssetGrid(self.view, self.thumbs, id="grid")

    def on_mount(self) -> None:
        self.store.subscribe(self.follow)

    def follow(self, changes: ChangeSet) -> None:
        self.grid.refresh_entries(self.view.apply(changes))

    @property
    def grid(self) -> AssetGrid:
        return self.query_one(AssetGrid)

    def on_asset_grid_highlighted(self, message: AssetGrid.Highlighted) -> None:
        self.highlighted.append(message.public_id)

    def on_asset_grid_activated(self, message: AssetGrid.Activated) -> None:
        self.activated.append(message.public_id)


def app_with(assets: Iterable[MediaAsset], thumbs: ThumbnailCache | None = None) -> GridApp:
    store = MediaStore()
    store.snapshot_loaded(assets)
    return GridApp(store, thumbs)


def screen_lines(grid: AssetGrid) -> list[str]:
    return [grid.render_line(y).text for y in range(grid.size.height)]


def screen_text(grid: AssetGrid) -> str:
    return "\n".join(screen_lines(grid))


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool]) -> None:
    """Let the app run until `condition` holds; fail after 30 seconds (a busy machine is slow)."""
    async with asyncio.timeout(30):
        while not condition():
            await pilot.pause(0.01)


# --------------------------------------------------------------------------- empty state


async def test_empty_library_shows_how_to_add_files() -> None:
    app = app_with([])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = screen_text(app.grid)
        assert EMPTY_TITLE in text and EMPTY_HINT in text
        assert app.highlighted == []
        await pilot.press("down", "end", "enter")  # nothing to move to or open
        assert app.activated == []


async def test_filter_hiding_everything_says_so_safely() -> None:
    app = app_with(numbered(3))
    async with app.run_test(size=SIZE) as pilot:
        app.grid.set_filter("x[/]\x1b[2J")
        await pilot.pause()
        text = screen_text(app.grid)
        assert "Nothing matches the filter ‘x[/]\ufffd[2J’ — press / to change it" in text
        app.grid.set_filter("")
        await pilot.pause()
        assert "Nothing matches" not in screen_text(app.grid)
        assert len(app.view) == 3


# -------------------------------------------------------------------------------- cursor


async def test_cursor_moves_with_arrows_vim_keys_pages_and_ends() -> None:
    app = app_with(numbered(100))
    async with app.run_test(size=SIZE) as pilot:
        grid = app.grid
        await pilot.pause()
        cols = grid.columns
        page = (grid.scrollable_content_region.height // CARD_H) * cols
        assert cols == (SIZE[0] - grid.styles.scrollbar_size_vertical) // CARD_W
        assert app.highlighted == ["a000099"]

        await pilot.press("right")
        assert grid.cursor_index == 1
        await pilot.press("down")
        assert grid.cursor_index == 1 + cols
        await pilot.press("l", "j")
        assert grid.cursor_index == 2 + 2 * cols
        await pilot.press("h", "k", "left")
        assert grid.cursor_index == cols
        await pilot.press("pagedown")
        assert grid.cursor_index == cols + page
        await pilot.press("pageup")
        assert grid.cursor_index == cols
        await pilot.press("end")
        assert grid.cursor_index == 99
        assert grid.cursor_public_id == "a000000"
        await pilot.press("down", "right")  # already at the end
        assert grid.cursor_index == 99
        await pilot.press("home", "up", "left")
        assert grid.cursor_index == 0
        assert app.highlighted[-1] == "a000099"


async def test_end_scrolls_the_last_card_into_view() -> None:
    app = app_with(numbered(100))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end")
        await pilot.pause()
        grid = app.grid
        assert grid.scroll_offset.y == grid.max_scroll_y
        assert "a000000" in screen_text(grid)


async def test_down_from_above_a_short_last_row_goes_to_the_last_card() -> None:
    app = app_with(numbered(6))
    async with app.run_test(size=(5 * CARD_W, 40)) as pilot:
        grid = app.grid
        assert grid.columns == 5
        await pilot.press("right", "right", "right", "down")
        assert grid.cursor_index == 5


async def test_columns_follow_a_resize() -> None:
    app = app_with(numbered(10))
    async with app.run_test(size=SIZE) as pilot:
        grid = app.grid
        assert grid.columns == 5  # 10 cards in two rows fit: no scrollbar
        await pilot.resize_terminal(52, 40)
        await pilot.pause()
        assert grid.columns == 2
        assert grid.virtual_size.width == 2 * CARD_W
        assert grid.virtual_size.height == 5 * CARD_H
        await pilot.resize_terminal(240, 40)
        await pilot.pause()
        assert grid.columns == 10
        assert all(cell_len(line) <= 240 for line in screen_lines(grid))


async def test_enter_posts_activated_with_the_public_id() -> None:
    app = app_with(numbered(20))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right", "right", "enter")
        await pilot.pause()
        assert app.activated == ["a000017"]


async def test_click_selects_and_double_click_activates() -> None:
    app = app_with(numbered(20))
    async with app.run_test(size=SIZE) as pilot:
        grid = app.grid
        await pilot.click(AssetGrid, offset=(2 * CARD_W + 5, CARD_H + 3))
        assert grid.cursor_index == grid.columns + 2
        await pilot.double_click(AssetGrid, offset=(5, 3))
        await pilot.pause()
        assert grid.cursor_index == 0
        assert app.activated == ["a000019"]


# ---------------------------------------------------------------------- following the store


async def test_upsert_appears_and_cursor_stays_on_its_entry() -> None:
    app = app_with(numbered(5))
    async with app.run_test(size=SIZE) as pilot:
        grid = app.grid
        await pilot.press("right")
        assert grid.cursor_public_id == "a000003"
        app.store.remote_upsert(asset("fresh", 100, original_filename="fresh-photo.jpg"))
        await pilot.pause()
        assert app.view[0].public_id == "fresh"
        assert "fresh-photo.jpg" in screen_text(grid)
        assert grid.cursor_index == 2 and grid.cursor_public_id == "a000003"

        # An in-place change repaints only its row, and shows up.
        app.store.remote_upsert(
            asset("a000003", 3, bytes=5_000_000).replace(updated_at=T0 + timedelta(days=1))
        )
        await pilot.pause()
        assert "5.0 MB" in screen_text(grid)


async def test_list_changes_do_not_pull_a_scrolled_away_view_back() -> None:
    app = app_with(numbered(200))
    async with app.run_test(size=SIZE) as pilot:
        grid = app.grid
        grid.scroll_to(y=30 * CARD_H, animate=False, immediate=True)  # as a mouse wheel would
        await pilot.pause()
        app.store.remote_upsert(asset("fresh", 1_000))  # shifts every index, the cursor's too
        await pilot.pause()
        assert grid.cursor_public_id == "a000199" and grid.cursor_index == 1
        assert grid.scroll_offset.y == 30 * CARD_H
        await pilot.press("right")  # but moving the cursor brings it back into view
        assert grid.scroll_offset.y == 0


async def test_cursor_clamps_when_its_entry_goes() -> None:
    app = app_with(numbered(5))
    async with app.run_test(size=SIZE) as pilot:
        grid = app.grid
        await pilot.press("end")
        app.store.remote_delete("a000000", committed_at=T0 + timedelta(days=1))
        await pilot.pause()
        assert grid.cursor_index == 3
        assert app.highlighted[-1] == "a000001"


async def test_optimistic_upload_shows_progress_then_synced() -> None:
    app = app_with(numbered(2))
    async with app.run_test(size=SIZE) as pilot:
        job = UploadJob(
            job_id="j1", path=Path("/tmp/holiday.mov"), public_id="up/holiday", size=1000
        )
        app.store.upload_queued(job.replace(resource_type=ResourceType.VIDEO))
        await pilot.pause()
        text = screen_text(app.grid)
        assert "holiday.mov" in text and "queued" in text and "↑" in text
        app.store.upload_progress("j1", 420, 100.0)
        await pilot.pause()
        assert "↑ 42%" in screen_text(app.grid)
        app.store.upload_succeeded(
            "j1", asset("up/holiday", 10_000, original_filename="holiday.mov")
        )
        await pilot.pause()
        assert "↑ 42%" not in screen_text(app.grid)


async def test_sort_cycle_keeps_the_cursor_entry() -> None:
    assets = [
        asset("small", 2, bytes=1),
        asset("big", 1, bytes=10**6),
        asset("mid", 0, bytes=10**3),
    ]
    app = app_with(assets)
    async with app.run_test(size=SIZE) as pilot:
        grid = app.grid
        await pilot.press("right")  # "big" (newest first: small, big, mid)
        assert grid.cursor_public_id == "big"
        assert grid.cycle_sort() is SortMode.NAME
        assert grid.cycle_sort() is SortMode.SIZE
        await pilot.pause()
        assert grid.cursor_index == 0 and grid.cursor_public_id == "big"


# -------------------------------------------------------------------------- hostile names

HOSTILE = [
    "[/].jpg",
    "a[/b.png",
    "[bold]x[/bold][link='https://evil']y[/link].png",
    "x\x1b[31mred.png",
    "new\nline.png",
    "osc\x1b]52;c;aGk=\x07.png",
    "rtl\u202egnp.exe",
    "tab\there.png",
    "漢字" * 150,
    "👩‍👩‍👧‍👦 family.png",
]


async def test_hostile_names_render_safely() -> None:
    assets = [
        asset(f"h{i}", i, original_filename=name, format=name[:9], tags=(name,), folder=name)
        for i, name in enumerate(HOSTILE)
    ]
    app = app_with(assets)
    async with app.run_test(size=SIZE) as pilot:
        grid = app.grid
        await pilot.pause()
        for _ in range(len(HOSTILE)):
            for y in range(grid.size.height):
                strip = grid.render_line(y)
                assert strip.cell_length <= grid.size.width
                for segment in strip:
                    assert all(
                        ch.isprintable() and unicodedata.category(ch) != "Cf" for ch in segment.text
                    ), repr(segment.text)
                    assert "\x1b" not in segment.text
            # Every card line is exactly one card wide, so the columns stay aligned.
            lines = screen_lines(grid)
            assert all(cell_len(line) == grid.virtual_size.width for line in lines if line.strip())
            await pilot.press("right")
        text = screen_text(grid)
        assert "[/].jpg" in text and "a[/b.png" in text  # shown literally, not parsed
        assert "漢字漢字" in text and "…" in text
        app.export_screenshot()  # the whole pipeline, including the SVG exporter


# ------------------------------------------------------------------------------- scale


@pytest.mark.slow
async def test_hundred_thousand_assets_mount_and_navigate() -> None:
    app = app_with(numbered(100_000))
    async with app.run_test(size=SIZE) as pilot:
        grid = app.grid
        await pilot.pause()
        assert "a099999" in screen_text(grid)
        await pilot.press("pagedown")
        page = (grid.scrollable_content_region.height // CARD_H) * grid.columns
        assert grid.cursor_index == page
        await pilot.press("end")
        await pilot.pause()
        assert grid.cursor_index == 99_999
        assert grid.cursor_public_id == "a000000"
        assert "a000000" in screen_text(grid)
        await pilot.press("pageup", "home")
        assert grid.cursor_index == 0 and grid.scroll_offset.y == 0


# --------------------------------------------------------------------------- thumbnails


def _gradient(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height))
    image.putdata(
        [(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)]
    )
    return image


def test_halfblock_rows_have_exact_width_and_are_deterministic() -> None:
    image = _gradient(64, 64)
    rows = render_halfblock(image, 22, 6)
    assert len(rows) == 6
    assert all(sum(cell_len(s.text) for s in row) == 22 for row in rows)
    assert rows == render_halfblock(image, 22, 6)
    painted = [s for row in rows for s in row if s.style is not None]
    assert painted and all(set(s.text) <= {"▀", "▄"} for s in painted)
    assert all(s.style.color is not None and s.style.color.triplet is not None for s in painted)  # type: ignore[union-attr]


def test_halfblock_keeps_aspect_and_centres() -> None:
    rows = render_halfblock(_gradient(100, 10), 22, 6)  # a wide strip: 22×2 pixels
    texts = ["".join(s.text for s in row) for row in rows]
    assert texts[0].strip() == "" and texts[-1].strip() == ""
    assert sum(1 for t in texts if t.strip()) == 1
    tall = render_halfblock(_gradient(10, 100), 22, 6)  # a tall one: 1×12 pixels, centred
    assert all("".join(s.text for s in row)[10] == "▀" for row in tall)


def test_placeholder_centres_its_glyph() -> None:
    rows = render_placeholder("▶", 22, 6)
    texts = ["".join(s.text for s in row) for row in rows]
    assert all(cell_len(t) == 22 for t in texts)
    assert texts[2].index("▶") == 10 and sum("▶" in t for t in texts) == 1


def test_decode_failure_is_cached_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    calls: list[Path] = []
    real = thumbs_module.decode_thumbnail

    def counting(source: Path, max_size: int = 128) -> Image.Image | None:
        calls.append(source)
        return real(source, max_size)

    monkeypatch.setattr(thumbs_module, "decode_thumbnail", counting)
    cache = ThumbnailCache(enabled=True)
    cache.request("bad", bad)  # no running loop: decoded right here
    cache.request("bad", bad)
    thumb = cache.get("bad")
    assert thumb is not None and thumb.image is None and thumb.rows(22, 6) is None
    assert calls == [bad]


def test_cache_is_lru_and_env_can_disable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.png"
    _gradient(300, 200).save(path)
    cache = ThumbnailCache(enabled=True, max_items=2)
    for key in ("a", "b", "c"):
        cache.request(key, path)
    assert cache.get("a") is None and cache.get("c") is not None
    image = cache.get("c").image  # type: ignore[union-attr]
    assert image is not None and max(image.size) <= 128 and image.mode == "RGB"

    monkeypatch.setenv("MEDIA_TUI_THUMBNAILS", "0")
    disabled = ThumbnailCache()
    disabled.request("a", path)
    assert not disabled.enabled and disabled.get("a") is None


async def test_grid_draws_a_thumbnail_once_decoded(tmp_path: Path) -> None:
    path = tmp_path / "thumb.png"
    _gradient(256, 160).save(path)
    cache = ThumbnailCache(enabled=True)
    app = app_with([asset("pic", 1, thumbnail=str(path)), asset("other", 0)], cache)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: cache.get(str(path)) is not None)
        await pilot.pause()
        lines = screen_lines(app.grid)
        assert any("▀" in line[:CARD_W] for line in lines[1:7])  # the first card's picture
        assert "▣" in lines[3]  # the second card has no thumbnail: placeholder
    cache.close()
