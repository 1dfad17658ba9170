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

.PHONY: run stop status restart test chaos bench bench-long lint schemas clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

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

## The whole suite (chaos soak excluded; see `make chaos`).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not slow" --basetemp=$(PYTEST_BASETEMP) tests

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
