"""SIGKILL of a 200-file `media-tui upload` at chosen points, then the same command again.

Each test kills a real CLI process at one kind of moment, proves afterwards that it really hit
that moment (emulator or library state that only exists there), re-runs the same command on the
same library — unfinished jobs resume from the journal — and checks the outcome: exactly 200
assets, none twice, no stored object without a catalogue row, no temp file, an empty journal.

The kill points:
- mid-chunk: Cloudinary (emulator) holds the first 20 MB part of a chunked upload, the second
  never completes;
- between upload and catalogue write: Cloudinary has assets that the Supabase (emulator)
  catalogue lacks, because the upserts were in flight;
- random moments of a local-library run (seeded), journal writes included, with a torn last
  journal line on top, checking the crash invariants after every kill.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.emulators.cloudinary import CloudinaryEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.media_factory import make_png, make_video
from tests.integration.test_cli import cli_env, json_lines

MiB = 1024 * 1024
FILES = 200
ROUNDS = 16  # killed runs in the random-moment test


# ------------------------------------------------------------------------------- helpers


def upload_command(folder: Path, library: Path) -> list[str]:
    command = [sys.executable, "-m", "media_tui", "upload", str(folder), "--json"]
    return [*command, "--library", str(library)]


def spawn_upload(folder: Path, library: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        upload_command(folder, library),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # tracebacks, if any, are in <library>/media-tui.log
        text=True,
        env=dict(env),
    )


def run_upload(folder: Path, library: Path, env: Mapping[str, str]) -> list[dict[str, object]]:
    """The same command again, to the end; returns its one JSON line per file."""
    result = subprocess.run(
        upload_command(folder, library),
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(env),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json_lines(result.stdout)


def wait_until(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[str], limit: float = 60.0
) -> None:
    """Poll state shared with another process or thread; fail if the upload ended first."""
    deadline = time.monotonic() + limit
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the upload ended (rc {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit} s: {what}")
        time.sleep(0.01)


def sigkill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_files(library: Path) -> list[Path]:
    return sorted((library / "journal").glob("*.jsonl"))


def temp_files(library: Path) -> list[Path]:
    return [p for p in library.rglob("*.tmp")]


def catalogue_rows(library: Path) -> list[tuple[str, str]]:
    """(public_id, checksum) of every row of the local catalogue (its writer is dead or done)."""
    db = library / "catalog.sqlite3"
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return [(str(p), str(c)) for p, c in conn.execute("SELECT public_id, checksum FROM assets")]
    finally:
        conn.close()


def assert_exactly_once(rows: list[tuple[str, str]], sha_by_name: Mapping[str, str]) -> None:
    """One row per file, under the file's own name, with the file's bytes: no duplicates."""
    assert len(rows) == FILES
    assert {public_id for public_id, _ in rows} == set(sha_by_name)
    assert {public_id: checksum for public_id, checksum in rows} == dict(sha_by_name)


def assert_statuses(results: list[dict[str, object]]) -> None:
    statuses = [str(r["status"]) for r in results]
    assert len(statuses) == FILES and set(statuses) <= {"uploaded", "duplicate"}
    assert "uploaded" in statuses, "the kill left work for the re-run"


def cloud_env(cloudinary: CloudinaryEmulator, **extra: str) -> dict[str, str]:
    return cli_env() | {"CLOUDINARY_URL": cloudinary.cloudinary_url, **extra}


def make_images(folder: Path, count: int, *, padding: int, seed: int) -> None:
    for i in range(count):
        make_png(folder / f"img-{i:03d}.png", seed=seed + i, padding=padding)


def sha_by_public_id(folder: Path) -> dict[str, str]:
    # The public id of a top-level file is its name without the extension.
    return {path.stem: sha256(path) for path in sorted(folder.iterdir())}


# ------------------------------------------------------------------- kill mid-chunk


def partial_chunk_session(emulator: CloudinaryEmulator, public_id: str) -> dict[int, int] | None:
    """{offset: length} of the parts the emulator holds for an unfinished chunked upload."""
    # The emulator has no public view of its chunk sessions; read them under its own lock.
    with emulator._lock:
        for session in emulator._sessions.values():
            if session.public_id == public_id and session.result is None and session.parts:
                return {start: len(data) for start, data in session.parts.items()}
    return None


def test_sigkill_mid_chunk_then_rerun_gives_exactly_200(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    """200 files to Cloudinary (197 images, two 11 MiB videos sent as one-part chunked uploads
    above a 6 MiB threshold, one 28 MB video in a 20 MB and an 8 MB chunk), killed mid-upload of
    the big video: the emulator holds its first part, the second never completes. The re-run
    resumes it (a new upload id) and ends with exactly 200 assets, the video byte-identical,
    200 rows, no journal and no temp file."""
    folder = tmp_path / "batch"
    folder.mkdir()
    make_video(folder / "clip-a.mp4", size=11 * MiB, seed=1)
    make_video(folder / "clip-b.mp4", size=11 * MiB, seed=2)
    big = make_video(folder / "clip-big.mp4", size=28_000_000, seed=3)
    make_images(folder, FILES - 3, padding=128 * 1024, seed=2000)
    expected = sha_by_public_id(folder)
    library = tmp_path / "lib"
    env = cloud_env(cloudinary_emulator, MEDIA_TUI_CHUNK_THRESHOLD=str(6 * MiB))
    faults = cloudinary_emulator.faults
    faults.match = r"^POST /v1_1/[^/]+/(image|video)/upload$"
    faults.bandwidth = 10_000_000  # bytes/s per request: the 20 MB first chunk takes 2 s
    faults.latency = 0.05  # and each image at least 50 ms, so the kill finds images left too

    proc = spawn_upload(folder, library, env)
    try:
        wait_until(
            lambda: partial_chunk_session(cloudinary_emulator, "clip-big") is not None,
            "the emulator held the first part of clip-big",
            proc,
        )
        faults.bandwidth = 64 * 1024  # the second chunk now crawls: the kill lands inside it
        sigkill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # The kill point: part one stored, part two never completed, no asset yet.
    assert partial_chunk_session(cloudinary_emulator, "clip-big") == {0: 20_000_000}
    assert ("video", "upload", "clip-big") not in cloudinary_emulator.assets
    assert journal_files(library), "the killed process left its journal"
    stored_before = len(cloudinary_emulator.assets)

    faults.reset()
    results = run_upload(folder, library, env)
    assert_statuses(results)
    by_name = {Path(str(r["path"])).name: r["status"] for r in results}
    assert by_name["clip-big.mp4"] == "uploaded"

    assets = cloudinary_emulator.assets
    assert len(assets) == FILES, "one asset per file, none twice"
    assert {key[2] for key in assets} == set(expected)
    assert cloudinary_emulator.asset("clip-big", "video").data == big.read_bytes()
    assert_exactly_once(catalogue_rows(library), expected)
    assert not journal_files(library) and not temp_files(library)
    print(
        f"\nmid-chunk: {stored_before} of {FILES} assets stored before the kill; "
        f"re-run uploaded {list(by_name.values()).count('uploaded')}"
    )


# ------------------------------------------------- kill between upload and catalogue write


def test_sigkill_between_upload_and_catalogue_write_then_rerun_gives_exactly_200(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator, supabase_emulator: SupabaseEmulator
) -> None:
    """200 images to Cloudinary with a Supabase catalogue whose upserts are held 0.2 s each;
    killed while Cloudinary has assets the catalogue lacks (the held upserts die with the
    client): the re-run uploads those again over themselves and ends with 200 assets in
    Cloudinary, 200 rows in Supabase, the same 200 ids, none twice."""
    folder = tmp_path / "batch"
    folder.mkdir()
    make_images(folder, FILES, padding=0, seed=3000)
    expected = sha_by_public_id(folder)
    library = tmp_path / "lib"
    env = cloud_env(
        cloudinary_emulator,
        SUPABASE_URL=supabase_emulator.url,
        SUPABASE_SERVICE_ROLE_KEY=supabase_emulator.service_key,
    )
    supabase_emulator.rest_match = r"^POST "  # the upserts; lookups answer at once
    supabase_emulator.rest_latency = 0.2

    def catalogued() -> set[str]:
        return {str(row["public_id"]) for row in supabase_emulator.rows}

    def stored() -> set[str]:
        return {key[2] for key in set(cloudinary_emulator.assets)}

    proc = spawn_upload(folder, library, env)
    try:
        wait_until(
            lambda: (
                len(catalogued()) >= 24
                and supabase_emulator.rest_held > 0
                and bool(stored() - catalogued())
            ),
            "24 rows written, upserts held, and assets stored that the catalogue lacks",
            proc,
        )
        sigkill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Upserts held when the client died are dropped, never executed: wait until none is held.
    deadline = time.monotonic() + 10
    while supabase_emulator.rest_held and time.monotonic() < deadline:
        time.sleep(0.01)
    assert supabase_emulator.rest_held == 0

    # The kill point: assets in storage without a catalogue row (their upserts were held and
    # abandoned with the dead client, or not sent yet).
    orphans = stored() - catalogued()
    assert orphans, "Cloudinary had assets the catalogue lacked when the process died"
    assert journal_files(library)
    uploads_before = cloudinary_emulator.upload_count

    supabase_emulator.rest_latency = 0.0
    results = run_upload(folder, library, env)
    assert_statuses(results)
    by_public_id = {str(r["public_id"]): str(r["status"]) for r in results}
    assert all(by_public_id[public_id] == "uploaded" for public_id in orphans)

    assert stored() == catalogued() == set(expected)
    assert len(cloudinary_emulator.assets) == FILES
    rows = supabase_emulator.rows
    assert len(rows) == FILES, "one row per file, none twice"
    assert {str(r["public_id"]): r["checksum"] for r in rows} == expected
    assert not journal_files(library) and not temp_files(library)
    print(
        f"\nbetween upload and row: killed with {len(orphans)} stored-but-uncatalogued assets, "
        f"{supabase_emulator.rest_abandoned} upserts abandoned; uploads {uploads_before} "
        f"before, {cloudinary_emulator.upload_count} after"
    )


# ------------------------------------------------------ kill at random moments, local library


class JournalState:
    """What the journal files on disk say, read independently of media_tui.journal."""

    def __init__(self, library: Path) -> None:
        self.pending: set[str] = set()  # paths of jobs queued and not finished
        self.queued: set[str] = set()  # paths with a complete `queued` record
        self.torn = 0  # files whose last line is incomplete
        for path in journal_files(library):
            data = path.read_text(encoding="utf-8", errors="replace")
            lines = data.split("\n")
            tail = lines.pop()  # "" when the file ends with a newline
            if tail:
                self.torn += 1
            jobs: dict[str, str] = {}
            for line in lines:
                entry = json.loads(line)  # only the last line may be torn
                if entry["op"] == "queued":
                    jobs[entry["job"]["job_id"]] = entry["job"]["path"]
                    self.queued.add(entry["job"]["path"])
                elif entry["op"] == "finished":
                    jobs.pop(entry["job_id"], None)
            self.pending |= set(jobs.values())


def tear_last_line(path: Path, rng: random.Random) -> dict[str, object] | None:
    """Cut a journal's last line short, as a kill inside write() would; returns the lost record."""
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        return None
    start = data.rfind(b"\n", 0, len(data) - 1) + 1
    last = data[start:]
    cut = start + rng.randrange(1, len(last) - 1)  # keep 1.. len-2 bytes: never a whole record
    path.write_bytes(data[:cut])
    entry: dict[str, object] = json.loads(last)
    return entry


