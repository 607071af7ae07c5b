# `make demo` and `make test` both set up .venv first (scripts/setup.sh, a no-op once done).
PY := .venv/bin/python
SETUP_STAMP := .venv/.setup-stamp

.PHONY: setup demo test test-fast lint bench
setup:
	@bash scripts/setup.sh

# Tables 3-7 at tiny scale on this CPU (tools/reproduce.py --preset tiny); resumes when run again.
demo: setup
	$(PY) tools/reproduce.py --preset tiny --out demo_output --jobs 2

# Everything, slow tests included (CI runs this): the static checks first, then the suite.
test: setup lint
	$(PY) -m pytest -q tests

# ruff and mypy, configured in pyproject.toml.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

# The quick subset for development.
test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

bench: setup
	$(PY) tools/bench_pretrain.py --out docs/bench_pretrain.csv
