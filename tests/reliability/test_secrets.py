"""No secret in any output: stdout, stderr, the log file, an error, a doctor line, a screenshot.

Distinctive values stand in for the Cloudinary API secret and the Supabase service key (and
wrong ones for the wrong-key runs). Every run below fails somewhere on purpose — transient
and permanent upload failures, a wrong secret, a wrong key, a listing that fails during sync,
a forged webhook, a TUI whose backends refuse it — and then every byte it wrote is searched
for each secret in the forms it could leak in: verbatim, any 8-character piece of it,
URL-encoded, base64 (as in a Basic auth header, with the API key), and as the notification
signature the webhook would have expected.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from media_tui.model import ConnectionState, JobState
from media_tui.paths import expand
from media_tui.ui.app import MediaApp
from media_tui.ui.tasks import TasksScreen
from tests.emulators.cloudinary import CloudinaryEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.integration.media_factory import make_png
from tests.reliability.test_hostile_names import screen_check, wait_for

pytestmark = pytest.mark.timeout(180)

API_KEY = "614237809912345"
CLOUD_SECRET = "Cld!S3cret*Hq9-Zx"
WRONG_CLOUD_SECRET = "Wr0ng!Cld*S3cret-3"
SERVICE_KEY = "Sb!Svc*Key-7Qw9Rt"
WRONG_SERVICE_KEY = "Wr0ng!Sb*Key-5Pm"
SECRETS = (CLOUD_SECRET, WRONG_CLOUD_SECRET, SERVICE_KEY, WRONG_SERVICE_KEY)


def leak_forms(secret: str) -> set[str]:
    """Every form a secret could leak in."""
    raw = secret.encode()
    forms = {
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(f"{API_KEY}:{secret}".encode()).decode(),  # a Basic auth header
        raw.hex(),
    }
    forms |= {secret[i : i + 8] for i in range(len(secret) - 7)}  # any 8-character piece
    return forms


FORBIDDEN = {form: secret for secret in SECRETS for form in leak_forms(secret)}


def assert_no_secret(text: str, where: str, extra: Iterator[str] | tuple[str, ...] = ()) -> None:
    assert text is not None
    for form, secret in FORBIDDEN.items():
        assert form not in text, f"{where}: a form of {secret[:3]}… leaked: {form!r}"
    for form in extra:
        assert form not in text, f"{where}: {form!r} leaked"


def assert_run_clean(result: subprocess.CompletedProcess[bytes], library: Path, where: str) -> str:
    """stdout + stderr + the library's log, proven free of secrets and tracebacks."""
    out = result.stdout.decode("utf-8") + result.stderr.decode("utf-8")
    assert "Traceback" not in out, out
    assert_no_secret(out, where)
    assert_no_secret(read_logs(library), f"{where} (log)")
    return out


def read_logs(library: Path) -> str:
    logs = sorted(library.glob("media-tui.log*"))
    return "".join(path.read_text("utf-8", "replace") for path in logs)


@pytest.fixture
def clouds() -> Iterator[tuple[CloudinaryEmulator, SupabaseEmulator]]:
    cloudinary = CloudinaryEmulator(api_key=API_KEY, api_secret=CLOUD_SECRET)
    supabase = SupabaseEmulator(service_key=SERVICE_KEY)
    with cloudinary, supabase:
        yield cloudinary, supabase
    assert not cloudinary.internal_errors and not supabase.internal_errors
    supabase.protocol_violations.clear()


def env_for(
    cloudinary: CloudinaryEmulator,
    supabase: SupabaseEmulator,
    *,
    cloud_secret: str = CLOUD_SECRET,
    service_key: str = SERVICE_KEY,
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDINARY_", "SUPABASE_", "MEDIA_TUI_", "NEXT_PUBLIC_SUPABASE"))
    }
    env["MEDIA_TUI_CONFIG"] = os.devnull
    env["CLOUDINARY_URL"] = (
        f"cloudinary://{API_KEY}:{cloud_secret}@{cloudinary.cloud_name}"
        f"?upload_prefix={cloudinary.url}"
    )
    env["SUPABASE_URL"] = supabase.url
    env["SUPABASE_SERVICE_ROLE_KEY"] = service_key
    return env


