"""Wilson intervals, McNemar's exact test and the bootstrap against statsmodels/scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlabench.metrics.stats import (
    bootstrap_interval, mcnemar_exact, mean_of_ratios, paired_counts, ratio_of_means,
    wilson_interval,
)

sm_prop = pytest.importorskip("statsmodels.stats.proportion")
sm_tables = pytest.importorskip("statsmodels.stats.contingency_tables")


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (7, 20), (488, 500), (1, 1), (25, 50), (3, 48)])
def test_wilson_interval_matches_statsmodels(k, n):
    lo, hi = sm_prop.proportion_confint(k, n, alpha=0.05, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((lo, hi), abs=1e-12)


def test_wilson_interval_of_no_episodes_is_nan():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


@pytest.mark.parametrize("b,c", [(0, 0), (0, 5), (5, 0), (3, 9), (12, 12), (1, 20), (40, 17)])
def test_mcnemar_exact_matches_statsmodels(b, c):
    expected = sm_tables.mcnemar([[30, b], [c, 30]], exact=True).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_known_value_from_binomial():
    # b=1, c=9: p = 2 * P[X <= 1], X ~ Bin(10, 1/2) = 2 * 11/1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)


def test_paired_counts_counts_discordant_pairs():
    assert paired_counts([1, 1, 0, 0, 1], [1, 0, 1, 0, 0]) == (2, 1)
    with pytest.raises(ValueError):
        paired_counts([1, 0], [1])


def test_bootstrap_ratio_interval_covers_true_speedup_and_is_deterministic():
    rng = np.random.default_rng(1)
    base = rng.normal(100, 5, 400)
    new = rng.normal(70, 4, 400)
    ci = bootstrap_interval([base, new], ratio_of_means, n_boot=500, seed=3)
    assert ci == bootstrap_interval([base, new], ratio_of_means, n_boot=500, seed=3)
    assert ci[0] < base.mean() / new.mean() < ci[1]
    assert ci[1] - ci[0] < 0.05


def test_bootstrap_of_constant_latencies_is_a_point():
    lo, hi = bootstrap_interval([np.full(50, 109.0), np.full(50, 72.4)], ratio_of_means, n_boot=200)
    assert lo == pytest.approx(109 / 72.4) and hi == pytest.approx(109 / 72.4)


def test_bootstrap_mean_of_ratios_averages_pairs():
    samples = [np.full(10, 100.0), np.full(10, 50.0), np.full(10, 100.0), np.full(10, 100.0)]
    assert bootstrap_interval(samples, mean_of_ratios, n_boot=50) == pytest.approx((1.5, 1.5))


def test_bootstrap_of_empty_sample_is_nan():
    assert all(math.isnan(x) for x in bootstrap_interval([np.array([]), np.ones(3)], ratio_of_means))


def test_wilson_and_mcnemar_are_scipy_stats_bit_for_bit():
    """stats.py calls the functions scipy.stats' norm.ppf and binom.cdf call, without importing
    scipy.stats: the numbers must stay those of scipy.stats exactly."""
    st = pytest.importorskip("scipy.stats")
    for b in range(0, 40):
        for c in range(0, 40, 3):
            want = 1.0 if b + c == 0 else float(min(1.0, 2.0 * st.binom.cdf(min(b, c), b + c, 0.5)))
            assert mcnemar_exact(b, c) == want
    assert mcnemar_exact(480, 530) == float(min(1.0, 2.0 * st.binom.cdf(480, 1010, 0.5)))
    for conf in (0.95, 0.9, 0.99):
        z = float(st.norm.ppf(0.5 + conf / 2))
        p, n = 0.3, 40
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        assert wilson_interval(12, 40, conf) == (max(0.0, centre - half), min(1.0, centre + half))
