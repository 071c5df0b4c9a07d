"""Figures (matplotlib, Agg backend; each saved as PNG and SVG, caption inside both).

- success rate vs retention per method (like VLA-Pruner Fig. 4), one panel per suite; a method
  without a fixed ratio (SpecPrune-VLA, VLA-Cache ...) at its measured share of visual tokens
  kept (1 - calls.csv pruning rate), hollow; one the calls do not measure is named in the caption;
- success rate vs speedup (the Pareto plot): marker per method, colour per retention, 95%
  intervals on both axes, the Pareto front dashed, one panel per suite;
- both only for models with a pruned run (a policy without pruning, e.g. the oracle, has none);
  with `--with-reference` the papers' points beside ours (hollow, grey edge, plotref.py);
- per-task success: one panel per method (horizontal bars, task names on the axis, vanilla's
  rate ticked), or a task x method heat map when a suite has more than HEATMAP_TASKS tasks.

Suites appear in the papers' order with their papers' names (labels.py); the `*_figure`
functions return the matplotlib Figure (tests inspect it), the others save it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.metrics.stats import wilson_interval
from vlabench.report import cells
from vlabench.report.cells import Col
from vlabench.report.figstyle import (
    RC,
    Styles,
    fit,
    legend,
    method_key,
    panels,
    plt,
    save,
)
from vlabench.report.grid import method_label, model_name
from vlabench.report.labels import suite_name, suite_order, task_labels, wrap
from vlabench.report.plotref import published
from vlabench.report.reference import Reference
from vlabench.report.runs import Run, RunSet

HEATMAP_TASKS = 24
VANILLA_TICK = "red"
Figure = tuple[Any, str, str]  # (matplotlib figure, title, caption)


def _sr_err(run: Run) -> tuple[float, list[float]]:
    o = cells.own(run, Col("", run.suite))
    lo, hi = wilson_interval(o.k, o.n)
    return o.sr, [max(0.0, o.sr - 100 * lo), max(0.0, 100 * hi - o.sr)]


def _suites(names: list[str]) -> str:
    return ", ".join(suite_name(s) for s in names)


def _order(runs: list[Run]) -> list[Run]:
    """Vanilla first, then by method and decreasing retention."""
    return sorted(runs, key=lambda r: (r.pruner != "none", method_key(r), -(r.retention or 2.0),
                                       r.name))


def kept_share(run: Run) -> float:
    """The measured share of visual tokens kept (1 - pruning rate of the model calls); NaN
    when the calls record no token counts."""
    rate = cells.own(run, Col("", run.suite)).pruning_rate
    return math.nan if math.isnan(rate) else 1.0 - rate / 100.0


def _share(run: Run) -> float:
    return run.retention if run.retention is not None else kept_share(run)


def retention_figure(rs: RunSet, model: str, ref: Reference | None = None) -> Figure | None:
    runs = [r for r in rs.runs if r.model == model]
    if not any(r.retention is not None for r in runs):
        return None
    unfixed = [r for r in runs if r.pruner != "none" and r.retention is None]
    unplaced = sorted({method_key(r) for r in unfixed if not kept_share(r) > 0})
    pruned = [r for r in runs if r.retention is not None] + [r for r in unfixed if kept_share(r) > 0]
    suites = suite_order(r.suite for r in pruned)
    styles = Styles.of(runs)
    colours = {m: plt().get_cmap("tab10")(i % 10) for i, m in enumerate(styles.markers)}
    fig, axes = panels(len(suites), 2, (5.0, 3.6))
    for ax, suite in zip(axes, suites, strict=True):
        for base in {id(b): b for b in (rs.baseline(model, suite, r.protocol)[0]
                                         for r in pruned if r.suite == suite) if b}.values():
            ax.axhline(_sr_err(base)[0], color="black", ls="--", lw=1)
        series: dict[str, list[Run]] = {}
        for r in pruned:
            if r.suite == suite:
                series.setdefault(method_key(r), []).append(r)
        for n, (key, rr) in enumerate(sorted(series.items())):
            rr.sort(key=_share)
            ys, errs = zip(*(_sr_err(r) for r in rr), strict=True)
            dodge = 2 ** (0.04 * (n - (len(series) - 1) / 2))  # bars of one retention side by side
            hollow = all(r.retention is None for r in rr)   # placed by its measured share
            line = ax.errorbar([100 * _share(r) * dodge for r in rr], ys, yerr=np.array(errs).T,
                               marker=styles.markers[key], color=colours[key], capsize=3, ms=6,
                               mfc="white" if hollow else colours[key], ls=":" if hollow else "-")
            line.lines[0].set_gid(key)
            for r in rr:
                for _, y, _ in published(ref, r):
                    ax.plot(100 * _share(r) * dodge, y, ls="", marker=styles.markers[key], ms=6,
                            mfc="none", mec="0.45", mew=1.0, gid=f"paper|{key}|{r.retention}")
        rets = sorted({100 * _share(r) for r in pruned if r.suite == suite})
        ax.set_xscale("log", base=2)
        ax.set_xticks(_spread(rets), [f"{v:.3g}" for v in _spread(rets)])
        ax.minorticks_off()
        ax.set(title=suite_name(suite), xlabel="visual tokens retained (%)",
               ylabel="success rate (%)")
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    shown = sorted({method_key(r) for r in pruned})
    handles = [Line2D([], [], color="black", ls="--", lw=1)] + [
        Line2D([], [], marker=styles.markers[k], color=colours[k]) for k in shown]
    labels = ["Vanilla (no pruning)", *shown]
    drawn_ref = ref is not None and any(published(ref, r) for r in pruned)
    if drawn_ref:
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="0.45"))
        labels.append("published (paper)")
    legend(fig, handles, labels, [])
    title = f"{model_name(model)}: success rate vs visual tokens retained"
    fig.suptitle(title)
    fixed = sorted({method_key(r) for r in unfixed if kept_share(r) > 0})
    caption = (f"Success rate of {model_name(model)} (%, bars: 95% Wilson intervals) against "
               f"the share of visual tokens each method keeps, one panel per suite "
               f"({_suites(suites)}); the dashed line is vanilla (no pruning), one marker and "
               f"colour per method."
               + (f" Without a fixed ratio, {', '.join(fixed)} (hollow, dotted) stand at the share of "
                  f"visual tokens their calls kept (measured)." if fixed else "")
               + (f" Not shown: {', '.join(unplaced)}, which has no fixed ratio and whose calls record "
                  f"no kept-token counts." if unplaced else "")
               + (" Hollow grey markers: the papers' published success rates (--with-reference)."
                  if drawn_ref else ""))
    return fit(fig), title, caption


def _spread(values: list[float], gap: float = 0.35) -> list[float]:
    """Tick positions on a log2 axis at least `gap` octaves apart (labels must not collide)."""
    kept: list[float] = []
    for v in sorted(values):
        if v > 0 and (not kept or math.log2(v) - math.log2(kept[-1]) >= gap):
            kept.append(v)
    return kept


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both speedup (x) and success (y)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _err(value: float, low: float | None, high: float | None) -> list[list[float]] | None:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return None
    return [[max(0.0, value - low)], [max(0.0, high - value)]]


def pareto_figure(rs: RunSet, model: str, ref: Reference | None = None) -> Figure | None:
    runs = [r for r in rs.runs if r.model == model]
    if all(r.pruner == "none" for r in runs):   # nothing pruned: no trade-off to show
        return None
    bases = {r.name: rs.baseline(model, r.suite, r.protocol)[0] for r in runs}
    suites = suite_order(r.suite for r in runs if bases[r.name] is not None)
    if not suites:
        return None
    styles = Styles.of(runs)
    fig, axes = panels(len(suites), 2, (5.0, 4.0))
    with_ci = drawn_ref = False
    for ax, suite in zip(axes, suites, strict=True):
        pts = []
        for r in _order([r for r in runs if r.suite == suite and bases[r.name] is not None]):
            base = bases[r.name]
            m = cells.metrics(r, base, Col("", suite), boot=r is not base, unit=rs.ci_unit)
            if math.isnan(m["speedup"]) or math.isnan(m["success_rate"]):
                continue
            x, y = m["speedup"], m["success_rate"]
            xerr = _err(x, m.get("speedup_ci_low"), m.get("speedup_ci_high"))
            with_ci = with_ci or xerr is not None
            bars = ax.errorbar(x, y, xerr=xerr, yerr=_err(y, m["sr_ci_low"], m["sr_ci_high"]),
                               fmt=styles.marker(r), color=styles.colour(r), mec="black", mew=0.5,
                               ms=10 if r.pruner == "none" else 7, elinewidth=0.8, capsize=2,
                               zorder=3)
            bars.lines[0].set_gid(f"{method_key(r)}|{r.retention}")
            for b in bars.lines[2]:
                b.set_alpha(0.55)
            pts.append((x, y))
            for _, py, px in published(ref, r):
                if not math.isnan(px):
                    ax.plot([x, px], [y, py], color="0.7", lw=0.6, zorder=1)   # ours -> paper's
                    ax.plot(px, py, ls="", marker=styles.marker(r), ms=7, mfc="none",
                            mec=styles.colour(r), mew=1.2, zorder=3, gid=f"paper|{method_key(r)}|{r.retention}")
                    drawn_ref = True
        front = pareto_front(pts)
        if len(front) > 1:
            ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], color="0.3",
                    ls="--", lw=1, zorder=2)
        ax.axvline(1.0, color="0.6", lw=0.8, ls=":", zorder=1)
        ax.set(title=suite_name(suite), xlabel="speedup over vanilla (×)",
               ylabel="success rate (%)")
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    handles, labels, heads = styles.legend_handles()
    handles.append(Line2D([], [], color="0.3", ls="--", lw=1))
    labels.append("Pareto front")
    if drawn_ref:
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="0.3"))
        labels.append("published (paper)")
    legend(fig, handles, labels, heads)
    title = f"{model_name(model)}: success rate vs speedup"
    fig.suptitle(title)
    caption = (f"Success rate of {model_name(model)} against its speedup over vanilla (mean step "
               f"latency), one point per method and retention, one panel per suite "
               f"({_suites(suites)}). Marker: method; colour: share of visual tokens retained. Vertical bars: 95% "
               f"Wilson interval of the success rate"
               + (f"; horizontal bars: 95% bootstrap interval of the speedup ({cells.RESAMPLED[rs.ci_unit]})"
                  if with_ci else "")
               + ". Dashed: the Pareto front (no other point is both faster and more successful)."
               + (" Hollow markers joined to ours by a grey line: the papers' published points "
                  "(--with-reference; the suite's speedup, else the paper's per-model average)."
                  if drawn_ref else ""))
    return fit(fig), title, caption


def _task_rates(run: Run, tasks: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Success rate (%) per task and its Wilson error bars [[below], [above]] (nan: no episodes)."""
    g = run.episodes.groupby("task_id")["success"].agg(["sum", "count"]).reindex(tasks)
    ys, errs = [], []
    for k, n in zip(g["sum"].fillna(0), g["count"].fillna(0), strict=True):
        if not n:
            ys.append(math.nan)
            errs.append((0.0, 0.0))
            continue
        a, b = wilson_interval(int(k), int(n))
        y = 100 * k / n
        ys.append(y)
        errs.append((max(0.0, y - 100 * a), max(0.0, 100 * b - y)))
    return np.array(ys), np.array(errs).T


