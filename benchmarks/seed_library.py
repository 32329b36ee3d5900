"""Seed a local library's catalogue with synthetic assets, for trying the TUI at scale.

    python -m benchmarks.seed_library DIR --count 100000 [--thumbnails 64] [--seed 7]

Writes `DIR/catalog.sqlite3` through `LocalCatalog.upsert_many`, in batches, so a running
`media-tui --library DIR` sees the assets arrive live. The assets are catalogue rows only (no
stored files): enough for the grid, `ls` and the benchmarks. With `--thumbnails N` it also
draws N small gradient PNGs into `DIR/seed-thumbs/` and gives them to the image assets in
turn, so the grid has pictures to decode. Seeding the same DIR twice with the same options
upserts the same public ids (no duplicates).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from media_tui.model import MediaAsset, ResourceType

T0 = datetime(2025, 1, 1, tzinfo=UTC)
_FORMATS = {ResourceType.IMAGE: "jpg", ResourceType.VIDEO: "mp4", ResourceType.RAW: "pdf"}
_KINDS = [ResourceType.IMAGE] * 8 + [ResourceType.VIDEO, ResourceType.RAW]
_FOLDERS = ["", "trips", "trips/alps", "clients/acme", "scans"]
_TAGS = ["summer", "winter", "raw", "final", "draft", "team"]


def synthetic_assets(
    count: int, *, seed: int = 7, prefix: str = "seed", thumbnails: list[Path] | None = None
) -> list[MediaAsset]:
    """`count` deterministic assets with varied names, sizes, types, folders, tags and times."""
    rng = random.Random(seed)
    assets = []
    for i in range(count):
        kind = rng.choice(_KINDS)
        fmt = _FORMATS[kind]
        created = T0 + timedelta(seconds=rng.randrange(365 * 24 * 3600))
        thumb = None
        if thumbnails and kind is ResourceType.IMAGE:
            thumb = str(thumbnails[i % len(thumbnails)])
        assets.append(
            MediaAsset(
                public_id=f"{prefix}/{i:07d}",
                resource_type=kind,
                format=fmt,
                bytes=rng.randrange(10_000, 50_000_000),
                width=rng.choice([4000, 1920, 1080]) if kind is ResourceType.IMAGE else None,
                height=rng.choice([3000, 1080, 1350]) if kind is ResourceType.IMAGE else None,
                folder=rng.choice(_FOLDERS),
                tags=tuple(rng.sample(_TAGS, rng.randrange(3))),
                original_filename=f"IMG_{i:07d}.{fmt}",
                thumbnail=thumb,
                row_id=i + 1,
                created_at=created,
                updated_at=created,
            )
        )
    return assets


def draw_thumbnails(folder: Path, count: int) -> list[Path]:
    """`count` small distinct gradient PNGs (Pillow), reused if already there."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"gradient-{n:03d}.png"
        if not path.exists():
            hue = n * 255 // max(1, count)
            image = Image.new("RGB", (96, 64))
            image.putdata(
                [(hue, x * 255 // 96, y * 255 // 64) for y in range(64) for x in range(96)]
            )
            image.save(path)
        paths.append(path)
    return paths


async def seed(
    library: Path, count: int, *, seed_value: int, batch: int, thumbnails: list[Path] | None
) -> None:
    from media_tui.backends.local import LocalCatalog

    # The catalogue assigns its own row ids; ours only matter in memory.
    assets = [
        a.replace(row_id=None)
        for a in synthetic_assets(count, seed=seed_value, thumbnails=thumbnails)
    ]
    catalog = await LocalCatalog(library).open()
    started = time.perf_counter()
    try:
        for start in range(0, len(assets), batch):
            written = await catalog.upsert_many(assets[start : start + batch])
            done = start + written
            print(f"\r{done:,} / {count:,} assets", end="", file=sys.stderr, flush=True)
    finally:
        await catalog.aclose()
    elapsed = time.perf_counter() - started
    print(f"\rseeded {count:,} assets into {library} in {elapsed:.1f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("library", type=Path, help="the library folder (created if missing)")
    parser.add_argument("--count", type=int, default=100_000, help="how many assets")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same assets)")
    parser.add_argument("--batch", type=int, default=10_000, help="assets per transaction")
    parser.add_argument(
        "--thumbnails", type=int, default=0, help="draw N thumbnails and share them out"
    )
    args = parser.parse_args(argv)
    if args.count < 0 or args.batch < 1 or args.thumbnails < 0:
        parser.error("--count and --thumbnails must be ≥ 0 and --batch ≥ 1")
    # Absolute paths: the catalogue is read from wherever media-tui is started.
    thumbs = draw_thumbnails(args.library.resolve() / "seed-thumbs", args.thumbnails)
    asyncio.run(
        seed(
            args.library,
            args.count,
            seed_value=args.seed,
            batch=args.batch,
            thumbnails=thumbs or None,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