def run(args: list[str], library: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "media_tui", *args, "--library", str(library)],
        capture_output=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def test_uploads_that_fail_and_wrong_keys_never_show_a_secret(
    tmp_path: Path, clouds: tuple[CloudinaryEmulator, SupabaseEmulator]
) -> None:
    """`upload` (plain and --json) through failures: 5xx answers that are retried, a 400 that
    is not, a wrong Cloudinary secret (401, whose message quotes the string to sign) and a
    wrong Supabase key (the catalogue write refused): each file ends with a reason, and no
    output or log line holds a secret in any form."""
    cloudinary, supabase = clouds
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        make_png(photos / f"p{i}.png", seed=300 + i)
    library = tmp_path / "lib"

    cloudinary.faults.fail_next(3, 500)  # retried, then they go through
    result = run(["upload", str(photos), "--json"], library, env_for(cloudinary, supabase))
    assert_run_clean(result, library, "upload with retried 500s")
    assert result.returncode == 0
    assert len(supabase.rows) == 4

    cloudinary.faults.fail_next(1, 400)
    make_png(photos / "p4.png", seed=304)
    result = run(["upload", str(photos)], library, env_for(cloudinary, supabase))
    out = assert_run_clean(result, library, "upload with a 400")
    assert result.returncode == 1 and "failed" in out

    make_png(photos / "p5.png", seed=305)
    env = env_for(cloudinary, supabase, cloud_secret=WRONG_CLOUD_SECRET)
    result = run(["upload", str(photos / "p5.png"), "--json"], library, env)
    out = assert_run_clean(result, library, "upload with a wrong Cloudinary secret")
    (row,) = (json.loads(line) for line in result.stdout.decode().splitlines())
    assert result.returncode == 1 and row["status"] == "failed"
    assert "credentials" in row["error"] and "String to sign" in row["error"]

    env = env_for(cloudinary, supabase, service_key=WRONG_SERVICE_KEY)
    for args in (["upload", str(photos / "p5.png")], ["upload", str(photos), "--json"]):
        result = run(args, tmp_path / "lib-wrong-key", env)
        out = assert_run_clean(result, tmp_path / "lib-wrong-key", "upload with a wrong key")
        assert result.returncode == 1 and "key" in out

    # Settings that are wrong in ways that mention where the secret is, never the secret.
    for bad in (
        {"CLOUDINARY_URL": f"cloudinary://{API_KEY}:{CLOUD_SECRET}@"},
        {"CLOUDINARY_URL": f"cloudinary://{API_KEY}:{CLOUD_SECRET}@demo?upload_prefix=ftp:x"},
        {"CLOUDINARY_URL": f"cloudinary://{API_KEY}:{CLOUD_SECRET}@demo?signature_algorithm=md5"},
        {"SUPABASE_URL": f"postgres://user:{SERVICE_KEY}@db"},
    ):
        env = env_for(cloudinary, supabase) | bad
        result = run(["ls"], tmp_path / "lib-config", env)
        assert_run_clean(result, tmp_path / "lib-config", f"config error {list(bad)}")
        assert result.returncode == 2


def test_doctor_and_sync_never_show_a_secret(
    tmp_path: Path, clouds: tuple[CloudinaryEmulator, SupabaseEmulator]
) -> None:
    """`doctor` plain and --json, with the right keys (every check passes, the secret masked)
    and with wrong ones (checks fail with Cloudinary's and Supabase's refusals); `sync` when
    the Admin API listing fails and when it works: no line holds a secret in any form."""
    cloudinary, supabase = clouds
    library = tmp_path / "lib"
    for args in (["doctor"], ["doctor", "--json"]):
        result = run(args, library, env_for(cloudinary, supabase))
        out = assert_run_clean(result, library, " ".join(args))
        assert result.returncode == 0, out
        assert "***Zx (17 chars)" in out and "***Rt (17 chars)" in out  # masked, not shown
        wrong = env_for(
            cloudinary, supabase, cloud_secret=WRONG_CLOUD_SECRET, service_key=WRONG_SERVICE_KEY
        )
        result = run(args, library, wrong)
        out = assert_run_clean(result, library, " ".join(args) + " with wrong keys")
        assert result.returncode == 1 and "fail" in out

    photo = make_png(tmp_path / "s.png", seed=310)
    assert run(["upload", str(photo)], library, env_for(cloudinary, supabase)).returncode == 0
    cloudinary.faults.match = r"GET .*/resources/"
    cloudinary.faults.fail_next(20, 502)
    result = run(["sync"], library, env_for(cloudinary, supabase))
    assert_run_clean(result, library, "sync with a failing listing")
    assert result.returncode != 0
    cloudinary.faults.reset()
    for args in (["sync"], ["sync", "--json", "--prune"]):
        result = run(args, library, env_for(cloudinary, supabase))
        assert_run_clean(result, library, " ".join(args))
        assert result.returncode == 0


WEBHOOK = [sys.executable, "-m", "media_tui", "webhook", "--port", "0", "--json"]