def _task_names(runs: list[Run]) -> dict[int, str]:
    names: dict[int, str] = {}
    for r in runs:
        for t, n in zip(r.episodes["task_id"], r.episodes["task_name"], strict=True):
            names.setdefault(int(t), str(n) if n and n != "nan" else f"task {t}")
    return dict(sorted(names.items()))


def tasks_figure(rs: RunSet, model: str, suite: str) -> Figure | None:
    runs = _order([r for r in rs.runs if r.model == model and r.suite == suite])
    if not runs:
        return None
    names = _task_names(runs)
    labels, template = task_labels(names)
    tasks = list(names)
    styles = Styles.of([r for r in rs.runs if r.model == model])
    title = f"{model_name(model)} on {suite_name(suite)}: success rate per task"
    what = f"Success rate of {model_name(model)} on each task of {suite_name(suite)}"
    shared = f" Task names are shortened; each reads “{template}”." if template else ""
    if len(tasks) > HEATMAP_TASKS:
        fig = _heatmap(runs, tasks, labels, template)
        fig.suptitle(title)
        return fit(fig), title, f"{what} (%), one column per method and retention.{shared}"
    groups: dict[str, list[Run]] = {}
    only_baselines = all(r.pruner == "none" for r in runs)   # then the baselines get the panel
    for r in runs:
        if r.pruner != "none" or only_baselines:
            groups.setdefault(method_key(r), []).append(r)
    size = max(len(g) for g in groups.values())
    fig, axes = panels(len(groups), 4, (3.4, (0.13 * size + 0.2) * len(tasks) + 1.2), sharey=True)
    ypos = np.arange(len(tasks))
    height = 0.8 / size
    ticked = False
    for ax, (key, group) in zip(axes, groups.items(), strict=True):
        for i, r in enumerate(group):
            ys, err = _task_rates(r, tasks)
            ax.barh(ypos + (i - (len(group) - 1) / 2) * height, np.nan_to_num(ys), height,
                    xerr=err, color=styles.colour(r), gid=method_label(r.method),
                    error_kw={"elinewidth": 0.6, "capsize": 1.5, "ecolor": "0.35"})
        for base in {id(b): b for b in (rs.baseline(model, suite, r.protocol)[0] for r in group)
                     if b is not None and b not in group}.values():
            ax.vlines(_task_rates(base, tasks)[0], ypos - 0.45, ypos + 0.45, color=VANILLA_TICK,
                      lw=1.8, zorder=3)
            ticked = True
        ax.set_title(key)
        ax.set_xlim(0, 105)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ypos, [labels[t] for t in tasks])
    axes[0].set_ylim(len(tasks) - 0.5, -0.5)
    for ax in axes:
        if ax.get_subplotspec().is_first_col() and template:
            ax.set_ylabel(wrap(template, 50))
        ax.set_xlabel("success rate (%)")
    from matplotlib.lines import Line2D

    handles, names_, heads = styles.legend_handles(with_vanilla=False, markers=False)
    if ticked:
        handles.append(Line2D([], [], color=VANILLA_TICK, lw=1.8))
        names_.append("Vanilla")
    legend(fig, handles, names_, heads)
    fig.suptitle(title)
    caption = (f"{what} (%, bars: 95% Wilson intervals), one panel per method, one bar colour "
               f"per retention" + (f"; {VANILLA_TICK} ticks mark vanilla's rate on the same task"
                                    if ticked else "") + f".{shared}")
    return fit(fig), title, caption


