"""`python -m velro_perf` is the `velro-perf` command."""

from velro_perf.cli import main

raise SystemExit(main())
