"""Thumbnails for the grid: decoded off the event loop, drawn as half-block text cells.

`ThumbnailCache` keeps an LRU of small decoded PIL images. `request()` schedules a decode on
a small thread pool (decoding on the event loop would freeze input and repaint) and calls its
listeners on the event loop when the image is ready, so the grid can repaint that card. A file
that cannot be decoded is remembered as "no thumbnail" and not tried again while cached.

`render_halfblock()` turns an image into rows of "▀" cells (upper pixel as the foreground,
lower pixel as the background, in truecolour), which works in every terminal, in SVG
screenshots and in textual-serve. Its output is deterministic, so snapshots are stable.

Set `MEDIA_TUI_THUMBNAILS=0` (or pass `enabled=False`) to draw placeholders only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from rich.cells import cell_len
from rich.color import Color
from rich.segment import Segment
from rich.style import Style

__all__ = [
    "PLACEHOLDER_GLYPHS",
    "RenderedThumb",
    "ThumbnailCache",
    "decode_thumbnail",
    "render_halfblock",
    "render_placeholder",
    "thumbnails_enabled",
]

Rows = list[list[Segment]]
ReadyListener = Callable[[str], None]

DECODE_SIZE = 128
"""Decoded thumbnails fit in this many pixels square: plenty for a 22×12-pixel card."""

PLACEHOLDER_GLYPHS = {"image": "▣", "video": "▶", "raw": "▤", "upload": "↑"}
"""What a card shows instead of a picture, by resource type (or "upload" for an optimistic one)."""

_UPPER_HALF = "▀"
_LOWER_HALF = "▄"
# Transparent pixels are drawn over a neutral grey, visible on dark and light themes alike.
_MATTE = (96, 96, 96)
# Pillow only warns (on stderr, scribbling over the TUI) for images between one and two times
# its pixel limit; above that it raises, which the decoder turns into "no thumbnail".
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def thumbnails_enabled() -> bool:
    """False when the environment asks for placeholders only (`MEDIA_TUI_THUMBNAILS=0`)."""
    value = os.environ.get("MEDIA_TUI_THUMBNAILS", "1").strip().lower()
    return value not in {"0", "false", "no", "off"}


# ------------------------------------------------------------------------------ decoding


def decode_thumbnail(source: Path, max_size: int = DECODE_SIZE) -> Image.Image | None:
    """Open an image file and shrink it to fit `max_size` square, as RGB; None if unreadable.

    Synchronous and possibly slow: call it from a worker thread.
    """
    try:
        with Image.open(source) as image:
            if image.format == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale instead of full size.
                image.draft("RGB", (max_size, max_size))
            image.thumbnail((max_size, max_size))
            return _to_rgb(image)
    except Exception:
        # Any failure (missing file, damaged or hostile data, a decoder bug) means the same
        # thing to the operator: no picture. It must never reach the UI as an exception.
        return None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        matte = Image.new("RGBA", rgba.size, (*_MATTE, 255))
        return Image.alpha_composite(matte, rgba).convert("RGB")
    return image.convert("RGB")


# ----------------------------------------------------------------------------- rendering


def render_halfblock(image: Image.Image, width: int, height: int) -> Rows:
    """`height` rows of exactly `width` cells showing `image`, two pixels per cell.

    The image is scaled to fit `width`×`2*height` pixels keeping its aspect ratio, and
    centred; the rest is blank (unstyled spaces, so the caller's background shows through).
    """
    if width <= 0 or height <= 0:
        return [[] for _ in range(max(0, height))]
    pixels, left, top = _fit(image, width, height * 2)
    rows: Rows = []
    for row in range(height):
        upper = _pixel_row(pixels, row * 2 - top)
        lower = _pixel_row(pixels, row * 2 + 1 - top)
        rows.append(_cells_to_segments(upper, lower, left, width))
    return rows


_Pixel = tuple[int, int, int]


def _fit(image: Image.Image, width: int, height: int) -> tuple[list[list[_Pixel]], int, int]:
    """Scale to fit; return the pixel rows and the left/top offsets that centre them."""
    source_w, source_h = image.size
    scale = min(width / max(1, source_w), height / max(1, source_h))
    fit_w = max(1, min(width, round(source_w * scale)))
    fit_h = max(1, min(height, round(source_h * scale)))
    rgb = image.convert("RGB")
    if rgb.size != (fit_w, fit_h):
        rgb = rgb.resize((fit_w, fit_h), Image.Resampling.LANCZOS)
    data = rgb.tobytes()  # packed RGB; stable across Pillow versions, unlike getdata()
    flat: list[_Pixel] = list(zip(data[0::3], data[1::3], data[2::3], strict=True))
    pixels = [flat[y * fit_w : (y + 1) * fit_w] for y in range(fit_h)]
    top = (height - fit_h) // 2
    if top % 2 and fit_h % 2 == 0:
        # Start on a cell boundary so an even-height picture fills whole cells, not two halves.
        top -= 1
    return pixels, (width - fit_w) // 2, top


def _pixel_row(pixels: list[list[_Pixel]], y: int) -> list[_Pixel] | None:
    return pixels[y] if 0 <= y < len(pixels) else None


def _cells_to_segments(
    upper: list[_Pixel] | None, lower: list[_Pixel] | None, left: int, width: int
) -> list[Segment]:
    image_w = len(upper if upper is not None else lower or [])
    cells: list[tuple[str, Style | None]] = [(" ", None)] * left
    for x in range(image_w):
        cells.append(_cell(upper[x] if upper else None, lower[x] if lower else None))
    cells.extend([(" ", None)] * (width - len(cells)))
    return _merge_runs(cells)


_style_cache: dict[tuple[_Pixel | None, _Pixel | None], Style] = {}


def _cell(upper: _Pixel | None, lower: _Pixel | None) -> tuple[str, Style | None]:
    if upper is None and lower is None:
        return (" ", None)
    style = _style_cache.get((upper, lower))
    if style is None:
        if len(_style_cache) > 65_536:  # photos have many colours; keep memory bounded
            _style_cache.clear()
        if upper is not None:
            style = Style(
                color=Color.from_rgb(*upper),
                bgcolor=Color.from_rgb(*lower) if lower is not None else None,
            )
        else:
            assert lower is not None
            style = Style(color=Color.from_rgb(*lower))
        _style_cache[(upper, lower)] = style
    # With only the lower pixel present, draw the lower half so the upper shows the background.
    return (_UPPER_HALF if upper is not None else _LOWER_HALF, style)


def _merge_runs(cells: list[tuple[str, Style | None]]) -> list[Segment]:
    """Join neighbouring cells of the same glyph and style into one segment."""
    segments: list[Segment] = []
    run_char, run_style = cells[0] if cells else (" ", None)
    run_len = 0
    for char, style in cells:
        if char == run_char and style == run_style:
            run_len += 1
            continue
        segments.append(Segment(run_char * run_len, run_style))
        run_char, run_style, run_len = char, style, 1
    if run_len:
        segments.append(Segment(run_char * run_len, run_style))
    return segments


def render_placeholder(glyph: str, width: int, height: int, style: Style | None = None) -> Rows:
    """Blank rows of `width` cells with `glyph` centred (dim unless `style` is given)."""
    glyph_style = style if style is not None else Style(dim=True)
    glyph_w = cell_len(glyph)
    middle = (height - 1) // 2
    rows: Rows = []
    for row in range(height):
        if row != middle or glyph_w > width:
            rows.append([Segment(" " * width)])
            continue
        left = (width - glyph_w) // 2
        rows.append(
            [
                Segment(" " * left),
                Segment(glyph, glyph_style),
                Segment(" " * (width - left - glyph_w)),
            ]
        )
    return rows


# --------------------------------------------------------------------------------- cache


@dataclass(eq=False, slots=True)
class RenderedThumb:
    """A decoded thumbnail (or the memory that there is none), with its rendered rows."""

    key: str
    image: Image.Image | None  # None: decoding failed, draw the placeholder
    _rows: dict[tuple[int, int], Rows] = field(default_factory=dict, repr=False)

    def rows(self, width: int, height: int) -> Rows | None:
        """The half-block rows at this size, rendered once and then cached; None if no image."""
        if self.image is None:
            return None
        size = (width, height)
        rows = self._rows.get(size)
        if rows is None:
            rows = self._rows[size] = render_halfblock(self.image, width, height)
        return rows


class ThumbnailCache:
    """An LRU of decoded thumbnails, decoded on worker threads.

    `request()` and `get()` are called on the event loop; listeners (`on_ready` and those
    added with `add_listener`) are called there too, with the key that became ready.
    """

    def __init__(
        self,
        *,
        enabled: bool | None = None,
        max_items: int = 512,
        workers: int = 2,
        decode_size: int = DECODE_SIZE,
        on_ready: ReadyListener | None = None,
        fetch: Callable[[str], Path | None] | None = None,
    ) -> None:
        self.enabled = thumbnails_enabled() if enabled is None else enabled
        self.fetch = fetch  # turns a URL source into a local file, on the worker thread
        self.max_items = max(1, max_items)
        self.decode_size = decode_size
        self._workers = max(1, workers)
        self._executor: ThreadPoolExecutor | None = None
        self._items: OrderedDict[str, RenderedThumb] = OrderedDict()
        self._pending: set[str] = set()
        self._listeners: list[ReadyListener] = [on_ready] if on_ready is not None else []

    @property
    def count(self) -> int:
        """How many thumbnails (or remembered failures) are cached."""
        # Not __len__: an empty cache must not be falsy (`thumbs or default` would drop it).
        return len(self._items)

    def add_listener(self, listener: ReadyListener) -> Callable[[], None]:
        """Call `listener(key)` whenever a thumbnail is ready; returns a remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def get(self, key: str) -> RenderedThumb | None:
        """The decoded thumbnail, or None if it was never requested or is still decoding."""
        thumb = self._items.get(key)
        if thumb is not None:
            self._items.move_to_end(key)
        return thumb

    def pending(self, key: str) -> bool:
        return key in self._pending

    def _load(self, source: str | Path) -> Image.Image | None:
        """Worker-thread side: fetch a remote source first (cached on disk), then decode."""
        if isinstance(source, str) and source.startswith(("http://", "https://")):
            local = self.fetch(source) if self.fetch is not None else None
            return decode_thumbnail(local, self.decode_size) if local is not None else None
        return decode_thumbnail(Path(source), self.decode_size)

    def request(self, key: str, source: str | Path) -> None:
        """Decode `source` in the background unless it is cached, pending or disabled."""
        if not self.enabled or key in self._items or key in self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # No event loop to keep responsive (a script or a unit test): decode right here.
            self._store(key, self._load(source))
            return
        self._pending.add(key)
        future = self._pool().submit(self._load, source)
        future.add_done_callback(lambda done: self._deliver(loop, key, done))

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="media-tui-thumb")
        return self._executor

    def _deliver(
        self, loop: asyncio.AbstractEventLoop, key: str, done: Future[Image.Image | None]
    ) -> None:
        # Runs on a worker thread: hand the result to the loop, which owns all the state.
        image = None if done.cancelled() or done.exception() is not None else done.result()
        # If the loop has closed (the app exited while decoding), nobody is waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._finish, key, image)

    def _finish(self, key: str, image: Image.Image | None) -> None:
        if key not in self._pending:
            return  # cleared meanwhile
        self._pending.discard(key)
        self._store(key, image)

    def _store(self, key: str, image: Image.Image | None) -> None:
        self._items[key] = RenderedThumb(key, image)
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        for listener in list(self._listeners):
            listener(key)

    def clear(self) -> None:
        """Forget every thumbnail (decodes in flight are dropped when they finish)."""
        self._items.clear()
        self._pending.clear()

    def close(self) -> None:
        """Stop the worker threads; queued decodes are cancelled."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._pending.clear()
