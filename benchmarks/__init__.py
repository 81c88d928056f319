"""pytest-benchmark microbenchmarks of velro's internals, and the side-by-side throughput run.

Run them with ``velro-perf bench`` (or ``pytest benchmarks/``: the path must be given, since
the project's ``testpaths`` is ``tests``). ``python -m benchmarks.throughput`` compares the
reference service's requests per second with a bare FastAPI app doing the same JWT check.
"""
