"""Two kinds of benchmark, kept apart: the pytest-benchmark microbenchmarks of velro's internals
(``micro/``), and the side-by-side load tools beside them here (throughput.py, costcurve.py,
generator_cost.py, ...), whose raw HTTP client is one module, ``rawhttp.py``.

Running them::

    velro-perf bench                 # every benchmark, JSON to runs/bench/<UTC>.json + latest.json
    velro-perf bench --quick         # each for about 10 ms (CI), still judged on the budgets
    velro-perf bench --compare OLD   # exit 1 on a significant (p < 0.01) and >= 10 % slowdown
    pytest benchmarks/micro/         # the path must be given: testpaths is tests/
    python -m benchmarks.throughput  # rps of velro beside a bare FastAPI app (throughput.py)

What ``micro/`` measures, one thing per benchmark, correctness checked outside the timed call:

=====================  ===================================================================
test_singleton.py      the database singleton: warm, 8 threads at once, first creation
test_executor.py       ``Executor.run`` beside a bare ``run_in_executor``; the timeout path;
                       a burst with every worker busy
test_cache.py          L1, L2 (Redis), L3 (SQLite, PostgreSQL) on a hit, a miss, a write,
                       each beside its physical anchor; the tiered read by the tier that
                       answers; single-flight under 50 concurrent misses
test_credentials.py    JWT issue and verify; argon2id verify at the OWASP minimum
test_decisions.py      a service key checked cached and uncached; an authorization decision
                       cold and warm
=====================  ===================================================================

Each benchmark records ``extra_info["tier"]`` and ``extra_info["anchor"]`` (the name of the
benchmark it is set beside, or None); ``velro-perf bench`` prints the ratio of medians. The
tier hits are named as ``fixtures/budgets.toml`` names them: ``test_l1_hit``,
``test_l2_hit``, ``test_l3_hit_sqlite``, ``test_l3_hit_postgres``.

Redis and PostgreSQL benchmarks use their own key prefix and their own database
(``velro_bench_<random>``), removed afterwards; they skip when the server is absent, and fail
under ``CI=true``.
"""
