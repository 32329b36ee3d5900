"""Cold start to first paint: the real `media-tui` in a pseudo-terminal vs a minimal Textual app.

    python -m benchmarks.cold_start [--runs 5] [--json]

Spawns `python -m media_tui` on a fresh, empty local library in a pseudo-terminal of 120×40
(TERM=xterm-256color), as a terminal would run it, and times from the spawn until the bytes of
the first frame showing the empty-library text ("Your library is empty.", from the grid) have
been written to the terminal; then types `q` and reaps the process. The library is opened and
its (empty) catalogue read before that text can appear, so this is the time to the first
useful screen, not to the first escape sequence.

The baseline, run the same way and interleaved with it: a minimal Textual app showing one
`Static`, written to a temporary file. The ratio is what media-tui costs on top of Textual's own
start-up (interpreter, imports, driver, first compositing). Each is run once untimed first (so
neither pays for compiling bytecode), then `--runs` times; the figures are medians. No target
is stated for this.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.results import Measure, Report, emit

COLUMNS, ROWS = 120, 40
EMPTY_TEXT = "Your library is empty."  # media_tui/ui/grid.py EMPTY_TITLE
MINIMAL_TEXT = "A minimal Textual app."
MINIMAL_APP = f"""
from textual.app import App, ComposeResult
from textual.widgets import Static


class Minimal(App[None]):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Static({MINIMAL_TEXT!r})


if __name__ == "__main__":
    Minimal().run()
"""


class StartError(RuntimeError):
    """The program exited or stalled before showing its text."""


def _pty_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDINARY_", "SUPABASE_", "NEXT_PUBLIC_SUPABASE_", "MEDIA_TUI_"))
        and k not in ("TEXTUAL", "COLUMNS", "LINES", "NO_COLOR")
    }
    env.update(TERM="xterm-256color", COLORTERM="truecolor", **extra)
    return env


def _make_controlling_tty() -> None:  # in the child, after setsid: the pty is its terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def time_to_text(
    argv: list[str], env: dict[str, str], text: str, timeout: float = 60.0
) -> tuple[float, float]:
    """Seconds from spawn until `text` is on the terminal, and from `q` until the exit."""
    needle = text.encode()
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    output = bytearray()
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        preexec_fn=_make_controlling_tty,  # safe: this process starts no threads
        close_fds=True,
    )
    os.close(slave)
    try:
        shown_at = None
        deadline = started + timeout
        while shown_at is None:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.perf_counter()))
            if not ready:
                raise StartError(f"{argv} did not show {text!r} within {timeout:.0f} s")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                raise StartError(
                    f"{argv} exited before showing {text!r}: {bytes(output[-2000:])!r}"
                )
            # Search only the new bytes and the tail the text could straddle.
            tail = len(output) - len(needle)
            output += chunk
            if needle in output[max(0, tail) :]:
                shown_at = time.perf_counter()
        os.write(master, b"q")
        quit_sent = time.perf_counter()
        while True:  # drain until the child closes the terminal, so it never blocks writing
            ready, _, _ = select.select([master], [], [], 10)
            if not ready:
                break
            try:
                if not os.read(master, 65536):
                    break
            except OSError:
                break
        code = process.wait(timeout=10)
        exited = time.perf_counter()
        if code != 0:
            raise StartError(f"{argv} exited with {code} after `q`")
        return shown_at - started, exited - quit_sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


@dataclass
class ColdStartResult:
    runs: int
    media_tui: list[float]  # seconds, spawn → empty-library text on the terminal
    minimal: list[float]  # seconds, spawn → the minimal app's text on the terminal
    media_tui_quit: list[float]  # seconds, `q` → the process has exited
    minimal_quit: list[float]

    @property
    def media_tui_median(self) -> float:
        return statistics.median(self.media_tui)

    @property
    def minimal_median(self) -> float:
        return statistics.median(self.minimal)


def collect(runs: int) -> ColdStartResult:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "minimal_app.py"
        script.write_text(MINIMAL_APP)
        minimal_argv = [sys.executable, str(script)]
        media_argv = [sys.executable, "-m", "media_tui", "--storage", "local", "--catalog", "local"]
        minimal_env = _pty_env({})
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        for n in range(runs + 1):  # run 0 is the untimed warm-up
            # A fresh, empty library every time: nothing from the last run is reused.
            library = Path(tmp) / f"library-{n}"
            media_env = _pty_env(
                {"MEDIA_TUI_LIBRARY": str(library), "MEDIA_TUI_CONFIG": os.devnull}
            )
            first = time_to_text(media_argv, media_env, EMPTY_TEXT)
            second = time_to_text(minimal_argv, minimal_env, MINIMAL_TEXT)
            if n:
                ours.append(first)
                theirs.append(second)
    return ColdStartResult(
        runs,
        [t for t, _ in ours],
        [t for t, _ in theirs],
        [q for _, q in ours],
        [q for _, q in theirs],
    )


def measures(r: ColdStartResult) -> list[Measure]:
    sizes = (
        f"median of {r.runs} runs each, after one untimed; empty local library; "
        f"pty {COLUMNS}×{ROWS}, TERM=xterm-256color"
    )
    return [
        Measure(
            "cold start",
            "spawn → first paint",
            r.media_tui_median * 1000,
            "ms",
            r.minimal_median * 1000,
            "minimal Textual app",
            None,
            sizes,
        ),
        Measure(
            "cold start",
            "q → exited",
            statistics.median(r.media_tui_quit) * 1000,
            "ms",
            statistics.median(r.minimal_quit) * 1000,
            "minimal Textual app",
            None,
            sizes,
        ),
    ]


def print_report(r: ColdStartResult) -> None:
    def row(name: str, times: list[float], quits: list[float]) -> str:
        runs = " ".join(f"{t * 1000:.0f}" for t in times)
        return (
            f"  {name:<22} median {statistics.median(times) * 1000:6.0f} ms   (runs: {runs})"
            f"   q → exit {statistics.median(quits) * 1000:.0f} ms"
        )

    print(f"spawn → first paint in a {COLUMNS}×{ROWS} pty, {r.runs} runs each after one untimed:")
    print(row("media-tui (empty lib)", r.media_tui, r.media_tui_quit))
    print(row("minimal Textual app", r.minimal, r.minimal_quit))
    print(f"  media-tui ÷ minimal app: {r.media_tui_median / r.minimal_median:.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each")
    parser.add_argument("--json", action="store_true", help="print the measures as JSON")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    result = collect(args.runs)
    if args.json:
        emit(Report("cold_start", {"runs": args.runs}, result, measures(result)))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
