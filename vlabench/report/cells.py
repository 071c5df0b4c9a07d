"""Metrics of one run on one table column (a suite, or some tasks of it), against vanilla.

Definitions (the same for every table):
- success_rate: % of finished episodes that succeeded, with its 95% Wilson interval.
- latency_ms / p50 / p95: lat_total_ms of real model calls (source "model"), warm-up excluded.
- step latency: per policy call, warm-up excluded; steps served without a model call (e.g. by
  SP-VLA's extrapolator) count with their own latency (0 when not recorded). speedup =
  vanilla's mean step latency / this run's, with a bootstrap interval that resamples episodes
  (default; each a cluster of calls: stats.Clusters) or calls (`report --ci-unit call`); for
  methods that call the model at every step it is the ratio of mean model-call latencies.
- flops: mean FLOPs per policy call, warm-up included (0 for steps without a model call);
  flops_pct vs vanilla. pruned_tokens: mean tokens_in - tokens_kept of model calls;
  pruning_rate: 100 * their sum / the sum of tokens_in (SP-VLA Tables 9/11 "Pruning Rate").
- intuitive_rate: % of policy calls (warm-up excluded) served without a model call (SP-VLA's
  "Intuitive Action Rate"). hz = 1000 / step latency (policy calls per second of policy time,
  SP-VLA Tables 5-7 "Frequency"), latency_s = step latency in seconds.
- mem_gb: the largest calls.csv `mem_peak_mb` of model calls (warm-up excluded) / 1024 (what
  `mem_kind` says: "cuda" = torch.cuda.max_memory_allocated per call, "rss" = CPU peak RSS
  delta); cuda_ms: mean `cuda_ms` of model calls. NaN (n/a) where calls.csv lacks them.
- rel_acc: 100 * success_rate / vanilla's success_rate.
- McNemar's exact test on the (task, episode) pairs both runs finished.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vlabench.metrics.stats import (
    Clusters, Sample, bootstrap_interval, mcnemar_exact, mean_of_ratios, paired_counts,
    ratio_of_means, wilson_interval,
)
from vlabench.report import replay
from vlabench.report.runs import Run, episode_keys, numbers

NOISE_ALPHA = 0.05
N_BOOT = 1000
RESAMPLED = {"episode": "episodes resampled", "call": "calls resampled"}   # what each of CI_UNITS says

# The FLOPs columns' accounting (issue 21 item 5): ours is `executed`; each paper counted its own way
# (docs/methods/vla-pruner.md "FLOPs accounting"; `vlabench bench bench.flops=paper|executed|both`).
FLOPS_EXECUTED_NOTE = ("FLOPs: executed accounting (calls.csv flops: every matrix product of the policy call, "
                       "vision towers, LLM prefill and decode, action head, 2 FLOPs per multiply-add), mean per "
                       "call as % of vanilla's")
FLOPS_PAPER_NOTES = {
    "vla-pruner": "the paper's FLOPs count the LLM's prefill layers only, C(n) = 4nd²+2n²d+3ndm multiply-adds "
                  "per layer (its code's counter; `vlabench bench bench.flops=paper`), so vision and heads do not "
                  "dilute its %; its OpenVLA-OFT column fits no fixed token layout",
    "specprune-vla": "the paper's FLOPs are App. 10.1's estimate from token counts (43% = 2/32 + 30/32 × 0.48 "
                     "× 0.81), not a count; `vlabench bench bench.flops=paper` gives the LLM prefill accounting",
    "sp-vla": "the paper does not say how it counted FLOPs",
}


def flops_note(paper: str | None = None) -> str:
    """The note a FLOPs column carries: our accounting, and how `paper` counted its own."""
    extra = FLOPS_PAPER_NOTES.get(paper or "")
    return FLOPS_EXECUTED_NOTE + (f"; {extra}" if extra else "")


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


@dataclass(frozen=True)
class Col:
    """A table column: a suite, or the tasks of a suite whose name matches `include`."""

    header: str
    suite: str
    task: str = ""                      # the reference CSV's task key
    include: tuple[str, ...] = ()       # any of these (normalised) substrings ...
    exclude: tuple[str, ...] = ()       # ... and none of these

    def tasks(self, eps: pd.DataFrame) -> pd.Series:
        """Mask of the episodes that belong to this column."""
        if not self.include:
            return pd.Series(True, index=eps.index)
        names = eps["task_name"].map(_norm)
        keep = names.map(lambda n: any(i in n for i in self.include)
                         and not any(x in n for x in self.exclude))
        return keep.astype(bool)


@dataclass
class Own:
    """A run's own figures on a column."""

    n: int
    k: int
    pair_keys: np.ndarray     # episode_keys of the finished episodes
    outcomes: np.ndarray      # their success (0/1)
    lat: np.ndarray           # model-call latencies (warm-up excluded)
    step_lat: np.ndarray      # per policy call latencies (warm-up excluded)
    step_clusters: Clusters   # step_lat summed and counted per episode (the bootstrap's unit)
    flops: float
    pruned_tokens: float
    pruning_rate: float = math.nan
    intuitive_rate: float = math.nan
    mem_mb: float = math.nan
    mem_kind: str = ""
    cuda_ms: float = math.nan

    @property
    def sr(self) -> float:
        return 100.0 * self.k / self.n if self.n else math.nan

    def step_sample(self, unit: str) -> Sample:
        """step_lat as the bootstrap resamples it: by episode, or call by call."""
        return self.step_clusters if unit == "episode" else self.step_lat


