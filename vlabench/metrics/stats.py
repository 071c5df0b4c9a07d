"""Statistics for success rates and speedups: intervals that stay honest at 0%, 100% and small n,
McNemar's exact test on paired episodes, and a percentile bootstrap of mean latencies.

The bootstrap resamples calls (i.i.d. units) or whole episodes (`Clusters`: the cluster bootstrap,
Davison & Hinkley 1997, "Bootstrap Methods and their Application", sect. 3.8; Field & Welsh 2007,
"Bootstrapping clustered data", JRSS-B 69(3)): calls of one episode share a scene, a trajectory
and a pruner's history, so resampling them one by one understates the interval of their mean.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

try:   # the function scipy.stats.binom.cdf calls (scipy >= 1.12), without importing scipy.stats (~0.5 s)
    from scipy.special._ufuncs import _binom_cdf
except ImportError:   # pragma: no cover - other scipy versions
    def _binom_cdf(k: float, n: float, p: float) -> float:
        from scipy import stats

        return stats.binom.cdf(k, n, p)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    Returns (nan, nan) for n == 0. Matches statsmodels' `proportion_confint(method="wilson")`.
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must lie in [0, n={n}]")
    z = float(ndtri(0.5 + confidence / 2))   # scipy.stats.norm.ppf
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts.

    `b`: pairs where only the first condition succeeded, `c`: only the second. Under H0 the b
    discordant outcomes follow Binomial(b + c, 1/2); p = min(1, 2 * P[X <= min(b, c)]). Same as
    statsmodels' `mcnemar(table, exact=True)`. No discordant pairs gives p = 1.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    return float(min(1.0, 2.0 * _binom_cdf(float(min(b, c)), float(b + c), 0.5)))


def paired_counts(first: Sequence[int], second: Sequence[int]) -> tuple[int, int]:
    """Discordant counts (b: first only, c: second only) of paired 0/1 outcomes."""
    a = np.asarray(first, dtype=int)
    s = np.asarray(second, dtype=int)
    if a.shape != s.shape:
        raise ValueError(f"paired outcomes differ in length: {a.shape} vs {s.shape}")
    return int(((a == 1) & (s == 0)).sum()), int(((a == 0) & (s == 1)).sum())


CI_UNITS = ("episode", "call")   # what a bootstrap resamples: whole episodes, or single calls


@dataclass(frozen=True)
class Clusters:
    """A sample of calls grouped into clusters (episodes): each cluster's sum and call count.

    Its bootstrap resamples clusters; a resample's mean is the sum of the drawn clusters' sums
    over the sum of their counts (a ratio estimator), so the point estimate stays the plain
    mean over calls. One call per cluster gives the call bootstrap's draws exactly."""

    sums: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, labels: np.ndarray) -> Clusters:
        """Group `values` by `labels` (one label per value; clusters in sorted label order)."""
        values = np.asarray(values, dtype=float)
        keys, inverse = np.unique(np.asarray(labels), return_inverse=True)
        if values.shape != inverse.shape:
            raise ValueError(f"{values.size} values but {inverse.size} cluster labels")
        return cls(np.bincount(inverse, weights=values, minlength=keys.size),
                   np.bincount(inverse, minlength=keys.size).astype(float))

    @property
    def size(self) -> int:
        return int(self.sums.size)

    def mean(self) -> float:
        return float(self.sums.sum() / self.counts.sum()) if self.size else math.nan

    def digest(self) -> bytes:
        return hashlib.sha1(b"clusters" + np.ascontiguousarray(self.sums).tobytes()
                            + np.ascontiguousarray(self.counts).tobytes()).digest()


Sample = np.ndarray | Clusters


def _as_sample(s: Sample | Sequence[float]) -> Sample:
    return s if isinstance(s, Clusters) else np.asarray(s, dtype=float)


