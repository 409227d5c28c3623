# EyeBridge. `make run` brings the platform up with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PASSWORD ?= eyebridge-demo
export DEMO_PASSWORD

.PHONY: install run worker beat test test-fast test-long lint typecheck format bench load migrations-check backup restore clean ci

$(BIN)/.installed: requirements/base.txt requirements/dev.txt
	test -x $(PYTHON) || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	# torch/torchvision are pinned to the releases on local disk (see README.md, Development, and requirements/base.txt).
	$(PYTHON) -m pip install -q -r requirements/dev.txt
	touch $@

install: $(BIN)/.installed

# One command: install, migrate, demo data, web + inference worker (+ beat) on this machine.
# With no DATABASE_URL/CELERY_BROKER_URL it runs on SQLite and kombu's filesystem broker.
run: install
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py seed_demo
	@echo ""
	@echo "EyeBridge is starting at http://$(HOST):$(PORT)/"
	@echo "Demo logins (password: $(DEMO_PASSWORD)): chw, chw2 (health workers), pharmacist, hospital (hospital staff), publichealth (dashboard), grader, grader2, grader3 (graders), admin"
	@echo "API docs: http://$(HOST):$(PORT)/api/v1/docs/   Kiosk simulator: http://$(HOST):$(PORT)/pharmacy/kiosk-simulator/"
	@echo "Press Ctrl-C to stop."
	@# On Ctrl-C stop the three children and wait for them, then leave quietly: `kill 0` also
	@# signalled make itself, which then reported a crash ("Segmentation fault") on the way out.
	@trap 'trap - EXIT INT TERM; kill $$(jobs -p) 2>/dev/null; wait; exit 0' EXIT INT TERM; \
	$(BIN)/celery -A config worker -Q inference,default -c 1 --loglevel=INFO & \
	$(BIN)/celery -A config beat --loglevel=WARNING --schedule var/celerybeat-schedule & \
	$(PYTHON) manage.py runserver $(HOST):$(PORT) --noreload

worker: install
	$(BIN)/celery -A config worker -Q inference,default -c 1 --loglevel=INFO

beat: install
	$(BIN)/celery -A config beat --loglevel=INFO

# The whole suite on real PostgreSQL and Redis (started by .ci/run in CI).
# The types first (mypy with django-stubs, well under a minute): CI fails on a type error too.
test: install typecheck
	$(BIN)/pytest -p no:cacheprovider --create-db -q

test-long: install
	$(BIN)/pytest -p no:cacheprovider -q -m slow --run-slow

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# mypy with django-stubs over the apps, bench/ and scripts/ (configured in pyproject.toml).
typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrations-check: install
	DJANGO_SETTINGS_MODULE=config.settings.test $(PYTHON) manage.py makemigrations --check --dry-run

bench: install
	$(PYTHON) -m ml.bench
	$(PYTHON) bench/screening_latency.py

# Whole-platform load, closed model: 70 users for 10 minutes against gunicorn + PostgreSQL + Redis +
# one inference worker, on its own database (eyebridge_load); then the invariants. Needs PostgreSQL
# and Redis on 127.0.0.1. See docs/reliability.md, "Load".
load: install
	$(PYTHON) bench/load_locust.py --users 70 --duration 600

# Database (pg_dump custom format, or the SQLite file) + stored images, with checksums, into
# backups/<UTC timestamp>/. See docs/reliability.md, "Backup and restore".
backup:
	PYTHON=$(PYTHON) scripts/backup.sh

# make restore BACKUP=backups/<timestamp> [TARGET_DATABASE_URL=postgres://...] [TARGET_MEDIA_ROOT=...]
restore:
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=backups/<timestamp>"; exit 2; }
	scripts/restore.sh "$(BACKUP)"

clean:
	rm -rf var/broker var/test-media build
