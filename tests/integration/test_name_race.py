"""Two operators upload different files under one name at the same moment: both files are kept.

Each round starts two real `media-tui upload` processes together, each with its own `shot.png`
(different bytes) into the same folder. Before name claims, both heard "name free", both wrote,
and one operator's photo was gone while both were told `uploaded`. Now exactly one keeps the
name and the other gets the content-hash variant, whichever is first — on one local library
shared by both processes, and on Cloudinary + Supabase (emulators, with the catalogue's
latency a hosted project has, which widens the race).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from media_tui.naming import disambiguated
from tests.emulators.cloudinary import CloudinaryEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.media_factory import make_png
from tests.integration.test_cli import cli_env

ROUNDS = 20


def start_upload(
    path: Path, folder: str, library: Path, env: Mapping[str, str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "media_tui", "upload", str(path)),
            *("--folder", folder, "--json", "--library", str(library)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
    )


def race(
    tmp_path: Path, round_: int, library: Path, env: Mapping[str, str]
) -> list[dict[str, str]]:
    """Two processes, two different `shot.png`, one folder; returns each one's result."""
    files = []
    for side in ("a", "b"):
        folder = tmp_path / f"round{round_}" / side
        folder.mkdir(parents=True)
        files.append(make_png(folder / "shot.png", seed=round_ * 2 + (side == "b")))
    processes = [start_upload(f, f"team{round_}", library, env) for f in files]
    results = []
    for process, file in zip(processes, files, strict=True):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "Traceback" not in err
        (result,) = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert result["status"] == "uploaded", result
        results.append({**result, "sha256": hashlib.sha256(file.read_bytes()).hexdigest()})
    assert results[0]["public_id"] != results[1]["public_id"], results
    # One keeps the name; the other gets the variant its own bytes pick, never a third.
    name = f"team{round_}/shot"
    assert {r["public_id"] for r in results} in (
        {name, disambiguated(name, results[1]["sha256"])},
        {name, disambiguated(name, results[0]["sha256"])},
    ), results
    return results


def catalogue_rows(library: Path, env: Mapping[str, str]) -> dict[str, dict[str, object]]:
    listing = subprocess.run(
        [sys.executable, "-m", "media_tui", "ls", "--json", "--library", str(library)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(env),
    )
    assert listing.returncode == 0, listing.stderr
    rows = [json.loads(line) for line in listing.stdout.splitlines() if line.strip()]
    return {str(row["public_id"]): row for row in rows}


@pytest.mark.slow
def test_two_processes_on_one_local_library_keep_both_files(tmp_path: Path) -> None:
    library = tmp_path / "library"
    env = cli_env()
    for round_ in range(ROUNDS):
        results = race(tmp_path, round_, library, env)
        rows = catalogue_rows(library, env)
        for result in results:
            row = rows[result["public_id"]]
            assert row["checksum"] == result["sha256"]
            stored = Path(str(row["url"]).removeprefix("file://"))
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == result["sha256"]
    assert len(catalogue_rows(library, env)) == 2 * ROUNDS


@pytest.mark.slow
def test_two_processes_on_cloudinary_and_supabase_keep_both_files(
    tmp_path: Path,
    cloudinary_emulator: CloudinaryEmulator,
    supabase_emulator: SupabaseEmulator,
) -> None:
    supabase_emulator.rest_latency = 0.03  # what PostgREST takes from a desk
    env = cli_env() | {
        "CLOUDINARY_URL": cloudinary_emulator.cloudinary_url,
        "SUPABASE_URL": supabase_emulator.url,
        "SUPABASE_SERVICE_ROLE_KEY": supabase_emulator.service_key,
    }
    library = tmp_path / "library"
    for round_ in range(ROUNDS):
        results = race(tmp_path, round_, library, env)
        rows = {row["public_id"]: row for row in supabase_emulator.rows}
        for result in results:
            public_id = result["public_id"]
            assert rows[public_id]["checksum"] == result["sha256"]
            stored = cloudinary_emulator.assets[("image", "upload", public_id)].data
            assert hashlib.sha256(stored).hexdigest() == result["sha256"]
    assert len(supabase_emulator.rows) == 2 * ROUNDS
    assert supabase_emulator.claims.rows == {}  # every claim released once its row was written
