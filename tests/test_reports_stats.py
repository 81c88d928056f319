"""Exact percentiles and their distribution-free confidence intervals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from velro_perf.reports.stats import (
    clopper_pearson,
    nearest_rank,
    percentile_ci,
    percentile_rank_bounds,
    percentiles,
    wilson,
)


def test_percentiles_are_nearest_rank_order_statistics() -> None:
    values = np.arange(1.0, 101.0)  # 1..100
    assert percentiles(values, (50.0, 95.0, 99.0, 99.9)) == [50.0, 95.0, 99.0, 100.0]
    assert percentiles(np.array([7.0]), (50.0, 99.0)) == [7.0, 7.0]
    assert percentiles(np.empty(0), (50.0,)) == [None]


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0], 50.0, 1.0),  # half the samples at or below 1: no interpolation to 1.5
        ([1.0, 2.0], 50.1, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 75.0, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 76.0, 4.0),
        (list(range(1, 11)), 90.0, 9.0),
        (list(range(1, 11)), 95.0, 10.0),  # the smallest with 95 % at or below it
        (list(range(1, 101)), 95.0, 95.0),  # 96 by numpy's "higher" or a floor rank
        (list(range(1, 1001)), 99.9, 999.0),
    ],
)
def test_the_rule_on_small_exact_cases(values: list[float], q: float, expected: float) -> None:
    assert percentiles(np.asarray(values, dtype=np.float64), (q,)) == [expected]


def test_every_part_takes_the_same_percentile() -> None:
    """The microbenchmarks' gate (rounds in seconds) gives the budgets' figure on 1..100."""
    from velro_perf.bench.compare import percentile_ms

    rounds = {"stats": {"data": [v / 1e3 for v in range(100, 0, -1)]}}  # unsorted, in seconds
    assert percentile_ms(rounds, 95.0) == pytest.approx(95.0)
    assert percentile_ms(rounds, 99.9) == pytest.approx(100.0)


def test_rank_bounds_cover_the_binomial_mass() -> None:
    n, q = 1000, 95.0
    lo, hi = percentile_rank_bounds(n, q)
    # the number of samples below the true p95 is Binomial(n, 0.95): [lo, hi - 1] holds >= 95 %
    mass = sps.binom.cdf(hi - 1, n, 0.95) - sps.binom.cdf(lo - 1, n, 0.95)
    assert mass >= 0.95
    assert lo < 950 < hi


def test_too_few_samples_leave_the_upper_end_unbounded() -> None:
    iv = percentile_ci(np.sort(np.arange(10.0)), 95.0)
    assert iv.value == 9.0
    assert iv.high is None  # ten samples cannot bound a p95 from above


def test_the_interval_covers_the_true_percentile_at_least_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    true_p95 = -np.log(0.05)  # of Exp(1)
    reps, n = 400, 300
    covered = 0
    for _ in range(reps):
        iv = percentile_ci(np.sort(rng.exponential(size=n)), 95.0)
        assert iv.low is not None
        assert iv.high is not None
        covered += iv.low <= true_p95 <= iv.high
    # nominal >= 95 %; 400 reps put a true 95 % above 0.92 with overwhelming probability
    assert covered / reps >= 0.92


def test_wilson_and_clopper_pearson_match_known_values() -> None:
    w = wilson(95, 100)
    assert w.low == pytest.approx(0.8882, abs=1e-3)
    assert w.high == pytest.approx(0.9785, abs=1e-3)
    cp = clopper_pearson(0, 1000)
    assert cp.low == 0.0
    assert cp.high == pytest.approx(1 - 0.025 ** (1 / 1000), rel=1e-6)
    assert wilson(0, 0).value is None


def test_nearest_rank_is_exact_at_tens_of_millions() -> None:
    # ceil(q / 100 * n) in exact arithmetic: an epsilon for floating point's 95.00000000000001
    # picked the rank above at this size (23,659,317 is 99.9 % of 23,683,000 exactly)
    assert nearest_rank(23_683_000, 99.9) == 23_659_317
    assert nearest_rank(100, 95) == 95
    assert nearest_rank(1000, 0.9) == 9
    assert nearest_rank(3, 50) == 2
    assert nearest_rank(1, 99.99) == 1
