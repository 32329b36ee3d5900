"""What every benchmark hands back: measures against a baseline, with an optional target.

Each benchmark module has a function that measures and returns its own result (a dataclass),
and `measures(result)` turning that into `Measure`s: one figure of media-tui's, the figure of
the baseline run beside it in the same process and run, their ratio, and the target the README
or the module's docstring states, if any. `python -m benchmarks.<name> --json` prints them as
JSON on stdout (see `emit`); `python -m benchmarks` runs each module in a fresh interpreter,
reads that JSON back and prints one table (`format_table`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Target:
    """`value` or `ratio` (media-tui ÷ baseline) must be `op` `bound`."""

    on: Literal["value", "ratio"]
    op: Literal["≥", "≤"]
    bound: float
    unit: str = ""
    source: str = ""  # where the target is stated (README, a docstring)

    def met(self, value: float, ratio: float | None) -> bool | None:
        subject = value if self.on == "value" else ratio
        if subject is None:
            return None
        return subject >= self.bound if self.op == "≥" else subject <= self.bound

    @property
    def label(self) -> str:
        if self.on == "ratio":
            return f"{self.op} {self.bound:g}×"
        return f"{self.op} {self.bound:g} {self.unit}".rstrip()


@dataclass(frozen=True)
class Measure:
    """One figure of media-tui's against the same figure of its baseline, from the same run."""

    benchmark: str  # e.g. "upload, small files"
    measure: str  # e.g. "throughput vs SDK sequential"
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    target: Target | None = None
    sizes: str = ""  # what was measured: counts, sizes, runs

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "measure": self.measure,
            "sizes": self.sizes,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "target": None
            if self.target is None
            else {**asdict(self.target), "label": self.target.label},
            "met": self.met,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measure:
        target = data.get("target")
        if target is not None:
            target = Target(
                target["on"], target["op"], target["bound"], target["unit"], target["source"]
            )
        return cls(
            data["benchmark"],
            data["measure"],
            data["value"],
            data["unit"],
            data.get("baseline"),
            data.get("baseline_name"),
            target,
            data.get("sizes", ""),
        )


@dataclass
class Report:
    """One benchmark module's output: its parameters, its raw result and its measures."""

    name: str
    params: dict[str, Any]
    result: Any
    measures: list[Measure] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        result = self.result
        if is_dataclass(result) and not isinstance(result, type):
            result = asdict(result)
        elif isinstance(result, list):
            result = [
                asdict(r) if is_dataclass(r) and not isinstance(r, type) else r for r in result
            ]
        return {
            "name": self.name,
            "params": self.params,
            "result": result,
            "measures": [m.to_json() for m in self.measures],
        }


def emit(report: Report) -> None:
    """Print the report as one JSON document on stdout: how a benchmark answers the runner."""
    sys.stdout.write(json.dumps(report.to_json()) + "\n")
    sys.stdout.flush()


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("ms", "s", "MB/s", "CPU s/GB"):
        digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
        shown = f"{value:,.{digits}f}"
        return f"{shown} {'s/GB' if unit == 'CPU s/GB' else unit}"
    return f"{value:,.3g} {unit}".rstrip()


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    if ratio >= 100:
        return f"{ratio:,.0f}×"
    return f"{ratio:.2f}×"


HEADERS = ("benchmark", "measure", "media-tui", "baseline", "ratio", "target", "met")


def format_table(measures: Sequence[Measure], failures: Iterable[str] = ()) -> str:
    """The measures as one plain-text table, with a line naming the sizes above each benchmark."""
    rows: list[tuple[str, ...] | str] = []
    current: tuple[str, str] | None = None
    for m in measures:
        if (m.benchmark, m.sizes) != current:
            current = (m.benchmark, m.sizes)
            rows.append(f"{m.benchmark}: {m.sizes}" if m.sizes else m.benchmark)
        met = {True: "✓", False: "✗", None: "—"}[m.met]
        rows.append(
            (
                m.benchmark,
                m.measure,
                format_value(m.value, m.unit),
                format_value(m.baseline, m.unit),
                format_ratio(m.ratio),
                "—" if m.target is None else m.target.label,
                met,
            )
        )
    cells = [HEADERS, *(r for r in rows if isinstance(r, tuple))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]
    right = {2, 3, 4}

    def line(row: tuple[str, ...]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "─" * (sum(widths) + 2 * (len(widths) - 1))
    out = [line(HEADERS), rule]
    for row in rows:
        if isinstance(row, str):
            out.append(f"· {row}")
        else:
            out.append(line(row))
    for failure in failures:
        out.append(f"✗ {failure}")
    return "\n".join(out)