def test_the_webhook_refusing_a_forged_notification_shows_no_secret_or_signature(
    tmp_path: Path, clouds: tuple[CloudinaryEmulator, SupabaseEmulator]
) -> None:
    """`media-tui webhook` gets a notification signed with another secret, one with no
    signature and one with a stale timestamp: each is refused (401) with a reason, and neither
    its answers, its output nor its log holds the API secret or the signature it expected (which
    would let anyone forge that exact body)."""
    cloudinary, supabase = clouds
    library = tmp_path / "lib"
    process = subprocess.Popen(
        [*WEBHOOK, "--library", str(library)],
        env=env_for(cloudinary, supabase),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    expected: list[str] = []
    answers: list[str] = []
    try:
        assert process.stderr is not None and process.stdout is not None
        banner = process.stderr.readline().decode()
        assert "receiving Cloudinary notifications on http://" in banner, banner
        url = banner.split(" on ", 1)[1].split()[0]
        body = json.dumps({"notification_type": "upload", "public_id": "forged"})
        now = str(int(time.time()))
        for algorithm in ("sha1", "sha256"):
            expected.append(
                hashlib.new(algorithm, (body + now + CLOUD_SECRET).encode()).hexdigest()
            )
        forged = hashlib.sha1((body + now + WRONG_CLOUD_SECRET).encode()).hexdigest()
        for headers in (
            {"X-Cld-Timestamp": now, "X-Cld-Signature": forged},
            {"X-Cld-Timestamp": now},
            {"X-Cld-Timestamp": str(int(time.time()) - 86_400), "X-Cld-Signature": expected[0]},
        ):
            request = urllib.request.Request(
                url, data=body.encode(), headers=headers | {"Content-Type": "application/json"}
            )
            try:
                urllib.request.urlopen(request, timeout=30)
                raise AssertionError("a forged notification was accepted")
            except urllib.error.HTTPError as refused:
                assert refused.code == 401
                answers.append(refused.read().decode())
        lines = [process.stdout.readline().decode() for _ in range(3)]
        assert [json.loads(line)["status"] for line in lines] == [401, 401, 401]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    text = "".join(answers) + "".join(lines) + out.decode() + banner + err.decode()
    assert "Traceback" not in text
    assert_no_secret(text, "webhook", extra=tuple(expected))
    assert_no_secret(read_logs(library), "webhook log", extra=tuple(expected))
    assert supabase.rows == []


async def test_the_tui_with_refusing_backends_shows_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clouds: tuple[CloudinaryEmulator, SupabaseEmulator],
) -> None:
    """The TUI with a wrong Cloudinary secret and a wrong Supabase key: the header reports the
    refused feed, an upload fails on its card and in the tasks screen, "Sync now" fails with a
    notification — and no screenshot of any of it, nor the log file, holds a secret in any
    form."""
    from media_tui import cli

    cloudinary, supabase = clouds
    env = env_for(
        cloudinary, supabase, cloud_secret=WRONG_CLOUD_SECRET, service_key=WRONG_SERVICE_KEY
    )
    for name in list(os.environ):
        if name.startswith(("CLOUDINARY_", "SUPABASE_", "NEXT_PUBLIC_SUPABASE", "MEDIA_TUI_")):
            monkeypatch.delenv(name)
    for name in ("CLOUDINARY_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "MEDIA_TUI_CONFIG"):
        monkeypatch.setenv(name, env[name])
    library = tmp_path / "library"
    monkeypatch.setenv("MEDIA_TUI_LIBRARY", str(library))
    photo = make_png(tmp_path / "refused.png", seed=320)

    app = MediaApp(thumbnails=False)
    logger = logging.getLogger("media_tui")
    handlers_before = list(logger.handlers)
    logger.handlers.clear()
    cli._setup_logging(app.settings)  # as `media-tui` does before it starts the TUI
    try:
        screens: list[str] = []
        async with app.run_test(size=(140, 45), notifications=True) as pilot:
            await wait_for(pilot, app.ready.is_set)
            await wait_for(pilot, lambda: app.store.connection is ConnectionState.RECONNECTING)
            app.enqueue(expand([str(photo)]).files)
            await wait_for(
                pilot, lambda: any(j.state is JobState.FAILED for j in app.store.jobs.values())
            )
            await pilot.pause(0.1)
            screens.append(screen_check(app, "failed upload"))
            assert "failed" in screens[-1].lower()
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, TasksScreen))
            await pilot.pause(0.1)
            screens.append(screen_check(app, "tasks"))
            assert "refused" in screens[-1]
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, TasksScreen))
            app.action_sync()
            await wait_for(pilot, lambda: "Sync failed" in screen_check(app, "sync"))
            screens.append(app.export_screenshot())
            screens.append(screen_check(app, "header"))
            detail = app.store.connection_detail or ""
        for index, screen in enumerate(screens):
            assert_no_secret(screen, f"screen {index}")
        assert_no_secret(detail, "connection detail")
        await asyncio.sleep(0)
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        logger.handlers[:] = handlers_before
    log_text = read_logs(library)
    assert_no_secret(log_text, "TUI log")


def test_the_leak_check_catches_every_form() -> None:
    """The check above is only as good as its forms: each form of each secret, embedded in
    ordinary text (a URL, a Basic auth header, a cut-off message), is caught."""
    for secret in SECRETS:
        for text in (
            f"cloudinary://{API_KEY}:{secret}@demo",
            f"https://x/?apikey={quote(secret, safe='')}&vsn=1.0.0",
            "Authorization: Basic " + base64.b64encode(f"{API_KEY}:{secret}".encode()).decode(),
            f"error: the key {secret[:9]}… was refused",
        ):
            with pytest.raises(AssertionError):
                assert_no_secret(text, "self-check")
    assert_no_secret("***Zx (17 chars) and ***Rt (17 chars)", "the masked hints are allowed")
