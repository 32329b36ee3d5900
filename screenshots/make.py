"""Regenerate the SVG screenshots in this folder from the real app: `python -m screenshots.make`.

They are the same deterministic scenes the snapshot tests check (tests/snapshots/scenes.py).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tests.snapshots.scenes import SCENES, SIZE

HERE = Path(__file__).parent


async def shoot(name: str, workdir: Path) -> Path:
    build, keys, setup = SCENES[name]
    app = build(workdir)
    async with app.run_test(size=SIZE) as pilot:
        await setup(pilot, workdir)
        await pilot.press(*keys)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        return Path(app.save_screenshot(f"{name}.svg", path=str(HERE)))


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(SCENES):
            workdir = Path(tmp) / name
            workdir.mkdir()
            print(await shoot(name, workdir))


if __name__ == "__main__":
    asyncio.run(main())
