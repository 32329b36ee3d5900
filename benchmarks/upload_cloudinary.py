"""Upload throughput against the Cloudinary emulator: media-tui vs the SDK vs raw httpx.

`python -m benchmarks.upload_cloudinary [--small 200] [--large 4]` starts the emulator in its own
process (so its work does not share this process's GIL) and runs, one after another on the same
files, with a fresh emulator state each time:

- **media-tui**: the real pipeline — hash, dedupe check, streamed signed upload (chunked above
  the threshold), catalogue row, store — with the default 4 workers;
- **SDK sequential**: `cloudinary.uploader.upload()` in a loop (`upload_large` above 20 MB);
- **SDK 30 threads**: the same calls on a 30-thread pool, which is what `cld upload_dir` does;
- **raw httpx**: signed multipart POSTs (`files=`) on an `httpx.AsyncClient` at media-tui's
  concurrency — the floor cost of the HTTP work alone, with no hashing, catalogue or progress.

It prints the throughput of each and media-tui's ratio to each baseline (`--json`: the measures
as JSON, for `python -m benchmarks`). Targets, from the README, for the small files with 50 ms
added to every answer (`--latency 0.05`): media-tui ≥ 3× the SDK's sequential loop, ≥ 1× its
30-thread pool and ≥ 0.9× raw httpx at the same concurrency. The large files have no target.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudinary
import cloudinary.uploader
import httpx

from benchmarks.results import Measure, Report, Target, emit
from media_tui.backends.cloudinary import CloudinaryStorage
from media_tui.backends.local import LocalCatalog
from media_tui.config import CloudinarySettings, Secret
from media_tui.paths import expand
from media_tui.store import MediaStore
from media_tui.uploads import UploadQueue
from tests.emulators.cloudinary import CloudinaryEmulator
from tests.integration.media_factory import make_png, make_video

API_KEY, API_SECRET, CLOUD = "123456789012345", "bench-secret", "demo"
CONCURRENCY = 4  # media-tui's default; --concurrency changes it for media-tui and raw httpx
SDK_CHUNK = 20_000_000


def _serve(port_out: Any, stop: Any, latency: float) -> None:
    with CloudinaryEmulator(cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET) as emulator:
        emulator.faults.latency = latency  # a network round trip, added to every answer
        port_out.send(emulator.url)
        stop.wait()


@dataclass
class Result:
    name: str
    files: int
    seconds: float
    total_bytes: int

    @property
    def mb_per_s(self) -> float:
        return self.total_bytes / self.seconds / 1e6


def make_files(folder: Path, small: int, large: int) -> tuple[list[Path], list[Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    smalls = [
        make_png(folder / f"s{i:04d}.png", seed=i, padding=256 * 1024 - 80) for i in range(small)
    ]
    larges = [
        make_video(folder / f"l{i}.mp4", size=40_000_000, seed=1000 + i) for i in range(large)
    ]
    return smalls, larges


async def run_media_tui(url: str, files: list[Path], workdir: Path, concurrency: int) -> None:
    settings = CloudinarySettings(CLOUD, API_KEY, Secret(API_SECRET), url)
    storage = CloudinaryStorage(settings, concurrency=concurrency)
    catalog = LocalCatalog(workdir)
    queue = UploadQueue(MediaStore(), storage, catalog, concurrency=concurrency)
    await queue.start()
    try:
        await queue.enqueue(expand([str(p) for p in files]).files)
        await queue.wait_idle()
    finally:
        await queue.aclose()
        await storage.aclose()
        await catalog.aclose()


def sdk_upload(path: Path) -> None:
    kind = "video" if path.suffix == ".mp4" else "image"
    if path.stat().st_size > SDK_CHUNK:
        cloudinary.uploader.upload_large(
            str(path), public_id=path.stem, resource_type=kind, chunk_size=SDK_CHUNK
        )
    else:
        cloudinary.uploader.upload(str(path), public_id=path.stem, resource_type=kind)


def run_sdk(files: list[Path], threads: int) -> None:
    if threads == 1:
        for path in files:
            sdk_upload(path)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(sdk_upload, files))


async def run_raw_httpx(url: str, files: list[Path], concurrency: int) -> None:
    from cloudinary.utils import api_sign_request

    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"{url}/v1_1/{CLOUD}/", timeout=120, limits=limits
    ) as client:

        async def one(path: Path) -> None:
            async with semaphore:
                kind = "video" if path.suffix == ".mp4" else "image"
                fields = {"public_id": path.stem, "timestamp": str(int(time.time()))}
                fields["signature"] = api_sign_request(dict(fields), API_SECRET)
                fields["api_key"] = API_KEY
                data = await asyncio.to_thread(path.read_bytes)
                response = await client.post(
                    f"{kind}/upload", data=fields, files={"file": (path.name, data)}
                )
                response.raise_for_status()

        await asyncio.gather(*(one(p) for p in files))


def timed(name: str, files: list[Path], action: Callable[[], None]) -> Result:
    started = time.perf_counter()
    action()
    return Result(
        name, len(files), time.perf_counter() - started, sum(p.stat().st_size for p in files)
    )


def bench(url: str, files: list[Path], workdir: Path, label: str, concurrency: int) -> list[Result]:
    """Upload `files` by each contender in turn; media-tui's result first."""
    cloudinary.config(cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET, upload_prefix=url)
    library = workdir / f"lib-{label}-{concurrency}"

    def media_tui() -> None:
        asyncio.run(run_media_tui(url, files, library, concurrency))

    def raw() -> None:
        asyncio.run(run_raw_httpx(url, files, concurrency))

    # One untimed pass on two files first, so no contender pays for first imports or pool set-up.
    warm = files[:2]
    asyncio.run(run_media_tui(url, warm, workdir / f"warm-{label}", concurrency))
    run_sdk(warm, 2)
    asyncio.run(run_raw_httpx(url, warm, concurrency))
    return [
        timed(f"media-tui ×{concurrency}", files, media_tui),
        timed("SDK sequential", files, lambda: run_sdk(files, 1)),
        timed("SDK 30 threads", files, lambda: run_sdk(files, 30)),
        timed(f"raw httpx ×{concurrency}", files, raw),
    ]


