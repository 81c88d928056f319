"""pytest-benchmark microbenchmarks of velro's internals (run by ``velro-perf bench``; what each
measures: ``benchmarks/__init__.py``)."""
