# The commands everyone uses; each sets up what it needs (a virtual environment, the install).
#   make run    a load test of the reference service, degraded then fixed, ending in an HTML report
#   make test   every correctness test
#   make gate   the CI gate: the smoke shape against the fixed profile, judged by the PRD budgets
#   make bench  the full microbenchmarks (make bench-quick: each once, as CI does)
#   make check  ruff and mypy
#   make lock   re-pin constraints.txt (the exact versions setup installs) from pyproject's ranges
#   make capacity  the largest load the reference holds within its budgets (docs/capacity.md)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := constraints.txt
SHAPE  ?= smoke
OUT    ?= runs

.PHONY: setup run gate test check fmt bench bench-quick throughput costcurve serve clean capacity lock

setup: $(STAMP)

# every version pinned by constraints.txt: ruff, mypy, the stubs and the libraries they check
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,test]'
	touch $(STAMP)

# on purpose only: today's newest versions within pyproject's ranges, then `make check test`
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -e '.[dev,test]'
	{ grep '^#' $(LOCK); .venv-lock/bin/python -m pip freeze --exclude-editable \
		| grep -v '^velro=='; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock

# The degraded run is expected to fail its budgets (that is the story); the fixed run's
# verdict is the exit code, and its report shows the two side by side.
run: setup
	-$(BIN)/velro-perf run --shape $(SHAPE) --service-profile degraded --out $(OUT)
	$(BIN)/velro-perf run --shape $(SHAPE) --service-profile fixed --out $(OUT)

gate: setup
	$(BIN)/velro-perf run --shape smoke --service-profile fixed --out $(OUT)

# users.concurrent judged from a capacity search; stops by itself within 28 minutes
capacity: setup
	$(BIN)/velro-perf capacity --out $(OUT)

test: setup
	$(BIN)/pytest

check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/velro-perf bench

bench-quick: setup
	$(BIN)/velro-perf bench --quick

throughput: setup
	$(BIN)/velro-perf bench --throughput

# the service's CPU per request at 16, 1,000 and 10,000 open connections (benchmarks/costcurve.py)
costcurve: setup
	$(BIN)/python -m benchmarks.costcurve

serve: setup
	$(BIN)/velro db init
	$(BIN)/velro serve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .benchmarks