@dataclass
class FileSet:
    kind: str  # "small" or "large"
    label: str  # e.g. "200 × 256 KiB"
    results: list[Result]  # media-tui first, then the baselines


@dataclass
class UploadReport:
    latency: float
    concurrency: int
    sets: list[FileSet]


def collect(small: int, large: int, latency: float, concurrency: int) -> UploadReport:
    """Start the emulator in its own process and time every contender on both file sets."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    stop = context.Event()
    server = context.Process(target=_serve, args=(send, stop, latency), daemon=True)
    server.start()
    sets = []
    try:
        if not receive.poll(30):
            raise SystemExit("the emulator process did not start")
        url = receive.recv()
        with tempfile.TemporaryDirectory() as tmp:
            smalls, larges = make_files(Path(tmp) / "files", small, large)
            for kind, files, label in (
                ("small", smalls, f"{small} × 256 KiB"),
                ("large", larges, f"{large} × 40 MB"),
            ):
                if files:
                    sets.append(
                        FileSet(kind, label, bench(url, files, Path(tmp), label, concurrency))
                    )
    finally:
        stop.set()
        server.join(timeout=10)
    return UploadReport(latency, concurrency, sets)


# The README's targets, for the small files with 50 ms per request: media-tui ÷ each baseline.
SMALL_TARGETS = {"SDK sequential": 3.0, "SDK 30 threads": 1.0, "raw httpx": 0.9}


def measures(report: UploadReport) -> list[Measure]:
    out = []
    for file_set in report.sets:
        ours, *baselines = file_set.results
        total_mb = ours.total_bytes / 1e6
        sizes = (
            f"{file_set.label} ({total_mb:.0f} MB), emulator in its own process "
            f"+{report.latency * 1000:.0f} ms per request, {report.concurrency} workers"
        )
        for baseline in baselines:
            key = baseline.name.split(" ×")[0]
            target = None
            if file_set.kind == "small" and report.latency >= 0.05:
                target = Target("ratio", "≥", SMALL_TARGETS[key], source="README")
            out.append(
                Measure(
                    f"upload, {file_set.kind} files",
                    f"throughput vs {baseline.name}",
                    ours.mb_per_s,
                    "MB/s",
                    baseline.mb_per_s,
                    baseline.name,
                    target,
                    sizes,
                )
            )
    return out


def print_report(report: UploadReport) -> None:
    print(f"emulator latency {report.latency * 1000:.0f} ms per request")
    for file_set in report.sets:
        results = file_set.results
        print(
            f"\n{file_set.label}: {results[0].files} files, {results[0].total_bytes / 1e6:.0f} MB"
        )
        print(f"  {'':18} {'seconds':>8} {'MB/s':>8} {'media-tui ×':>12}")
        for r in results:
            ratio = results[0].mb_per_s / r.mb_per_s
            print(f"  {r.name:18} {r.seconds:8.2f} {r.mb_per_s:8.1f} {ratio:12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds the emulator adds to every answer"
    )
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--json", action="store_true", help="print the measures as JSON")
    args = parser.parse_args()
    report = collect(args.small, args.large, args.latency, args.concurrency)
    if args.json:
        params = {k: getattr(args, k) for k in ("small", "large", "latency", "concurrency")}
        emit(Report("upload_cloudinary", params, report, measures(report)))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
