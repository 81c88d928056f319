"""``python -m velro_perf.bench``, as ``velro-perf bench``."""

import sys

from velro_perf.bench.cli import run_as_script

raise SystemExit(run_as_script(sys.argv[1:]))
