"""`python -m velro_perf.calibration --serve ...`: the calibration target (app.py)."""

import sys

from velro_perf.calibration.app import serve_main

sys.exit(serve_main())