def _own(run: Run, col: Col) -> Own:
    if col.include:
        eps = run.episodes[col.tasks(run.episodes)]
        calls = run.calls[np.isin(episode_keys(run.calls), episode_keys(eps))]
    else:
        eps, calls = run.episodes, run.calls
    every = (calls["source"] == "model").to_numpy(bool)
    live = calls["warmup"].to_numpy() != 1   # warm-up calls count for FLOPs, not for latency
    timed = live & (not replay.batched(run))   # batch > 1: no paper latency
    tmodel = timed & every
    lat_all = calls["lat_total_ms"].to_numpy(float)
    lat = _finite(lat_all[tmodel])
    step = lat_all[timed]
    step = np.where(~every[timed] & np.isnan(step), 0.0, step)   # served calls: their latency or 0
    stepped = ~np.isnan(step)
    step_lat = step[stepped]
    flops = calls["flops"].to_numpy(float)
    flops = _finite(np.where(~every & np.isnan(flops), 0.0, flops))
    tokens_in = calls["tokens_in"].to_numpy(float)[every]
    pruned = tokens_in - calls["tokens_kept"].to_numpy(float)[every]
    counted = ~np.isnan(pruned)
    pruned, tokens_in = pruned[counted], tokens_in[counted].sum()
    mem = _column(calls, "mem_peak_mb", tmodel)
    kinds = sorted({str(k) for k in pd.unique(calls["mem_kind"][live & every])} - {"", "nan"}) \
        if "mem_kind" in calls else []
    return Own(
        n=len(eps), k=int(eps["success"].sum()),
        pair_keys=episode_keys(eps), outcomes=eps["success"].to_numpy(),
        lat=lat, step_lat=step_lat, step_clusters=Clusters.of(step_lat, episode_keys(calls)[timed][stepped]),
        flops=float(flops.mean()) if len(flops) else math.nan,
        pruned_tokens=float(pruned.mean()) if len(pruned) else math.nan,
        pruning_rate=100 * float(pruned.sum()) / tokens_in if tokens_in else math.nan,
        intuitive_rate=100 * float((live & ~every).sum()) / live.sum() if live.any() else math.nan,
        mem_mb=float(mem.max()) if mem.size else math.nan, mem_kind="/".join(kinds),
        cuda_ms=_mean(_column(calls, "cuda_ms", tmodel)),
    )


def _finite(a: np.ndarray) -> np.ndarray:
    return a[~np.isnan(a)]


