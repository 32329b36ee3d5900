"""Every benchmark, each against its baseline in the same run: one table and `results.json`.

    python -m benchmarks [--only NAME[,NAME…]] [--output PATH]

Runs each benchmark module in a fresh interpreter (`python -m benchmarks.<name> … --json`), one
after another, so no benchmark's threads, garbage or imports skew the next; each hands back its
measures as JSON on stdout. Then it prints one table — benchmark, measure, media-tui's figure,
the baseline's, their ratio, the target and whether it is met — and writes every measure with
the machine it ran on to `benchmarks/results.json` (or `--output`).

The sizes are chosen so the whole run takes a few minutes on a 2-core machine; they are in
`STEPS` below and printed above each benchmark's rows. Each module run alone
(`python -m benchmarks.realtime_latency`, …) keeps its own defaults and text output.

Targets come from the README's Performance section and the modules' docstrings; the grid's
"near 1" is read as ≤ 1.5×. A missed target is reported, never an error: benchmarks are not
tests. The exit code is 1 only if a benchmark failed to run.

On Linux it also measures how busy the machine was with *other* work while each benchmark ran
(all CPU time in `/proc/stat` less this run's own), and warns under the table when that was
more than a tenth of the machine: on 2 cores a test suite running beside the benchmarks
shows up as slower latencies, not as an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.results import Measure, format_table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
PACKAGES = ("media-tui", "textual", "rich", "httpx", "supabase", "realtime", "cloudinary")


@dataclass(frozen=True)
class Step:
    name: str  # the module under benchmarks/
    args: tuple[str, ...]  # the sizes for this run (the module's own defaults may be larger)
    timeout: float = 300.0


STEPS = (
    # The README's upload targets are for 50 ms per request, media-tui's default 4 workers.
    Step("upload_cloudinary", ("--small", "200", "--large", "4", "--latency", "0.05")),
    # 300 lone writes rather than the module's 500, to save half a minute; the storm stays at
    # the 10,000 events the README's target is for.
    Step("realtime_latency", ("--events", "300", "--storm", "10000")),
    Step("grid_100k", ("--counts", "100,100000", "--pages", "50")),
    Step("open_library", ("--counts", "100", "100000", "--presses", "30")),
    Step("cold_start", ("--runs", "5")),
    Step("upload_cpu", ("--files", "8", "--mb", "64", "--runs", "3")),
)


@dataclass
class Outcome:
    step: Step
    seconds: float
    report: dict[str, Any] | None
    error: str | None
    other_load: float | None = None  # share of the machine's CPU used by other processes


OTHER_LOAD_WARNING = 0.10  # of the whole machine's CPU, while a benchmark ran


def _machine_busy_seconds() -> float | None:
    """CPU seconds every core has spent busy since boot (Linux), all processes together."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and every benchmark process it has reaped."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_step(step: Step) -> Outcome:
    busy, own = _machine_busy_seconds(), _own_cpu_seconds()
    outcome = _run_step(step)
    busy_after = _machine_busy_seconds()
    if busy is not None and busy_after is not None and outcome.seconds > 0:
        others = (busy_after - busy) - (_own_cpu_seconds() - own)
        outcome.other_load = max(0.0, others) / (outcome.seconds * (os.cpu_count() or 1))
    return outcome


def _run_step(step: Step) -> Outcome:
    argv = [sys.executable, "-m", f"benchmarks.{step.name}", *step.args, "--json"]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=step.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return Outcome(
            step, time.perf_counter() - started, None, f"timed out after {step.timeout:.0f} s"
        )
    seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-15:]
        return Outcome(step, seconds, None, f"exit code {done.returncode}: " + "\n".join(tail))
    try:
        return Outcome(step, seconds, json.loads(lines[-1]), None)
    except json.JSONDecodeError as exc:
        return Outcome(step, seconds, None, f"no JSON on stdout ({exc}): {lines[-1][:200]}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_revision() -> str | None:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    ram = _ram_bytes()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": None if ram is None else round(ram / 2**30, 1),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _version(name) for name in PACKAGES},
        "git": _git_revision(),
    }


def summary_line(machine: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB RAM; "
        f"{machine['os']}; Python {machine['python'].split()[-1]}; {packages}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = [s.name for s in STEPS]
    parser.add_argument("--only", help=f"comma-separated, from: {', '.join(names)}")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where results go")
    args = parser.parse_args(argv)
    steps = list(STEPS)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(
                f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}"
            )
        steps = [s for s in STEPS if s.name in wanted]

    date = datetime.now(UTC)
    started = time.perf_counter()
    outcomes = []
    for number, step in enumerate(steps, 1):
        print(
            f"[{number}/{len(steps)}] {step.name} {' '.join(step.args)} …",
            file=sys.stderr,
            flush=True,
        )
        outcome = run_step(step)
        status = "failed: " + outcome.error if outcome.error else "done"
        load = (
            ""
            if outcome.other_load is None
            else f" (other processes: {outcome.other_load:.0%} of the CPU)"
        )
        print(f"    {status} in {outcome.seconds:.1f} s{load}", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    wall = time.perf_counter() - started

    measures = [Measure.from_json(m) for o in outcomes if o.report for m in o.report["measures"]]
    failures = [f"{o.step.name}: {o.error}" for o in outcomes if o.error]
    machine = machine_info()
    met = [m.met for m in measures if m.met is not None]
    print(f"media-tui benchmarks, {date:%Y-%m-%d %H:%M} UTC — {summary_line(machine)}")
    print()
    print(format_table(measures, failures))
    print()
    print(
        f"{sum(met)} of {len(met)} targets met; {len(measures)} measures from {len(outcomes)} "
        f"benchmarks in {wall:.0f} s; ratio = media-tui ÷ baseline."
    )
    busy = [o for o in outcomes if o.other_load is not None and o.other_load > OTHER_LOAD_WARNING]
    if busy:
        shares = ", ".join(f"{o.step.name} {o.other_load:.0%}" for o in busy if o.other_load)
        print(
            f"warning: other processes were using the CPU meanwhile ({shares} of the machine); "
            "their figures are skewed by it. Rerun on a quiet machine."
        )

    results = {
        "date": date.isoformat(timespec="seconds"),
        "command": "python -m benchmarks" + (f" --only {args.only}" if args.only else ""),
        "wall_seconds": round(wall, 1),
        "machine": machine,
        "measures": [m.to_json() for m in measures],
        "benchmarks": [
            {
                "name": o.step.name,
                "argv": list(o.step.args),
                "seconds": round(o.seconds, 1),
                "other_load": None if o.other_load is None else round(o.other_load, 3),
                "error": o.error,
                "params": o.report["params"] if o.report else None,
                "result": o.report["result"] if o.report else None,
            }
            for o in outcomes
        ],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {args.output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
