"""The headless CLI end to end, as a user runs it: real processes on a real local library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from tests.emulators.cloudinary import CloudinaryEmulator
from tests.integration.media_factory import make_png, make_video


def run_cli(args: Sequence[str], library: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "media_tui", *args, "--library", str(library)],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
        **kw,  # type: ignore[call-overload]
    )


def cli_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDINARY_", "SUPABASE_", "MEDIA_TUI_"))
    }
    env["MEDIA_TUI_CONFIG"] = os.devnull  # an empty config: no developer settings leak in
    return env


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(50):
        make_png(folder / f"photo-{i:02d}.png", seed=i, size=(40 + i, 30 + i))
    make_video(folder / "clip.mp4", size=30 * 1024 * 1024)
    return folder


def test_upload_ls_and_rerun_is_all_duplicates(tmp_path: Path, photos: Path) -> None:
    library = tmp_path / "lib"
    first = run_cli(["upload", str(photos), "--json"], library)
    assert first.returncode == 0, first.stderr
    results = json_lines(first.stdout)
    assert len(results) == 51
    assert {r["status"] for r in results} == {"uploaded"}
    assert all(r["public_id"] and r["url"] and r["error"] is None for r in results)
    big = next(r for r in results if str(r["path"]).endswith("clip.mp4"))
    assert big["bytes"] == 30 * 1024 * 1024

    listing = run_cli(["ls", "--json"], library)
    assert listing.returncode == 0, listing.stderr
    assets = json_lines(listing.stdout)
    assert len(assets) == 51
    images = [a for a in assets if a["resource_type"] == "image"]
    assert len(images) == 50
    assert all(a["format"] == "png" and a["width"] and a["height"] for a in images)
    photo_7 = next(a for a in images if a["public_id"] == "photo-07")
    assert (photo_7["width"], photo_7["height"]) == (47, 37)
    for field in (
        "public_id",
        "resource_type",
        "format",
        "bytes",
        "width",
        "height",
        "url",
        "folder",
        "tags",
        "created_at",
        "updated_at",
    ):
        assert field in assets[0]

    again = run_cli(["upload", str(photos), "--json"], library)
    assert again.returncode == 0, again.stderr
    rerun = json_lines(again.stdout)
    assert len(rerun) == 51 and {r["status"] for r in rerun} == {"duplicate"}
    assert len(json_lines(run_cli(["ls", "--json"], library).stdout)) == 51


def test_sigkill_mid_batch_then_rerun_gives_exactly_200(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(200):
        make_png(folder / f"img-{i:03d}.png", seed=1000 + i, padding=256 * 1024)
    library = tmp_path / "lib"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "media_tui",
            "upload",
            str(folder),
            "--json",
            "--library",
            str(library),
            "--concurrency",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert proc.stdout is not None
    for finished_before_kill, _line in enumerate(proc.stdout, start=1):
        if finished_before_kill == 25:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert list((library / "journal").glob("*.jsonl")), "the killed process left its journal"

    rerun = run_cli(["upload", str(folder), "--json"], library)
    assert rerun.returncode == 0, rerun.stderr
    statuses = [r["status"] for r in json_lines(rerun.stdout)]
    assert len(statuses) == 200 and set(statuses) <= {"uploaded", "duplicate"}
    # Killed mid-batch: the re-run had work left. (A job whose "finished" record the kill beat
    # is resumed and reported as uploaded: it is the same asset, not a second one.)
    assert statuses.count("uploaded") >= 1 and statuses.count("duplicate") >= 1

    assets = json_lines(run_cli(["ls", "--json"], library).stdout)
    assert len(assets) == 200
    assert len({a["public_id"] for a in assets}) == 200
    assert len({a["checksum"] for a in assets}) == 200
    objects = [p for p in (library / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 200, "no orphaned or half-written objects"
    assert not list((library / "journal").glob("*.jsonl")), "nothing left to resume"


def test_bad_inputs_each_get_a_reason_and_valid_ones_upload(tmp_path: Path) -> None:
    src = tmp_path / "mixed"
    src.mkdir()
    good_names = ["ok.png", "[/].jpg", "a[/b.png", "esc\x1b[31m.png", "new\nline.png"]
    for i, name in enumerate(good_names):
        # "/" cannot be in a file name: `[/].jpg` is the file `].jpg` in a folder named `[`.
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        make_png(src / name, seed=i, fmt="JPEG" if name.endswith(".jpg") else "PNG")
    (src / "empty.png").write_bytes(b"")
    (src / "notes.txt").write_text("not media")
    unreadable = src / "locked.png"
    make_png(unreadable, seed=99)
    unreadable.chmod(0)
    empty_dir = tmp_path / "nothing-here"
    empty_dir.mkdir()
    (empty_dir / "readme.md").write_text("hi")
    inputs = [str(src / n) for n in good_names] + [
        str(tmp_path / "missing.png"),
        str(src / "empty.png"),
        str(src / "notes.txt"),
        str(unreadable),
        str(empty_dir),
    ]
    result = run_cli(["upload", *inputs, "--json"], tmp_path / "lib")
    assert result.returncode == 1
    assert_no_traceback(result)
    rows = json_lines(result.stdout)
    by_path = {r["path"]: r for r in rows}
    for name in good_names:
        assert by_path[str(src / name)]["status"] == "uploaded"
    bad = [
        str(tmp_path / "missing.png"),
        str(src / "empty.png"),
        str(src / "notes.txt"),
        str(empty_dir),
    ]
    if os.geteuid() != 0:  # root reads a chmod-000 file anyway
        bad.append(str(unreadable))
    for path in bad:
        row = by_path[path]
        assert row["status"] == "failed" and isinstance(row["error"], str) and row["error"]
        assert "\n" not in str(row["error"])
    # Control characters never reach the terminal raw, even inside JSON strings.
    assert "\x1b" not in result.stdout
    assert len(json_lines(run_cli(["ls", "--json"], tmp_path / "lib").stdout)) >= len(good_names)


def test_plain_output_is_one_safe_line_per_file(tmp_path: Path) -> None:
    src = tmp_path / "s"
    src.mkdir()
    make_png(src / "esc\x1b]52;c;aGk=\x07.png", seed=1)
    result = run_cli(["upload", str(src)], tmp_path / "lib")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("uploaded")
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "1 uploaded" in result.stderr


def test_rm_deletes_from_storage_and_catalogue(tmp_path: Path) -> None:
    src = tmp_path / "s"
    src.mkdir()
    make_png(src / "a.png", seed=1)
    make_png(src / "b.png", seed=2)
    library = tmp_path / "lib"
    assert run_cli(["upload", str(src)], library).returncode == 0
    removed = run_cli(["rm", "a", "nope", "--json"], library)
    assert removed.returncode == 1
    rows = {r["public_id"]: r for r in json_lines(removed.stdout)}
    assert rows["a"]["status"] == "deleted" and rows["nope"]["status"] == "failed"
    assets = json_lines(run_cli(["ls", "--json"], library).stdout)
    assert [a["public_id"] for a in assets] == ["b"]
    assert len([p for p in (library / "objects").rglob("*") if p.is_file()]) == 1


def test_config_errors_exit_2_with_one_sentence(tmp_path: Path) -> None:
    env = cli_env() | {"CLOUDINARY_URL": "cloudinary://only-a-key@demo"}
    result = subprocess.run(
        [sys.executable, "-m", "media_tui", "ls", "--library", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "CLOUDINARY_URL is malformed" in result.stderr
    assert_no_traceback(result)


def test_doctor_lists_checks_and_masks_secrets(tmp_path: Path) -> None:
    secret = "very-secret-api-secret-123"
    # Port 9 on loopback refuses connections: the API check must fail fast and say so.
    env = cli_env() | {
        "CLOUDINARY_URL": f"cloudinary://12345:{secret}@demo?upload_prefix=http://127.0.0.1:9"
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "media_tui",
            "doctor",
            "--json",
            "--storage",
            "local",
            "--library",
            str(tmp_path / "lib"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    checks = {c["check"]: c for c in json_lines(result.stdout)}
    assert {
        "config",
        "cloudinary",
        "cloudinary-api",
        "supabase",
        "library",
        "catalog",
        "storage",
        "journal",
    } <= set(checks)
    assert checks["cloudinary-api"]["status"] == "fail" and "127.0.0.1:9" in str(
        checks["cloudinary-api"]["detail"]
    )
    assert checks["catalog"]["status"] == "ok"
    assert secret not in result.stdout + result.stderr
    assert "12345" in str(checks["cloudinary"]["detail"])


def test_image_factory_makes_decodable_files(tmp_path: Path) -> None:
    make_png(tmp_path / "x.png", seed=3, size=(12, 7), padding=1000)
    with Image.open(tmp_path / "x.png") as image:
        assert image.size == (12, 7)


async def test_a_feed_watcher_sees_another_process_upload(tmp_path: Path) -> None:
    import asyncio

    from media_tui.backends.local import LocalCatalog, LocalChangeFeed
    from media_tui.model import RemoteUpsert, Resync

    library = tmp_path / "lib"
    src = tmp_path / "s"
    src.mkdir()
    make_png(src / "from-elsewhere.png", seed=5)
    catalog = LocalCatalog(library)
    feed = LocalChangeFeed(catalog)
    events = feed.events()
    try:
        while not isinstance(await asyncio.wait_for(anext(events), 10), Resync):
            pass
        upload = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "media_tui",
            "upload",
            str(src),
            "--library",
            str(library),
            env=cli_env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        event = await asyncio.wait_for(anext(events), 60)
        while not isinstance(event, RemoteUpsert):
            event = await asyncio.wait_for(anext(events), 60)
        assert event.asset.public_id == "from-elsewhere" and event.asset.width == 16
        assert await asyncio.wait_for(upload.wait(), 60) == 0
    finally:
        await feed.aclose()
        await catalog.aclose()


@pytest.mark.parametrize("outcome", ["uploaded", "failed"])
def test_a_reader_that_goes_away_does_not_hang_the_upload(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator, outcome: str
) -> None:
    """`media-tui upload … --json | head -1`: the pipe closes after one line; the upload still
    ends (it used to hang when a later line hit the closed pipe inside a worker)."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        make_png(folder / f"p{i:02d}.png", seed=i)
    env = cli_env() | {"CLOUDINARY_URL": cloudinary_emulator.cloudinary_url}
    if outcome == "failed":
        cloudinary_emulator.faults.failure_rate = 1.0
        cloudinary_emulator.faults.failure_status = 400  # permanent: every file fails at once
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "media_tui", "upload", str(folder), "--json"),
            *("--library", str(tmp_path / "lib"), "--concurrency", "2"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())
    assert first["status"] == outcome
    proc.stdout.close()  # what `head -1` does
    proc.wait(timeout=120)
    assert proc.returncode == (0 if outcome == "uploaded" else 1)
    assert b"Traceback" not in proc.stderr.read()
    if outcome == "uploaded":
        assert len(cloudinary_emulator.assets) == 30


def test_a_failed_upload_is_recorded_in_the_log(
    tmp_path: Path, cloudinary_emulator: CloudinaryEmulator
) -> None:
    """The one-sentence error the operator saw is kept in <library>/media-tui.log too."""
    picture = make_png(tmp_path / "refused.png", seed=3)
    cloudinary_emulator.faults.failure_rate = 1.0
    cloudinary_emulator.faults.failure_status = 400
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "media_tui",
            "upload",
            str(picture),
            "--json",
            "--library",
            str(tmp_path / "lib"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env() | {"CLOUDINARY_URL": cloudinary_emulator.cloudinary_url},
    )
    assert result.returncode == 1
    error = json_lines(result.stdout)[0]["error"]
    log_text = (tmp_path / "lib" / "media-tui.log").read_text()
    assert f"upload of refused failed: {error}" in log_text
    assert cloudinary_emulator.api_secret not in log_text
