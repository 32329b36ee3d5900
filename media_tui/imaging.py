"""Pillow helpers: read an image's format and size, and make a small PNG thumbnail.

Both functions are synchronous and may take a while on big files (disk reads, decoding), so
callers run them in a worker thread (`asyncio.to_thread`), never on the event loop. Neither
raises for a file Pillow cannot read: "not an image" is a normal answer here, not an error.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps

THUMBNAIL_SIZE = 256
"""Thumbnails fit inside a square of this many pixels, keeping the aspect ratio."""

# Pillow's names for formats Cloudinary (and operators) spell differently. MPO is what
# Pillow calls the multi-picture JPEGs many phones write; to everyone else they are JPEGs.
_FORMAT_ALIASES = {"jpeg": "jpg", "mpo": "jpg"}

# What a damaged, truncated, unsupported or hostile file can make Pillow raise.
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)

# Between 1× and 2× its pixel limit Pillow only *warns* at open time, and a warning printed to
# stderr would scribble over the TUI. We enforce the limit ourselves in `make_thumbnail` (after
# the JPEG draft shrink), so the warning carries no information. Set once at import, because
# `warnings.catch_warnings` is not thread-safe and these helpers run in worker threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def normalise_format(pillow_format: str) -> str:
    """Pillow's format name as the catalogue spells it: lower case, `jpeg` → `jpg`."""
    lowered = pillow_format.lower()
    return _FORMAT_ALIASES.get(lowered, lowered)


def probe_image(path: Path | BinaryIO) -> tuple[str, int, int] | None:
    """Return `(format, width, height)` of an image file, or None if Pillow cannot read it.

    Synchronous. Only the header is read (`Image.open` is lazy), so this is cheap even for
    huge images; the pixels are never decoded.
    """
    try:
        with Image.open(path) as image:
            if not image.format:
                return None
            width, height = image.size
            return normalise_format(image.format), width, height
    except _UNREADABLE:
        return None


def make_thumbnail(src: Path, dest: Path, max_size: int = THUMBNAIL_SIZE) -> bool:
    """Write a PNG thumbnail of `src` to `dest`, fitting inside `max_size`², keeping aspect.

    Synchronous. The file appears atomically (temp file + `os.replace`), so a reader never
    sees half a PNG. Returns False — instead of raising — when the image cannot be decoded
    (not an image, truncated, a decompression bomb) or the thumbnail cannot be written.
    """
    try:
        with Image.open(src) as image:
            # Ask the JPEG decoder to scale down while decoding (1/2…1/8): far less work
            # than decoding a 24-megapixel photo in full only to shrink it. Must precede load.
            image.draft(None, (max_size, max_size))
            if _too_many_pixels(image):
                return False
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((max_size, max_size))
            thumb = upright.convert(_thumbnail_mode(upright))
        _save_png_atomically(thumb, dest)
    except _UNREADABLE:
        return False
    return True


def _thumbnail_mode(image: Image.Image) -> str:
    """RGBA when the image has transparency (so it survives), RGB otherwise."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return "RGBA"
    return "RGB"


def _save_png_atomically(image: Image.Image, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets the library's sweep remove what a killed process left behind
    # (`.<name>.<pid>-<random>.tmp`): without it nothing could tell a dead writer's file from
    # a live one's, and SIGKILL mid-save left temp files in thumbs/ for good.
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest.name}.{os.getpid()}-", suffix=".tmp", dir=dest.parent
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            image.save(out, format="PNG")
        # No fsync: a thumbnail is cheap to remake, and the rename alone already guarantees
        # nobody reads a half-written file.
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _too_many_pixels(image: Image.Image) -> bool:
    """Would decoding this (after any draft shrink) exceed Pillow's decompression-bomb limit?"""
    limit = Image.MAX_IMAGE_PIXELS
    return limit is not None and image.size[0] * image.size[1] > limit
