"""Draw ``bench/results.png`` from the JSON file ``bench.run_all`` wrote.

    pip install -r bench/requirements.txt   # matplotlib
    python -m bench.plot [--results bench/results.json] [--out bench/results.png]
                         [--also bench/results-uvicorn-standard.json]

Every panel shows ratios measured in one run, with the issue's target as a dashed line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MET, MISSED, REFERENCE = "#4c9a2a", "#c0392b", "#7f8c8d"


def _colour(ok: bool | None) -> str:
    return REFERENCE if ok is None else (MET if ok else MISSED)


def _bars(ax: Any, labels: list[str], values: list[float], oks: list[bool | None]) -> None:
    positions = list(range(len(labels)))
    ax.barh(positions, values, color=[_colour(ok) for ok in oks])
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    for y, value in zip(positions, values, strict=True):
        ax.annotate(
            f" {value:.2f}",
            (value, y),
            va="center",
            fontsize=7,
            annotation_clip=False,
        )


def overhead_panel(ax: Any, found: dict[str, Any], framework: str) -> None:
    variants = found[framework]["variants"]
    labels, values, oks = [], [], []
    for name, figures in variants.items():
        if name == "bare app":
            continue
        labels.append(name.replace("wafer ", ""))
        values.append(max(figures["overhead_vs_cookie"] or 0.0, 0.01))
        oks.append(figures["target_met"])
    _bars(ax, labels, values, oks)
    ax.set_xscale("log")
    ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50) if t <= max(values) * 1.5]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.axvline(0.5, ls="--", color="black", lw=1)
    ax.set_title(f"In process, {framework}: overhead / signed cookie's", fontsize=9)
    ax.set_xlabel("ratio (log); target <= 0.5 for memory and SQLite", fontsize=8)


def _server(found: dict[str, Any]) -> str:
    """Which uvicorn a run used, as a short label."""
    return "uvloop" if found.get("uvicorn") == "standard" else "h11"


def http_panel(ax: Any, runs: list[dict[str, Any]]) -> None:
    labels, values, oks = [], [], []
    for found in runs:
        for framework in ("starlette", "flask"):
            if framework == "flask" and found is not runs[0]:
                continue  # gunicorn is the same in every run
            server = f" ({_server(found)})" if framework == "starlette" and len(runs) > 1 else ""
            for name, figures in found.get(framework, {}).items():
                if name == "bare app":
                    continue
                labels.append(f"{framework}{server}: {name.replace('wafer ', '')}")
                values.append(figures["vs_bare"])
                oks.append(figures["target_met"])
    _bars(ax, labels, values, oks)
    ax.axvline(0.9, ls="--", color="black", lw=1)
    ax.set_xlim(0, max([1.1, *values]))
    ax.set_title("Over HTTP (wrk): requests/s / bare app's", fontsize=9)
    ax.set_xlabel("ratio; target >= 0.9", fontsize=8)


def logins_panels(speed: Any, lag: Any, runs: list[dict[str, Any]]) -> None:
    rows: list[tuple[str, dict[str, Any], bool | None]] = []
    references = []
    for found in runs:
        stores = found["stores"]
        server = f" ({_server(found)})" if len(runs) > 1 else ""
        rows += [
            (name + server, figures, figures["lag_target_met"]) for name, figures in stores.items()
        ]
        if "memory" in stores:
            reference = {"lag_max_s": stores["memory"]["health_lag_max_s"], "lag_p99_s": 0.0}
            clients = found["sizes"]["clients"]
            references.append((f"{clients} x /health{server}", reference, None))
    _bars(
        speed,
        [label for label, _, _ in rows],
        [figures["speedup"] for _, figures, _ in rows],
        [figures["speedup_target_met"] for _, figures, _ in rows],
    )
    speed.axvline(10, ls="--", color="black", lw=1)
    clients = runs[0]["sizes"]["clients"]
    speed.set_title(f"{clients} logins at once / one after another", fontsize=9)
    speed.set_xlabel("throughput ratio; target >= 10", fontsize=8)
    rows += references
    positions = list(range(len(rows)))
    height = 0.4
    lag.barh(
        [p - height / 2 for p in positions],
        [figures["lag_max_s"] * 1000 for _, figures, _ in rows],
        height,
        color=[_colour(ok) for _, _, ok in rows],
        label="max",
    )
    lag.barh(
        [p + height / 2 for p in positions],
        [figures["lag_p99_s"] * 1000 for _, figures, _ in rows],
        height,
        color=REFERENCE,
        label="p99",
    )
    lag.set_yticks(positions, [label for label, _, _ in rows], fontsize=8)
    lag.invert_yaxis()
    lag.axvline(10, ls="--", color="black", lw=1)
    lag.legend(fontsize=7)
    lag.set_title("Event loop lag while the logins are in flight", fontsize=9)
    lag.set_xlabel("ms; target < 10 (max)", fontsize=8)


def stores_panel(ax: Any, found: dict[str, Any]) -> None:
    sizes = found["sizes"]
    labels, values, oks = [], [], []
    for name, figures in found["stores"].items():
        for generation in ("v1", "v2"):
            per_session = figures["large"]["bytes_per_session"]
            labels.append(f"{name} {generation} ({per_session:,.0f} B/session)")
            values.append(figures[f"ratio_{generation}"])
            oks.append(figures[f"target_met_{generation}"])
    _bars(ax, labels, values, oks)
    ax.axvline(1.5, ls="--", color="black", lw=1)
    ax.set_xlim(0, max([1.7, *values]))
    ax.set_title(
        f"Validation latency: {sizes['large']:,} / {sizes['small']:,} sessions", fontsize=9
    )
    ax.set_xlabel("ratio of medians; target <= 1.5", fontsize=8)


def plot(results: dict[str, Any], out: Path, also: dict[str, Any] | None = None) -> None:
    """Draw ``results``; ``also`` is a second run of the HTTP and login benchmarks (on
    another uvicorn), drawn beside the first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(13, 15))
    panels = axes.flatten()
    for ax in panels:
        ax.set_visible(False)

    def use(ax: Any) -> Any:
        ax.set_visible(True)
        ax.tick_params(labelsize=8)
        return ax

    if "overhead" in results:
        overhead_panel(use(panels[0]), results["overhead"], "starlette")
        overhead_panel(use(panels[1]), results["overhead"], "flask")
    extra = also or {}
    if "http_load" in results:
        http_runs = [results["http_load"]] + ([extra["http_load"]] if "http_load" in extra else [])
        http_panel(use(panels[2]), http_runs)
    if "stores" in results and results["stores"]["stores"]:
        stores_panel(use(panels[3]), results["stores"])
    if "logins" in results and results["logins"]["stores"]:
        login_runs = [results["logins"]] + ([extra["logins"]] if "logins" in extra else [])
        logins_panels(use(panels[4]), use(panels[5]), login_runs)
    machine = results.get("machine", {})
    fig.suptitle(
        "wafer_py benchmarks (green: target met, red: missed, grey: reference)\n"
        f"{machine.get('cpu', '?')}, {machine.get('cpus', '?')} CPUs, "
        f"Python {machine.get('python', '?')}, {machine.get('date', '')}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.png")
    parser.add_argument(
        "--also",
        type=Path,
        help="a run_all file of http_load and logins on the other uvicorn "
        "(bench/results-uvicorn-standard.json), drawn beside the first",
    )
    args = parser.parse_args(argv)
    also = json.loads(args.also.read_text()) if args.also else None
    plot(json.loads(args.results.read_text()), args.out, also)
    print(f"plot written to {args.out}")


if __name__ == "__main__":
    main()
