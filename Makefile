# Two commands on a fresh machine: `make run` and `make test`. Both create .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export V7_HOME ?= $(CURDIR)
SUPERVISORD_CONF := $(CURDIR)/supervisord.conf
# Each checkout gets its own pytest temp root: concurrent runs in one account would otherwise
# prune each other's live directories (pytest keeps only the newest few under /tmp/pytest-of-USER).
PYTEST_BASETEMP := /tmp/v7-pytest-$(shell id -u)-$(shell printf '%s' "$(CURDIR)" | md5sum | cut -c1-8)

# Exact versions with hashes of everything .venv holds (runtime, dev/test and postgres extras,
# the build backend, pip itself), resolved by pip-compile from pyproject.toml's ranges.
# pip-tools rather than uv: it resolves with pip itself, so it reads the machine's pip
# configuration (package mirror, find-links) exactly as the installing pip does; uv ignores pip.conf.
LOCK := requirements/lock.txt
LOCK_ARGS ?=

.PHONY: run stop status restart test chaos bench bench-long lint schemas clean venv lock

venv: $(STAMP)

# Only what the lock names, at its versions: --require-hashes refuses anything unpinned or
# altered, pip-sync removes what an older venv holds beyond the lock, and the project itself
# goes in without resolving dependencies, built by the locked setuptools.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip-sync --quiet $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## Re-resolve requirements/lock.txt after pyproject.toml changed (pins that still fit are kept;
## `make lock LOCK_ARGS=--upgrade` takes the newest of everything). After a merge conflict in the
## lock, take either side and run this again.
lock: $(STAMP)
	$(BIN)/python -c 'import platform, sys; assert sys.version_info[:2] == (3, 11) and platform.system() == "Linux" \
		and platform.machine() == "x86_64", "the lock is resolved for Python 3.11 on Linux x86_64"'
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --all-build-deps \
		--extra dev --extra postgres $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml

## Start the whole group (paper mode, offline) under supervisord and wait until it is up.
run: $(STAMP)
	mkdir -p "$(V7_HOME)/run" "$(V7_HOME)/logs/supervisor"
	chmod 700 "$(V7_HOME)/run"
	$(BIN)/v7 check-config
	@if $(BIN)/supervisorctl -c $(SUPERVISORD_CONF) pid >/dev/null 2>&1; then \
		echo "supervisord already running; starting any stopped programs"; \
		$(BIN)/supervisorctl -c $(SUPERVISORD_CONF) start all; \
	else \
		$(BIN)/supervisord -c $(SUPERVISORD_CONF); \
	fi
	$(BIN)/v7 wait-up --timeout 60
	@echo "status: make status   stop: make stop   live updates: .venv/bin/v7 tail"

stop:
	-$(BIN)/supervisorctl -c $(SUPERVISORD_CONF) shutdown

status:
	$(BIN)/supervisorctl -c $(SUPERVISORD_CONF) status

restart: stop run

## The whole suite (chaos soak excluded; see `make chaos`). Two workers by default: most tests
## wait on real processes rather than compute. A test file stays on one worker (module fixtures,
## e.g. one LIVE group, are shared by its tests); `make test PYTEST_WORKERS=0` runs serially.
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not slow" -n $(PYTEST_WORKERS) --dist loadfile --basetemp=$(PYTEST_BASETEMP) tests

chaos: $(STAMP)
	$(BIN)/pytest -q -m slow --basetemp=$(PYTEST_BASETEMP)-chaos tests

bench: $(STAMP)
	$(BIN)/python -m bench

## The scale benchmark with the 1M-message journal and RSS runs (tens of minutes).
bench-long: $(STAMP)
	$(BIN)/python -m bench.scale --long

lint: $(STAMP)
	$(BIN)/ruff check .

schemas: $(STAMP)
	$(BIN)/v7 schemas --write

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
