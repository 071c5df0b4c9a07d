"""The episode (cluster) bootstrap of mean latencies: resamples whole episodes, its resample mean
is the drawn episodes' summed latency over their summed call count, so the point estimate is the
plain mean over calls; with one call per episode it is the call bootstrap, draw for draw."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlabench.metrics import stats
from vlabench.metrics.stats import Clusters, bootstrap_interval, paired_ratio_draws, ratio_of_means


def _identity(means):
    return means[0]


def _episodes(rng: np.random.Generator, n_eps: int, calls: np.ndarray, mu: float, between: float,
              within: float) -> tuple[np.ndarray, np.ndarray]:
    """Latencies whose calls share their episode's offset (sd `between`), and episode labels."""
    labels = np.repeat(np.arange(n_eps), calls)
    values = mu + rng.normal(0, between, n_eps)[labels] + rng.normal(0, within, labels.size)
    return values, labels


def test_clusters_sum_and_count_each_episode_and_keep_the_mean_over_calls():
    values = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 6.0])
    labels = np.array([7, 7, 7, 2, 2, 9])             # unequal episodes, labels out of order
    c = Clusters.of(values, labels)
    assert c.sums.tolist() == [30.0, 6.0, 6.0] and c.counts.tolist() == [2.0, 3.0, 1.0]
    assert c.mean() == pytest.approx(values.mean(), rel=1e-15)   # (c): the point estimate
    with pytest.raises(ValueError):
        Clusters.of(values, labels[:-1])


@pytest.mark.parametrize("equal", [False, True])
def test_a_resample_is_its_episodes_summed_latency_over_their_summed_calls(equal):
    rng = np.random.default_rng(4)
    calls = np.full(40, 7) if equal else rng.integers(1, 30, 40)   # equal episodes take a shortcut
    values, labels = _episodes(rng, 40, calls, 100.0, 20.0, 2.0)
    c = Clusters.of(values, labels)
    draws = np.random.default_rng(11).integers(0, c.size, (300, c.size))
    want = c.sums[draws].sum(1) / c.counts[draws].sum(1)       # ratio estimator, by hand
    got = stats._boot_means(c, 300, np.random.default_rng(11))
    assert np.allclose(got, want, rtol=1e-13)
    lo, hi = bootstrap_interval([c], _identity, n_boot=300, seed=11)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(want, [0.025, 0.975])), rel=1e-12)
    assert lo < values.mean() < hi


@pytest.mark.parametrize("n", [1, 9, 500, 70001])
def test_one_call_per_episode_gives_the_call_bootstraps_draws_exactly(n):
    g = np.random.default_rng(n)
    base, run = g.normal(100, 5, 2000), g.normal(60, 5, n)
    as_clusters = [Clusters.of(base, np.arange(base.size)), Clusters.of(run, np.arange(run.size) * 3)]
    for seed in (0, 5):
        calls = bootstrap_interval([base, run], ratio_of_means, seed=seed)
        assert bootstrap_interval(as_clusters, ratio_of_means, seed=seed) == calls   # bit for bit
    a = stats._boot_means(as_clusters[1], 1000, np.random.default_rng(3))
    assert np.array_equal(a, stats._boot_means(run, 1000, np.random.default_rng(3)))


def test_correlated_calls_widen_the_interval_and_the_episode_one_covers_the_mean():
    """Seeded simulation: 60 data sets of 30 episodes x 1-19 calls sharing an episode offset
    (sd 10) over call noise (sd 2) around mu = 100. The call bootstrap treats ~300 correlated
    calls as independent and misses mu most of the time; the episode bootstrap covers it."""
    rng = np.random.default_rng(2024)
    mu, covered, call_covered, ratio = 100.0, 0, 0, []
    trials = 60
    for _ in range(trials):
        values, labels = _episodes(rng, 30, rng.integers(1, 20, 30), mu, 10.0, 2.0)
        lo, hi = bootstrap_interval([Clusters.of(values, labels)], _identity, n_boot=400)
        clo, chi = bootstrap_interval([values], _identity, n_boot=400)
        assert lo <= values.mean() <= hi   # around the plain mean over calls
        covered += lo <= mu <= hi
        call_covered += clo <= mu <= chi
        ratio.append((hi - lo) / (chi - clo))
    assert covered / trials >= 0.85, covered
    assert call_covered / trials <= 0.6, call_covered
    assert min(ratio) > 1.5, min(ratio)


def test_uncorrelated_calls_give_about_the_call_interval():
    rng = np.random.default_rng(8)
    values, labels = _episodes(rng, 200, np.full(200, 20), 100.0, 0.0, 5.0)
    lo, hi = bootstrap_interval([Clusters.of(values, labels)], _identity)
    clo, chi = bootstrap_interval([values], _identity)
    assert 0.8 < (hi - lo) / (chi - clo) < 1.25


def test_the_prefix_cache_tells_clusters_apart_by_counts():
    sums = np.array([10.0, 40.0, 90.0])
    a, b = Clusters(sums, np.array([1.0, 2.0, 3.0])), Clusters(sums, np.array([3.0, 2.0, 1.0]))
    first = bootstrap_interval([a], _identity, n_boot=200)
    assert bootstrap_interval([b], _identity, n_boot=200) != first
    assert bootstrap_interval([a], _identity, n_boot=200) == first


def test_paired_episodes_are_drawn_together():
    rng = np.random.default_rng(5)
    base, labels = _episodes(rng, 50, rng.integers(2, 12, 50), 100.0, 15.0, 1.0)
    new = 0.5 * base + rng.normal(0, 0.5, base.size)   # the same episodes, twice as fast
    calls = paired_ratio_draws(base, new, 500)
    eps = paired_ratio_draws(Clusters.of(base, labels), Clusters.of(new, labels), 500)
    point = base.mean() / new.mean()
    assert np.quantile(eps, 0.025) < point < np.quantile(eps, 0.975)
    assert np.ptp(eps) < 0.05 * point    # paired: the shared episode offsets cancel
    idx = np.random.default_rng(0).integers(0, base.size, (500, base.size))
    assert np.array_equal(calls, base[idx].mean(1) / np.maximum(new[idx].mean(1), 1e-12))
    ones = np.arange(base.size)
    assert np.array_equal(paired_ratio_draws(Clusters.of(base, ones), Clusters.of(new, ones), 500), calls)
    with pytest.raises(ValueError):
        paired_ratio_draws(Clusters.of(base, labels), Clusters.of(new, ones), 500)


def test_empty_clusters_give_no_interval():
    empty = Clusters.of(np.empty(0), np.empty(0, dtype=int))
    assert math.isnan(empty.mean())
    assert all(math.isnan(x) for x in bootstrap_interval([empty, np.ones(3)], ratio_of_means))
