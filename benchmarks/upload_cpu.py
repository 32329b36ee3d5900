"""CPU seconds per GB uploaded by `media-tui upload`, against a plain copy and the Cloudinary SDK.

    python -m benchmarks.upload_cpu [--files 8] [--mb 64] [--runs 3] [--json]

Writes `--files` files of `--mb` MB each (MP4-looking noise), then uploads all of them with the
real command, each time as a child process whose CPU time (user + sys, from `os.wait4`'s
rusage for that child alone) is what is measured:

- **local**: `python -m media_tui upload FILES --storage local --catalog local` into a fresh
  library (hash for dedupe, copy + hash + fsync into the object store, catalogue row), against
  a plain Python process copying the same files `cp`-like, hashing them with sha256 and
  fsyncing the copies (`benchmarks.upload_baselines copy`);
- **Cloudinary**: the same command with `--storage cloudinary`, pointed at the Cloudinary
  emulator running in its own process (whose CPU, a server's, is not counted), against the
  SDK's `upload_large` (20 MB chunks) of the same files in a child process
  (`benchmarks.upload_baselines sdk`).

Every process's figure includes its start-up (interpreter and imports), since that is part of
what an upload costs the machine; `startup` in the result is one `media-tui --version` for
scale. The local pair runs first, with no emulator running, then the Cloudinary pair; within a
pair the two take turns, `--runs` times after an untimed round, and the figures are medians.
Page-cache writes are the noisy part (system time): each writer starts with the same memory
state (see `interleave`). No target is stated for this.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.remote_emulator import RemoteEmulator
from benchmarks.results import Measure, Report, emit
from benchmarks.upload_baselines import API_KEY, API_SECRET, CLOUD

GB = 1e9


@dataclass
class ChildRun:
    cpu_user: float
    cpu_sys: float
    wall: float

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys


@dataclass
class Contender:
    name: str
    runs: list[ChildRun] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)


@dataclass
class UploadCpuResult:
    files: int
    file_bytes: int
    startup_cpu: float  # `python -m media_tui --version`: the interpreter and the CLI's imports
    local: Contender
    local_baseline: Contender
    cloudinary: Contender
    cloudinary_baseline: Contender

    @property
    def total_bytes(self) -> int:
        return self.files * self.file_bytes

    def per_gb(self, contender: Contender) -> float:
        return contender.cpu / (self.total_bytes / GB)


class ChildFailed(RuntimeError):
    pass


def run_child(argv: list[str], env: dict[str, str], log: Path) -> ChildRun:
    """Run `argv` to the end; its own CPU time (and its reaped children's) and wall time."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise ChildFailed(f"{argv[:4]}… exited with {process.returncode}: {tail}")
    return ChildRun(usage.ru_utime, usage.ru_stime, wall)


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDINARY_", "SUPABASE_", "NEXT_PUBLIC_SUPABASE_", "MEDIA_TUI_"))
    }
    env.update(MEDIA_TUI_CONFIG=os.devnull, **extra)
    return env


def _check_uploaded(log: Path, files: list[Path]) -> None:
    results = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    uploaded = [r for r in results if r.get("status") == "uploaded"]
    if len(uploaded) != len(files):
        raise ChildFailed(f"media-tui uploaded {len(uploaded)} of {len(files)} files: {results}")


def media_tui_upload(files: list[Path], library: Path, env: dict[str, str], log: Path) -> ChildRun:
    storage = "cloudinary" if "CLOUDINARY_URL" in env else "local"
    argv = [sys.executable, "-m", "media_tui", "upload", *map(str, files), "--json"]
    argv += ["--storage", storage, "--catalog", "local", "--library", str(library)]
    run = run_child(argv, env, log)
    _check_uploaded(log, files)
    return run


def baseline(
    command: str, where: str, files: list[Path], env: dict[str, str], log: Path
) -> ChildRun:
    argv = [sys.executable, "-m", "benchmarks.upload_baselines", command, where]
    return run_child(argv + [str(p) for p in files], env, log)


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"cpu{i:02d}.mp4"
        with open(path, "wb") as handle:  # an `ftyp` box, then noise: sniffed as a video
            handle.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
            handle.write(os.urandom(size - 24))
        paths.append(path)
    return paths


