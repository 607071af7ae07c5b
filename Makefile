# `make demo` and `make test` both set up .venv first (scripts/setup.sh, a no-op once done).
PY := .venv/bin/python
SETUP_STAMP := .venv/.setup-stamp

.PHONY: setup demo test test-fast bench
setup:
	@bash scripts/setup.sh

# Tables 3-7 at tiny scale on this CPU (tools/reproduce.py --preset tiny); resumes when run again.
demo: setup
	$(PY) tools/reproduce.py --preset tiny --out demo_output --jobs 2

# Everything, slow tests included (CI runs this).
test: setup
	$(PY) -m pytest -q tests

# The quick subset for development.
test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

bench: setup
	$(PY) tools/bench_pretrain.py --out docs/bench_pretrain.csv
