# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LISTEN ?= :9863

.PHONY: install demo test test-fast golden generate bench promtool chromium screenshot check-config lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Run the exporter against the built-in ARM simulator; it prints where to look:
## the status page http://localhost:9863/ and http://localhost:9863/metrics
demo: install
	$(BIN)/standby-pool-exporter --demo --web.listen-address=$(LISTEN)

## The whole suite: lint and types, unit, end-to-end (simulator + real exporter process + real
## azure-identity), promtool, a real Prometheus, a real browser; prints the slowest tests.
test: install promtool chromium lint
	$(BIN)/python -m pytest -q --durations=15

## ruff (lint and import order) on the tree and mypy --strict on exporter/; part of `make test`.
lint: install
	$(BIN)/ruff check exporter tests bench docs grafana deploy tools
	$(BIN)/mypy

## A developer's loop: everything but the tests marked slow (soak, real Prometheus).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

## Rewrite the golden exposition files after an intended metric change; review the diff like code.
golden: install
	UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/unit/test_collector.py tests/unit/test_exposition_golden.py

## Regenerate every generated file: metric reference and contract, dashboard, PrometheusRule.
generate: install
	$(BIN)/python docs/generate_metrics.py
	$(BIN)/python grafana/generate_dashboard.py
	$(BIN)/python deploy/kubernetes/generate_prometheusrule.py

## promtool and prometheus come from Debian's `prometheus` package; installed when run as root.
promtool:
	@if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's prometheus package (promtool, prometheus)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
	else \
		echo "promtool not found and not root: the promtool tests will be skipped (apt-get install prometheus)"; \
	fi

## chromium and chromium-driver come from Debian (the status page's browser test); installed when run as root.
chromium:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium and chromium-driver packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "chromium not found and not root: the browser test will be skipped (apt-get install chromium chromium-driver)"; \
	fi

## Regenerate docs/status-page.png: the status page of the demo world, in headless chromium.
screenshot: install chromium
	$(BIN)/python tools/screenshot.py docs/status-page.png

## Benchmark against the simulator (about 5 minutes, 2 cores): one table, PASS/FAIL per target.
## BENCH_ARGS="--quick" for a short run; `$(BIN)/python -m bench --help` lists the flags.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

check-config: install
	$(BIN)/standby-pool-exporter --check-config --config.file=$(or $(CONFIG),config.example.yaml)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info
