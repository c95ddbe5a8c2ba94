"""Shared pieces of the benchmarks: timing by median of repeats, result rows, peak memory."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from bench.device import Device

DEFAULT_ROOT = Path("/tmp/smop_real_models")


@dataclass
class Row:
    """One line of the results table; ``ratio`` is the figure the target is stated in."""

    case: str
    measured: str
    baseline: str = ""
    ratio: Optional[float] = None
    target: str = ""
    met: Optional[bool] = None
    note: str = ""

    def markdown(self) -> str:
        ratio = "" if self.ratio is None else f"{self.ratio:.3g}"
        met = "" if self.met is None else ("yes" if self.met else "**no**")
        return f"| {self.case} | {self.measured} | {self.baseline} | {ratio} | {self.target} | {met} |"


HEADER = "| case | measured | baseline | ratio | target | met |\n|---|---|---|---|---|---|"


def no_sync() -> None:
    """The clock's wait on a CPU: nothing to wait for."""


def median_time(
    fn: Callable[[], object], repeats: int = 3, warmup: int = 1, sync: Callable[[], None] = no_sync
) -> float:
    """Median wall time (s) of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones;
    ``sync`` waits for the device (bench.device.Device.sync) before each clock read."""
    return interleaved_times({"fn": fn}, repeats, warmup, sync)["fn"]


def interleaved_times(fns: dict, repeats: int = 3, warmup: int = 1, sync: Callable[[], None] = no_sync) -> dict:
    """Median time per named function, the calls interleaved (a, b, c, a, b, c, ...) so that a
    slow drift of the machine (thermal, other jobs) reaches every case alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def table(rows: List[Row]) -> str:
    return "\n".join([HEADER, *(r.markdown() for r in rows)])


def notes(rows: List[Row]) -> List[str]:
    return [f"- {r.case}: {r.note}" for r in rows if r.note]


def report(rows: List[Row]) -> str:
    """The table, then the notes (profiles, explanations) of its rows."""
    return "\n".join([table(rows), *notes(rows)])


def parser(doc: str, root: bool = True) -> argparse.ArgumentParser:
    """A case's command line: its docstring as help, --device, and --root for the real-size models."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the models run")
    if root:
        p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where the real-size models are written")
    return p


def repeated_case_main(doc: str, run: Callable, cmd=None) -> None:
    """Command line of a case whose ``run(root, repeats=..., device=...)`` gives its rows."""
    p = parser(doc)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(cmd)
    print(report(run(args.root, repeats=args.repeats, device=Device(args.device))))


def run_workers(module: str, settings: Sequence[str], args: Sequence[str]) -> Dict[str, dict]:
    """Each setting measured in a process of its own (``python -m <module> --worker <setting>
    <args>``), so that each peak memory is that setting's alone; a worker's last stdout line is its
    JSON result."""
    res = {}
    for setting in settings:
        proc = subprocess.run(
            [sys.executable, "-m", module, "--worker", setting, *args],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{module} worker ({setting}) failed:\n{proc.stderr[-3000:]}")
        res[setting] = json.loads(proc.stdout.strip().splitlines()[-1])
    return res