def interleave(
    work: Path, runs: int, contenders: list[tuple[Contender, Callable[[Path], ChildRun]]]
) -> None:
    """Run each contender in turn, `runs` rounds after an untimed one; each writes into a fresh
    folder, deleted just before the next contender starts."""
    # The untimed round: no contender pays for compiling bytecode or first use. Deleting the
    # last output just before the next contender starts gives each the same memory to write
    # into: in a VM, pages freed a while ago may have gone back to the host, and whoever fills
    # them with page cache pays for that in system time.
    leftover: Path | None = None
    for n in range(runs + 1):
        for i, (contender, action) in enumerate(contenders):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
            # Write back whatever was left dirty, here and untimed: the kernel would otherwise
            # make the next contender's writes pay for it.
            os.sync()
            leftover = work / f"run-{n}-{i}"
            run = action(leftover)
            if n:
                contender.runs.append(run)


def collect(files: int, mb: int, runs: int) -> UploadCpuResult:
    from tests.emulators.cloudinary import CloudinaryEmulator

    size = mb * 1_000_000
    local, local_base = Contender("media-tui upload, local"), Contender("copy + sha256 + fsync")
    cloud, cloud_base = Contender("media-tui upload, Cloudinary"), Contender("SDK upload_large")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = make_files(work / "files", files, size)
        log = work / "child.log"
        local_env = _env()
        startup = run_child([sys.executable, "-m", "media_tui", "--version"], local_env, log)
        # The local pair first, with no emulator running: the emulator takes in and frees a GB
        # per Cloudinary round, and that churn would land on the local writers' system time.
        interleave(
            work,
            runs,
            [
                (local, lambda d: media_tui_upload(paths, d, local_env, log)),
                (local_base, lambda d: baseline("copy", str(d), paths, local_env, log)),
            ],
        )
        with RemoteEmulator(
            CloudinaryEmulator, cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET
        ) as emulator:
            prefix = emulator.url
            cloud_env = _env(
                CLOUDINARY_URL=f"cloudinary://{API_KEY}:{API_SECRET}@{CLOUD}?upload_prefix={prefix}"
            )
            interleave(
                work,
                runs,
                [
                    (cloud, lambda d: media_tui_upload(paths, d, cloud_env, log)),
                    (cloud_base, lambda d: baseline("sdk", prefix, paths, local_env, log)),
                ],
            )
    return UploadCpuResult(files, size, startup.cpu, local, local_base, cloud, cloud_base)


def measures(r: UploadCpuResult) -> list[Measure]:
    sizes = (
        f"{r.files} × {r.file_bytes / 1e6:.0f} MB = {r.total_bytes / 1e6:,.0f} MB, "
        f"median of {len(r.local.runs)} runs; user+sys CPU of the uploading process"
    )
    return [
        Measure(
            "CPU per GB uploaded",
            "local library",
            r.per_gb(r.local),
            "CPU s/GB",
            r.per_gb(r.local_baseline),
            r.local_baseline.name,
            None,
            sizes,
        ),
        Measure(
            "CPU per GB uploaded",
            "Cloudinary emulator",
            r.per_gb(r.cloudinary),
            "CPU s/GB",
            r.per_gb(r.cloudinary_baseline),
            r.cloudinary_baseline.name,
            None,
            sizes + ", emulator in its own process (not counted)",
        ),
    ]


def print_report(r: UploadCpuResult) -> None:
    print(
        f"{r.files} × {r.file_bytes / 1e6:.0f} MB ({r.total_bytes / 1e6:,.0f} MB), "
        f"median of {len(r.local.runs)} runs; CPU = user + sys of the uploading process"
    )
    print(f"  {'':32} {'CPU s':>7} {'user':>6} {'sys':>6} {'wall s':>7} {'CPU s/GB':>9}")
    pairs = ((r.local, r.local_baseline), (r.cloudinary, r.cloudinary_baseline))
    for ours, theirs in pairs:
        for c in (ours, theirs):
            user = statistics.median(x.cpu_user for x in c.runs)
            sys_ = statistics.median(x.cpu_sys for x in c.runs)
            wall = statistics.median(x.wall for x in c.runs)
            print(
                f"  {c.name:32} {c.cpu:7.2f} {user:6.2f} {sys_:6.2f} {wall:7.2f} {r.per_gb(c):9.2f}"
            )
        print(f"  {'media-tui ÷ baseline':32} {ours.cpu / theirs.cpu:7.2f}×")
    print(f"  (`media-tui --version` alone: {r.startup_cpu:.2f} CPU s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--mb", type=int, default=64, help="MB per file")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each contender")
    parser.add_argument("--json", action="store_true", help="print the measures as JSON")
    args = parser.parse_args()
    if args.files < 1 or args.mb < 1 or args.runs < 1:
        parser.error("--files, --mb and --runs must be at least 1")
    result = collect(args.files, args.mb, args.runs)
    if args.json:
        params = {"files": args.files, "mb": args.mb, "runs": args.runs}
        emit(Report("upload_cpu", params, result, measures(result)))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