def bootstrap_interval(
    samples: Sequence[Sample],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic of the samples' means.

    Each sample is resampled with replacement independently (e.g. the latencies of a baseline
    run and of a pruned run): an array by its values (calls), `Clusters` by cluster (episodes);
    `statistic` maps the list of per-sample bootstrap means (arrays of length n_boot) to n_boot
    values, e.g. `ratio_of_means`. Deterministic for a given `seed`. Returns (nan, nan) when a
    sample is empty. The resample means of a prefix of `samples` already seen (a baseline
    shared by many runs) are reused, bit-identical.
    """
    arrays = [_as_sample(s) for s in samples]
    if not arrays or any(a.size == 0 for a in arrays):
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = _PREFIXES.means(arrays, n_boot, seed, rng)
    values = np.asarray(statistic(means), dtype=float)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def _boot_means(a: Sample, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of n_boot resamples of `a`, drawn BOOT_CHUNK indices at a time: the draws are those
    of one rng.integers(0, a.size, (n_boot, a.size)) call (the generator buffers its 32-bit
    halves across calls), in pieces that stay in the CPU cache. Clusters: the drawn clusters'
    summed sums over their summed counts."""
    out = np.empty(n_boot)
    step = max(1, BOOT_CHUNK // a.size)
    # equal clusters: every resample holds a.size * count calls (exact in floats, as the sum is)
    calls = a.counts[0] * a.size if isinstance(a, Clusters) and (a.counts == a.counts[0]).all() else None
    for i in range(0, n_boot, step):
        k = min(step, n_boot - i)
        idx = rng.integers(0, a.size, (k, a.size))
        if isinstance(a, Clusters):
            out[i:i + k] = a.sums[idx].sum(axis=1) / (calls if calls is not None else a.counts[idx].sum(axis=1))
        else:
            out[i:i + k] = a[idx].mean(axis=1)
    return out


BOOT_CHUNK = 1 << 16


class _PrefixCache:
    """Bootstrap means of sample prefixes and the generator state after them, by content.

    bootstrap_interval([base, run_i]) draws `base`'s resamples first from a fresh generator, so
    they (and the state they leave) are the same for every run against that baseline: computed
    once. Bounded (least recently used first out); keys are sha1 digests of the samples."""

    def __init__(self, size: int = 2048):
        self.size = size
        self.store: OrderedDict[tuple, tuple[np.ndarray, dict]] = OrderedDict()

    def means(self, arrays: list[Sample], n_boot: int, seed: int,
              rng: np.random.Generator) -> list[np.ndarray]:
        key: tuple = (n_boot, seed)
        out = []
        for a in arrays:
            digest = a.digest() if isinstance(a, Clusters) else \
                hashlib.sha1(np.ascontiguousarray(a).tobytes()).digest()
            key += (a.size, digest)
            hit = self.store.get(key)
            if hit is None:
                hit = (_boot_means(a, n_boot, rng), rng.bit_generator.state)
                hit[0].setflags(write=False)   # shared by every caller of this prefix
                self.store[key] = hit
                if len(self.store) > self.size:
                    self.store.popitem(last=False)
            else:
                self.store.move_to_end(key)
                rng.bit_generator.state = hit[1]
            out.append(hit[0])
        return out


_PREFIXES = _PrefixCache()


def paired_ratio_draws(num: Sample, den: Sample, n_boot: int = 1000, seed: int = 0,
                       floor: float = 1e-12) -> np.ndarray:
    """n_boot bootstrap draws of mean(num) / mean(den) over pairs resampled together: two
    arrays of paired calls, or two `Clusters` of the same episodes (equal counts) whose episodes
    are drawn together. The denominator's resample means are floored at `floor`."""
    num, den = _as_sample(num), _as_sample(den)
    if num.size != den.size:
        raise ValueError(f"paired samples differ in size: {num.size} vs {den.size}")
    if isinstance(num, Clusters) != isinstance(den, Clusters) or (
            isinstance(num, Clusters) and not np.array_equal(num.counts, den.counts)):
        raise ValueError("paired clusters must hold the same calls (equal counts per cluster)")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num.size, (n_boot, num.size))
    if isinstance(num, Clusters):
        n = num.counts[idx].sum(1)
        return (num.sums[idx].sum(1) / n) / np.maximum(den.sums[idx].sum(1) / n, floor)
    return num[idx].mean(1) / np.maximum(den[idx].mean(1), floor)


def ratio_of_means(means: list[np.ndarray]) -> np.ndarray:
    """means[0] / means[1]: the speedup of a run (1) over its baseline (0)."""
    return np.asarray(means[0]) / np.asarray(means[1])


def mean_of_ratios(means: list[np.ndarray]) -> np.ndarray:
    """Average of means[2i] / means[2i+1] over pairs (baseline_i, run_i): mean speedup."""
    return np.mean([ratio_of_means(means[i:i + 2]) for i in range(0, len(means), 2)], axis=0)