def check_crash_invariants(
    library: Path, sha_by_path: Mapping[str, str], accepted: set[str]
) -> JournalState:
    """What must hold the moment after any kill: nothing accepted is lost, nothing is twice,
    the catalogue names only stored objects, and stored objects without a row are in flight."""
    journal = JournalState(library)
    rows = catalogue_rows(library)
    checksums = [checksum for _, checksum in rows]
    assert len(set(checksums)) == len(checksums), "the same bytes catalogued twice"
    assert set(checksums) <= set(sha_by_path.values())
    objects = {
        p.name.partition(".")[0]
        for p in (library / "objects").glob("??/*")
        if p.is_file() and not p.name.startswith(".")
    }
    assert set(checksums) <= objects, "a row names an object that is not stored"
    in_flight = {sha_by_path[path] for path in journal.pending}
    assert objects - set(checksums) <= in_flight, "a stored object nobody will catalogue"
    accepted |= journal.queued
    lost = [p for p in accepted if sha_by_path[p] not in checksums and p not in journal.pending]
    assert not lost, f"accepted files neither catalogued nor pending: {lost[:3]}"
    return journal


def test_sigkill_at_random_moments_keeps_the_invariants_then_gives_exactly_200(
    tmp_path: Path,
) -> None:
    """200 images to the local library; 16 runs of the same command, each SIGKILLed at a random
    moment (seeded: startup, journal writes and adoption, copies, catalogue writes, shutdown),
    half of the leftover journals then given a torn last line; after every kill nothing accepted
    is lost or doubled, and a last run ends with exactly 200 rows, 200 objects, no temp file
    and no journal."""
    folder = tmp_path / "batch"
    folder.mkdir()
    make_images(folder, FILES, padding=64 * 1024, seed=4000)
    sha_by_path = {os.fsdecode(p): sha256(p) for p in sorted(folder.iterdir())}
    library = tmp_path / "lib"
    env = cli_env()
    rng = random.Random(7_2026)
    accepted: set[str] = set()
    mid_run = resumed = torn = natural_tears = 0

    for _ in range(ROUNDS):
        journals_before = len(journal_files(library))
        resumed += journals_before > 0
        proc = spawn_upload(folder, library, env)
        try:
            # The kill instant itself is what is random here: this wait is the point.
            proc.wait(timeout=rng.uniform(0.1, 0.5))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # the run may still end on its own just before
            proc.wait(timeout=30)
            mid_run += proc.returncode == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL), (library / "media-tui.log").read_text()
        journal = check_crash_invariants(library, sha_by_path, accepted)
        natural_tears += journal.torn
        leftovers = journal_files(library)
        if leftovers and journal.torn == 0 and rng.random() < 0.5:
            lost = tear_last_line(rng.choice(leftovers), rng)
            if lost is not None:
                torn += 1
                if lost["op"] == "queued":
                    # A torn `queued` record was never fsynced: that job was not accepted yet.
                    job = lost["job"]
                    assert isinstance(job, dict)
                    accepted.discard(str(job["path"]))

    results = run_upload(folder, library, env)
    assert len(results) == FILES and {r["status"] for r in results} <= {"uploaded", "duplicate"}
    expected = {Path(path).stem: sha for path, sha in sha_by_path.items()}
    assert_exactly_once(catalogue_rows(library), expected)
    objects = [p for p in (library / "objects").rglob("*") if p.is_file()]
    assert sorted(p.name.partition(".")[0] for p in objects) == sorted(expected.values())
    thumbs = {p.stem for p in (library / "thumbs").glob("*.png")}
    assert thumbs <= set(expected.values())
    assert not temp_files(library), f"temp files survive the last run: {temp_files(library)}"
    assert not journal_files(library), "nothing left to resume"
    assert mid_run >= ROUNDS // 2, f"only {mid_run} of {ROUNDS} kills landed inside a run"
    assert torn + natural_tears >= 2, "the reader met torn last lines"
    print(
        f"\nrandom kills: {mid_run} of {ROUNDS} mid-run, {resumed} runs adopted a journal, "
        f"{torn} journals torn by the test, {natural_tears} seen torn by a kill"
    )
