"""`velro-perf bench`: run the microbenchmarks, gate on the tier budgets, compare with a baseline.

    velro-perf bench [--quick] [--compare BASELINE_JSON [--alpha 0.01] [--min-effect 0.10]]
                     [--json OUT] [--budgets FILE] [--out DIR] [-- PYTEST_ARGS...]
    velro-perf bench --throughput [-- THROUGHPUT_ARGS...]   (benchmarks/throughput.py)

pytest-benchmark runs ``benchmarks/micro/`` of a clone (the installed tool has no benchmarks)
and writes its JSON to ``<out>/bench/<UTC time>.json``, copied to ``<out>/bench/latest.json``
where the HTML report looks. ``--benchmark-json`` always carries every round's time
(``stats.data``; ``--benchmark-save-data`` only matters for ``--benchmark-save``), so the tier
budgets are judged on the p99 of the rounds and the comparison tests the rounds themselves, not
summary figures. A round is one call, or, for a call shorter than the minimum round time, the
mean of ``iter`` calls (pytest-benchmark's calibration; the table shows ``iter``): the p99 of
an L1 read is then a p99 of such means, three orders of magnitude under its 5 ms bound either
way.

Exit codes: 0 all well; 1 a benchmark failed, a tier budget is broken, or ``--compare`` found
a regression; 2 bad usage (a missing file, a budgets file that does not parse).

A regression needs both a significant test and a minimum effect: the rounds of the current
run are stochastically greater than the baseline's (one-sided Mann-Whitney U, p < 0.01, which
assumes neither normality nor equal variances, and round times are neither) *and* the median
is at least 10 % slower. The test alone flags a 1 % shift once there are enough rounds; the
effect alone flags noise on a busy machine.

What neither can fix: the test takes a run's rounds as independent, and rounds taken back to
back are not when the machine is shared; a neighbour's burst moves a whole benchmark. On the
2-core machine this was written on, two full runs of the same code a minute apart had 13 of
40 benchmarks "regress" by 11 to 88 %. Compare on a quiet, dedicated runner; the table shows
beside each benchmark how its physical anchor moved, which tells the machine from the code.
"""

from __future__ import annotations

from velro_perf.bench.cli import main

# the parts: compare.py (judging the JSON), tables.py (printing), cli.py (the command)
__all__ = ["main"]
