# Two commands set everything up on a fresh machine (Python 3.11 + Java 17 + Maven):
#   make demo   the main job on the embedded default (local Kafka broker + worker + chDB)
#   make test   installs everything, lints (ruff) and type-checks (mypy strict), starts its own
#               broker, runs the whole suite, stops it
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KAFKA  := $(PY) tools/kafka/local_kafka.py
STAMP  := $(VENV)/.installed

.PHONY: demo test unit integration install kafka-jars chromium lint typecheck bench bench-full \
	bench-micro clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

kafka-jars: $(STAMP)
	$(KAFKA) fetch

demo: install kafka-jars
	$(KAFKA) run --state .run/kafka-demo.json -- $(PY) -m stream.cli demo

# The report test opens the HTML in a real headless Chromium (Debian's package; as root).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } || \
		{ echo "chromium is missing: run make test as root or apt-get install chromium"; exit 1; }

test: install kafka-jars chromium lint typecheck
	$(KAFKA) run --state .run/kafka-test.json -- $(PY) -m pytest -q tests

unit: install
	$(PY) -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check stream tests load_tests tools

typecheck: install
	$(VENV)/bin/mypy

# One table of the worker's figures against issue 10's targets, JSON in .run/bench.json
# (docs/benchmarks.md; ARGS=--record adds a dated row there). bench: ~9-14 min on 2 cores.
bench: install kafka-jars
	$(KAFKA) run --state .run/kafka-bench.json -- $(PY) load_tests/bench_worker.py $(ARGS)

bench-full: install kafka-jars
	$(KAFKA) run --state .run/kafka-bench.json -- $(PY) load_tests/bench_worker.py --full $(ARGS)

# In-process micro-benchmarks: one window's metric set; decode + validate.
bench-micro: install
	$(PY) load_tests/bench_metrics.py
	$(PY) load_tests/bench_ingest.py
	$(PY) load_tests/bench_stage.py
	$(PY) load_tests/bench_estimate.py

clean:
	rm -rf .data .run
