# Two commands matter: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format migrations-check check ci bench clean chaos fuzz

help:
	@echo "make run     install, migrate, load workflows and serve http://127.0.0.1:8000"
	@echo "make test    the whole test suite (embedded Redis unless REDIS_URL is set)"
	@echo "make lint    ruff check + format check"
	@echo "make ci      lint, migrations check, deploy check and tests"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py dev

test: $(STAMP)
	$(PY) -m reviewapp.lib.devredis -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

migrations-check: $(STAMP)
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

check: $(STAMP)
	DJANGO_DEBUG=0 DJANGO_SECRET_KEY=check-only-$$(date +%s)-not-a-real-secret-key-0123456789abcdef \
	AUDIT_KEY=check-only-audit-key \
	DJANGO_ALLOWED_HOSTS=example.com $(PY) manage.py check --deploy --fail-level WARNING

ci: lint migrations-check check test

# Benchmarks (not part of `make test`): one JSON line per benchmark; see bench/README.md.
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# The pipeline under faults: 1,000 generations while workers, simulators and Redis die.
chaos: $(STAMP)
	$(PY) -m chaos $(CHAOS_ARGS)

# Ten times the suite's fuzz cases, on every GET filter, POST form and import.
fuzz: $(STAMP)
	FUZZ_LONG=1 $(PY) -m reviewapp.lib.devredis -- $(PY) -m pytest -m fuzz tests/reviewapp/test_fuzz.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