def _column(calls: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """The numbers of an optional calls.csv column in `rows` (empty where the records lack it)."""
    if name not in calls:
        return np.empty(0)
    return _finite(numbers(calls[name])[rows])


def own(run: Run, col: Col) -> Own:
    """A run's figures on a column (cached on the run)."""
    if col not in run.cache:
        run.cache[col] = _own(run, col)
    return run.cache[col]


def _mean(a: np.ndarray) -> float:
    return float(a.mean()) if a.size else math.nan


def _q(a: np.ndarray, q: float) -> float:
    return float(np.quantile(a, q)) if a.size else math.nan


def mcnemar(base: Own, new: Own) -> tuple[float, int]:
    """(p-value, number of pairs) on the (task, episode) pairs both runs finished."""
    _, ia, ib = np.intersect1d(base.pair_keys, new.pair_keys, assume_unique=True,
                               return_indices=True)   # (task, episode) is unique in episodes.csv
    if not ia.size:
        return math.nan, 0
    return mcnemar_exact(*paired_counts(base.outcomes[ia], new.outcomes[ib])), int(ia.size)


def noise_mark(p: float, delta: float) -> str:
    """'≈' within noise (p >= 0.05), '▲'/'▼' significantly better/worse, '' when untested."""
    if p is None or math.isnan(p):
        return ""
    if p >= NOISE_ALPHA:
        return "≈"
    return "▲" if delta > 0 else "▼"


def metrics(run: Run, base: Run | None, col: Col, boot: bool = False,
            unit: str = "episode") -> dict[str, float]:
    """Every metric the tables use, in the reference CSV's units and names; with `boot` the
    speedup's bootstrap interval, resampling `unit`s (CI_UNITS)."""
    o = own(run, col)
    lo, hi = wilson_interval(o.k, o.n)
    m: dict[str, float] = {
        "episodes": o.n, "successes": o.k, "success_rate": o.sr,
        "sr_ci_low": 100 * lo, "sr_ci_high": 100 * hi,
        "latency_ms": _mean(o.lat), "latency_p50_ms": _q(o.lat, 0.5),
        "latency_p95_ms": _q(o.lat, 0.95), "step_latency_ms": _mean(o.step_lat),
        "flops_t": o.flops / 1e12, "pruned_tokens": o.pruned_tokens,
        "pruning_rate": o.pruning_rate, "intuitive_rate": o.intuitive_rate,
        "mem_gb": o.mem_mb / 1024, "cuda_ms": o.cuda_ms,
        "hz": 1000 / _mean(o.step_lat) if o.step_lat.size and o.step_lat.mean() > 0 else math.nan,
        "latency_s": _mean(o.step_lat) / 1000,
    }
    if base is None:
        replay.apply(run, base, col, m, boot, unit)
        return m
    b = own(base, col)
    speed = _mean(b.step_lat) / _mean(o.step_lat) if o.step_lat.size and b.step_lat.size else math.nan
    p, npairs = mcnemar(b, o)
    m.update(
        speedup=speed, flops_pct=100 * o.flops / b.flops if b.flops else math.nan,
        rel_acc=100 * o.sr / b.sr if b.sr else math.nan, d_sr=o.sr - b.sr,
        mcnemar_p=p, pairs=npairs,
    )
    if boot:
        m["speedup_ci_low"], m["speedup_ci_high"] = bootstrap_interval(
            [b.step_sample(unit), o.step_sample(unit)], ratio_of_means, n_boot=N_BOOT)
    replay.apply(run, base, col, m, boot, unit)   # a batch-1 replay's figures, where the run has one
    return m


def mean_speedup_ci(pairs: list[tuple[Run, Run]], cols: list[Col], unit: str = "episode") -> tuple[float, float]:
    """Bootstrap interval of the average speedup over columns ((base, run) per column), each
    column's latencies resampled by `unit` (CI_UNITS)."""
    samples: list[Sample] = []
    for (base, run), col in zip(pairs, cols, strict=True):
        pair = replay.step_pair(run, col, unit)   # the replay's own baseline, on the same observations
        samples += list(pair) if pair is not None else [own(base, col).step_sample(unit),
                                                        own(run, col).step_sample(unit)]
    return bootstrap_interval(samples, mean_of_ratios, n_boot=N_BOOT)


def average(values: list[float]) -> tuple[float, bool]:
    """Mean of the finite values, and whether some were missing."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return (float(np.mean(finite)) if finite else math.nan), len(finite) < len(values)
