# One-command entry points. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ENV := DJANGO_DEBUG=1 DATABASE_URL= MIGRATION_DATABASE_URL= REDIS_URL=
TEST_SECRET := test-only-secret-key-not-for-production-0123456789
TEST_SECOND_FACTOR_KEY := test-only-second-factor-key-not-for-production-42
TEST_LINKAGE_KEY := test-only-linkage-key-not-for-production-0123456789
TEST_ENV := DJANGO_SECRET_KEY=$(TEST_SECRET) DJANGO_SECOND_FACTOR_KEYS=$(TEST_SECOND_FACTOR_KEY) \
  DJANGO_LINKAGE_KEY=$(TEST_LINKAGE_KEY)

DEMO_PORT ?= 8000

.PHONY: install messages demo demo-check demo-reset test lint security bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Compiled translations are build output, not committed.
messages: install
	DJANGO_DEBUG=1 $(PY) manage.py compile_translations -v 0

# Before anything is installed or changed: the Python version, and a free port (a demo
# already running keeps its data, logins and codes).
demo-check:
	@$(PYTHON) scripts/demo_check.py $(DEMO_PORT) $(PYTHON)

demo: demo-check
	@$(MAKE) --no-print-directory messages
	$(DEMO_ENV) $(PY) manage.py migrate --noinput -v 0
	$(DEMO_ENV) $(PY) manage.py seed_demo --port $(DEMO_PORT) $(if $(DEMO_PASSWORD),--password "$(DEMO_PASSWORD)")
	@# A first release, so the figures have numbers at once (kept on a second run).
	$(DEMO_ENV) $(PY) manage.py release_figures --as-of 2025-02-02 --unless-released > /dev/null
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:$(DEMO_PORT)

# Start the demo over: a new database, new logins and codes.
demo-reset: demo-check
	rm -f db.sqlite3 db.sqlite3-journal .demo-logins.json
	@$(MAKE) --no-print-directory demo

test: messages
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_DEBUG=1 $(VENV)/bin/mypy config accounts casework linkage partners reports devdata bench manage.py
	DJANGO_DEBUG=1 DATABASE_URL=sqlite:///:memory: MIGRATION_DATABASE_URL= $(PY) manage.py makemigrations --check --dry-run

# Static analysis (bandit) and the dependency audit (pip-audit); see .ci/run.
security: install
	bash .ci/run security

BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/repatriation_bench

bench: messages
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_DATABASE_URL)} $(TEST_ENV) REDIS_URL= \
	  DJANGO_ALLOWED_HOSTS=testserver,127.0.0.1 DJANGO_SECURE_SSL_REDIRECT=0 $(PY) -m bench

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .demo-logins.json node_modules
