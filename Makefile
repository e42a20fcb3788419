# Leadline: `make run` starts the whole stack; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/leadline
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test venv services lint migrate-check screenshots demo-recording reliability bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

run: venv
	@PORT=$(PORT) scripts/run.sh

services:
	scripts/ensure-services.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: venv services lint
	@# Models against migration files: no server needed. (TEST_DATABASE_URL's database itself
	@# never exists, pytest creates test_<name>, so checking history there only warned.)
	DATABASE_URL=sqlite://:memory: CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  $(PY) manage.py makemigrations --check --dry-run
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  $(PY) -m pytest --cov --cov-report=term --cov-fail-under=80 $(PYTEST_ARGS)

# Every dashboard page, wide and at 390 px (phone-*.png), from the browser tests.
screenshots: venv services
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  LEADLINE_SCREENSHOTS=docs/screenshots $(PY) -m pytest -m browser -q -p no:cacheprovider \
	  dashboard/tests/test_browser.py dashboard/tests/test_console_browser.py

# docs/demo.md's dashboard part as a video (Playwright record_video): var/demo-recording/.
# Playwright encodes with ffmpeg; Debian's serves (its own build is a download from a CDN).
PW_FFMPEG := var/ms-playwright/ffmpeg-1011/ffmpeg-linux
demo-recording: venv services
	@command -v ffmpeg >/dev/null || { echo "Installing Debian's ffmpeg (Playwright's video encoder)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; }
	mkdir -p $(dir $(PW_FFMPEG)) && ln -sf "$$(command -v ffmpeg)" $(PW_FFMPEG)
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  PLAYWRIGHT_BROWSERS_PATH=$(CURDIR)/var/ms-playwright LEADLINE_DEMO_RECORDING=var/demo-recording \
	  $(PY) -m pytest -m browser -q -s -p no:cacheprovider dashboard/tests/test_demo_recording.py

bench: venv services
	@command -v wrk >/dev/null || { echo "Installing Debian's wrk (the load generator)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) bench/ingest.py
	$(PY) bench/replay.py
	$(PY) bench/pipeline.py
	$(PY) bench/llm_drafts.py
	$(PY) bench/dashboard.py

reliability: venv services
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/leadline_rel CELERY_BROKER_URL=redis://127.0.0.1:6379/7 \
	  LEADLINE_RELIABILITY_FULL=1 $(PY) -m pytest -q -s tests/reliability

clean:
	rm -rf var/ logs/ .pytest_cache .coverage htmlcov staticfiles
