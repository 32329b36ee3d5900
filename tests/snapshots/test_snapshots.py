"""Snapshot tests of the real app's key screens (sync functions: `snap_compare` runs the app itself).

Update after an intended change with `pytest tests/snapshots --snapshot-update`, look at the SVGs,
and regenerate `screenshots/` with `python -m screenshots.make`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.snapshots.scenes import SCENES, SIZE


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_scene(scene: str, snap_compare: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    # A fixed directory name keeps paths (which never show on screen) out of the picture anyway.
    workdir = Path(tmp_path_factory.mktemp(f"scene-{scene}"))
    build, keys, setup = SCENES[scene]

    async def run_before(pilot: Pilot[object]) -> None:
        await setup(pilot, workdir)

    assert snap_compare(build(workdir), press=keys, terminal_size=SIZE, run_before=run_before)
