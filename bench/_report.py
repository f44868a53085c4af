"""The suite's outputs: machine description, terminal tables, JSON and the PNG plot."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """What the numbers were measured on (load average included: the machine is shared)."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    import trio

    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "trio": trio.__version__,
        "load_average": load,
    }


def savina_table(rows: list[dict[str, Any]], frameworks: list[str]) -> str:
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["benchmark"], {})[r["framework"]] = r
    head = f"{'benchmark':22} {'parameters (run / Savina default)':44}"
    head += "".join(f" {fw + ' ms':>16}" for fw in frameworks)
    if len(frameworks) == 2:
        head += f" {frameworks[1] + '/' + frameworks[0]:>14}"
    lines = [
        "Savina: median ms of the runs within 20 % of the median (Savina's sanitize)",
        head,
    ]
    for name, per in by.items():
        any_row = next(iter(per.values()))
        params = _fmt(any_row["params"])
        if any_row["scaled"]:
            params += " / " + _fmt(any_row["savina_params"])
        line = f"{name:22} {params:44}"
        for fw in frameworks:
            cell = per.get(fw)
            line += f" {cell['median_ms']:16.1f}" if cell else f" {'-':>16}"
        if len(frameworks) == 2 and all(fw in per for fw in frameworks):
            line += f" {per[frameworks[1]]['median_ms'] / per[frameworks[0]]['median_ms']:14.2f}"
        lines.append(line)
    return "\n".join(lines)


def _fmt(params: dict[str, int]) -> str:
    return " ".join(f"{k}={v:,}" for k, v in params.items())


def plot(result: dict[str, Any], path: Path) -> None:
    """Latency distributions side by side (log scale) and the Savina medians."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency = result.get("latency")
    savina = result.get("savina")
    panels = [p for p in (latency, savina) if p]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(11, 4.8 * len(panels)), squeeze=False, layout="constrained"
    )
    i = 0
    if latency:
        ax = axes[i][0]
        i += 1
        rows = [r for r in latency["rows"] if "samples_us" in r]
        colors = {"baseline": "#999999", "radon-actors": "#c0392b", "peer": "#2e86c1"}
        data = [[max(s, 0.01) for s in r["samples_us"]] for r in rows]
        parts = ax.violinplot(data, showmedians=True, showextrema=False)
        for body, r in zip(parts["bodies"], rows, strict=True):
            body.set_facecolor(colors[r["group"]])
            body.set_alpha(0.6)
        ax.set_yscale("log")
        ax.set_xticks(range(1, len(rows) + 1))
        ax.set_xticklabels([r["label"] for r in rows], rotation=25, ha="right", fontsize=8)
        ax.set_ylabel("ask round trip (us, log scale)")
        ax.set_title(
            "Ask round-trip distributions (the median run of each; grey: raw baselines, "
            "red: radon-actors, blue: peers; labels: p50 us)",
            fontsize=10,
        )
        for x, r in enumerate(rows, start=1):
            ax.annotate(f"{r['p50_us']:.1f}", (x, r["p50_us"]), fontsize=7, ha="left")
        ax.grid(axis="y", alpha=0.3)
    if savina:
        ax = axes[i][0]
        rows = savina["rows"]
        names = list(dict.fromkeys(r["benchmark"] for r in rows))
        frameworks = savina["frameworks"]
        width = 0.8 / max(1, len(frameworks))
        palette = ["#c0392b", "#2e86c1", "#27ae60"]
        for k, fw in enumerate(frameworks):
            vals = []
            for name in names:
                r = next((r for r in rows if r["benchmark"] == name and r["framework"] == fw), None)
                vals.append(r["median_ms"] if r else 0)
            xs = [j + k * width for j in range(len(names))]
            ax.bar(xs, vals, width, label=fw, color=palette[k % len(palette)])
        ax.set_xticks([j + width * (len(frameworks) - 1) / 2 for j in range(len(names))])
        ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("median time (ms, log scale)")
        ax.set_title("Savina benchmarks (median of sanitized runs; lower is better)", fontsize=10)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
