"""Figures (matplotlib, Agg backend; each saved as PNG and SVG).

- success rate vs retention ratio per method (like VLA-Pruner Fig. 4), one panel per suite;
- speedup vs success rate, one point per method, Pareto front marked, one panel per suite;
- per-task success bars with Wilson 95% intervals, one figure per model and suite.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.metrics.stats import wilson_interval
from vlabench.report import cells
from vlabench.report.cells import Col
from vlabench.report.grid import method_label
from vlabench.report.runs import Run, RunSet


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)


def _save(fig: Any, out: Path, stem: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{_slug(stem)}.png"
    fig.savefig(png, dpi=120, bbox_inches="tight")
    fig.savefig(png.with_suffix(".svg"), bbox_inches="tight")
    _plt().close(fig)
    return png


def _panels(n: int) -> tuple[Any, list[Any]]:
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = _plt().subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False,
                                layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _sr_err(run: Run) -> tuple[float, list[float]]:
    o = cells.own(run, Col("", run.suite))
    lo, hi = wilson_interval(o.k, o.n)
    return o.sr, [max(0.0, o.sr - 100 * lo), max(0.0, 100 * hi - o.sr)]


def sr_vs_retention(rs: RunSet, model: str, out: Path) -> Path | None:
    runs = [r for r in rs.runs if r.model == model]
    if not any(r.retention is not None for r in runs):
        return None
    suites = sorted({r.suite for r in runs if r.retention is not None})
    fig, axes = _panels(len(suites))
    for ax, suite in zip(axes, suites, strict=True):
        base, _ = rs.baseline(model, suite)
        if base is not None:
            ax.axhline(_sr_err(base)[0], color="grey", ls="--", lw=1, label="vanilla")
        series: dict[str, list[Run]] = {}
        for r in runs:
            if r.suite == suite and r.retention is not None:
                series.setdefault(method_label(r.method._replace(retention=None)), []).append(r)
        for label, rr in sorted(series.items()):
            rr.sort(key=lambda r: r.retention or 0)
            xs = [100 * (r.retention or 0) for r in rr]
            ys, errs = zip(*(_sr_err(r) for r in rr), strict=True)
            ax.errorbar(xs, ys, yerr=np.array(errs).T, marker="o", capsize=3, label=label)
        ax.set(title=suite, xlabel="visual tokens retained (%)", ylabel="success rate (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{model}: success rate vs retention (95% Wilson intervals)")
    return _save(fig, out, f"sr_vs_retention-{model}")


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both speedup (x) and success (y)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def speedup_scatter(rs: RunSet, model: str, out: Path) -> Path | None:
    suites = sorted({r.suite for r in rs.runs if r.model == model and rs.baseline(model, r.suite)[0]})
    if not suites:
        return None
    fig, axes = _panels(len(suites))
    for ax, suite in zip(axes, suites, strict=True):
        base, _ = rs.baseline(model, suite)
        pts, labels = [], []
        for r in [r for r in rs.runs if r.model == model and r.suite == suite]:
            m = cells.metrics(r, base, Col("", suite))
            if math.isnan(m["speedup"]):
                continue
            pts.append((m["speedup"], m["success_rate"]))
            labels.append(method_label(r.method))
            ax.errorbar(m["speedup"], m["success_rate"], capsize=3, marker="o",
                        yerr=[[max(0.0, m["success_rate"] - m["sr_ci_low"])],
                              [max(0.0, m["sr_ci_high"] - m["success_rate"])]])
            ax.annotate(labels[-1], pts[-1], fontsize=7, xytext=(4, 4), textcoords="offset points")
        front = pareto_front(pts)
        if front:
            ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "r--", lw=1, label="Pareto front")
            ax.legend(fontsize=7)
        ax.set(title=suite, xlabel="speedup vs vanilla (×)", ylabel="success rate (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{model}: speedup vs success rate")
    return _save(fig, out, f"pareto-{model}")


def task_bars(rs: RunSet, model: str, suite: str, out: Path) -> Path | None:
    runs = sorted([r for r in rs.runs if r.model == model and r.suite == suite],
                  key=lambda r: (r.pruner != "none", r.pruner, r.retention or 0, r.variant))
    if not runs:
        return None
    tasks = sorted({int(t) for r in runs for t in r.episodes["task_id"]})
    fig, ax = _plt().subplots(figsize=(max(6.0, 0.6 * len(tasks) * max(1, len(runs)) ** 0.5 + 2), 4.0),
                              layout="constrained")
    width = 0.8 / len(runs)
    for i, r in enumerate(runs):
        g = r.episodes.groupby("task_id")["success"].agg(["sum", "count"]).reindex(tasks)
        ys, lo, hi = [], [], []
        for k, n in zip(g["sum"].fillna(0), g["count"].fillna(0), strict=True):
            a, b = wilson_interval(int(k), int(n)) if n else (math.nan, math.nan)
            y = 100 * k / n if n else math.nan
            ys.append(y)
            lo.append(max(0.0, y - 100 * a))
            hi.append(max(0.0, 100 * b - y))
        xs = np.arange(len(tasks)) + (i - (len(runs) - 1) / 2) * width
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=method_label(r.method))
    ax.set_xticks(np.arange(len(tasks)), [str(t) for t in tasks])
    ax.set(xlabel="task id", ylabel="success rate (%)", ylim=(0, 105),
           title=f"{model} on {suite}: per-task success (95% Wilson intervals)")
    ax.legend(fontsize=7, ncol=min(4, len(runs)), loc="upper center", bbox_to_anchor=(0.5, -0.15))
    return _save(fig, out, f"tasks-{model}-{suite}")


def make_plots(rs: RunSet, out: Path) -> list[Path]:
    """All figures for a RunSet; returns the PNG paths (each has an SVG beside it)."""
    paths: list[Path | None] = []
    for model in rs.models():
        paths.append(sr_vs_retention(rs, model, out))
        paths.append(speedup_scatter(rs, model, out))
        for suite in sorted({r.suite for r in rs.runs if r.model == model}):
            paths.append(task_bars(rs, model, suite, out))
    return [p for p in paths if p is not None]

