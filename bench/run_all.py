"""Run every benchmark, one after another, and gather their figures in one JSON file.

    python -m bench.run_all [--smoke] [--stores ...] [--only overhead,stores]
                            [--uvicorn plain|standard] [--out bench/results.json]

Each benchmark runs in a process of its own (as ``python -m bench.<name>``) and prints
its tables as it goes. Then ``python -m bench.plot`` draws ``bench/results.png`` from
the JSON file (it needs matplotlib: ``pip install -r bench/requirements.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common

ROOT = Path(__file__).resolve().parent.parent
#: The benchmarks, in the order of the issue.
BENCHMARKS = ("overhead", "http_load", "logins", "stores", "churn")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a quick check")
    parser.add_argument("--stores", help="passed to each benchmark (default: all they know)")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"some of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    common.add_uvicorn_option(parser)
    parser.add_argument(
        "--update",
        action="store_true",
        help="replace only the chosen benchmarks' figures in an existing --out file",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    results: dict[str, Any] = {"machine": common.machine(), "smoke": args.smoke}
    if args.update and args.out.exists():
        results = {**json.loads(args.out.read_text()), "smoke": args.smoke}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="wafer-bench-") as tmp:
        for name in chosen:
            out = Path(tmp) / f"{name}.json"
            command = [sys.executable, "-m", f"bench.{name}", "--json", str(out)]
            if args.smoke:
                command.append("--smoke")
            if args.stores:
                command += ["--stores", args.stores]
            if name in ("http_load", "logins"):
                command += ["--uvicorn", args.uvicorn]
            print(f"== python -m bench.{name} {' '.join(command[5:])}".rstrip(), flush=True)
            started = time.perf_counter()
            before = _cpu_times()
            subprocess.run(command, cwd=ROOT, env=env, check=True)
            results[name] = json.loads(out.read_text())
            results[name]["elapsed_s"] = time.perf_counter() - started
            results[name]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            results[name]["cpu_steal_percent"] = _steal_percent(before, _cpu_times())
    common.write_json(args.out, results)
    print(f"results written to {args.out}", flush=True)
    return results


def _cpu_times() -> list[int] | None:
    """The machine's CPU time counters (Linux ``/proc/stat``), or None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            return [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def _steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of CPU time the hypervisor gave to other guests (steal) in between: on
    a shared virtual machine, the noise no interleaving removes."""
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    total = sum(after[:8]) - sum(before[:8])
    return round(100 * (after[7] - before[7]) / total, 1) if total > 0 else None


if __name__ == "__main__":
    main()
