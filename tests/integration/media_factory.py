"""Small real media files for tests: decodable images and sniffable videos, each with unique bytes."""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image


def make_png(
    path: Path, *, seed: int, size: tuple[int, int] = (16, 12), padding: int = 0, fmt: str = "PNG"
) -> Path:
    """An image whose pixels depend on `seed`; `padding` random bytes after the end make it bigger
    without making it slower to decode (decoders stop at the image's end marker)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    image.putpixel((0, 0), (seed % 256, (seed // 256) % 256, 7))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    path.write_bytes(buffer.getvalue() + rng.randbytes(padding))
    return path


def make_video(path: Path, *, size: int, seed: int = 0) -> Path:
    """An MP4-looking file (an `ftyp` box, then noise) of exactly `size` bytes."""
    header = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    rng = random.Random(seed)
    with open(path, "wb") as handle:
        handle.write(header)
        remaining = size - len(header)
        while remaining > 0:
            chunk = min(remaining, 1 << 20)
            handle.write(rng.randbytes(chunk))
            remaining -= chunk
    return path