def _heatmap(runs: list[Run], tasks: list[int], labels: dict[int, str], template: str) -> Any:
    """Tasks (rows) x runs (columns), cells coloured and labelled by success rate."""
    grid = np.array([_task_rates(r, tasks)[0] for r in runs]).T
    fig, ax = plt().subplots(figsize=(2.6 + 0.5 * len(runs), 0.26 * len(tasks) + 2.2),
                             layout="constrained")
    im = ax.imshow(grid, aspect="auto", cmap="RdYlGn", vmin=0, vmax=100)
    for (i, j), v in np.ndenumerate(grid):
        if not math.isnan(v):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6,
                    color="white" if v < 15 or v > 85 else "black")
    ax.set_yticks(range(len(tasks)), [labels[t].replace("\n", " ") for t in tasks], fontsize=6)
    ax.set_xticks(range(len(runs)), [method_label(r.method) for r in runs], rotation=90)
    if template:
        ax.set_ylabel(template)
    fig.colorbar(im, ax=ax, label="success rate (%)", shrink=0.5)
    return fig


def sr_vs_retention(rs: RunSet, model: str, out: Path, ref: Reference | None = None) -> Path | None:
    made = retention_figure(rs, model, ref)
    return save(made[0], out, f"sr_vs_retention-{model}", *made[1:]) if made else None


def speedup_scatter(rs: RunSet, model: str, out: Path, ref: Reference | None = None) -> Path | None:
    made = pareto_figure(rs, model, ref)
    return save(made[0], out, f"pareto-{model}", *made[1:]) if made else None


def task_bars(rs: RunSet, model: str, suite: str, out: Path) -> Path | None:
    made = tasks_figure(rs, model, suite)
    return save(made[0], out, f"tasks-{model}-{suite}", *made[1:]) if made else None


def make_plots(rs: RunSet, out: Path, ref: Reference | None = None) -> list[Path]:
    """All figures for a RunSet (`ref`: draw the papers' points too); returns the PNG paths
    (each has an SVG beside it)."""
    paths: list[Path | None] = []
    with plt().rc_context(RC):
        for model in rs.models():
            paths.append(speedup_scatter(rs, model, out, ref))
            paths.append(sr_vs_retention(rs, model, out, ref))
            for suite in suite_order(r.suite for r in rs.runs if r.model == model):
                paths.append(task_bars(rs, model, suite, out))
    return [p for p in paths if p is not None]
