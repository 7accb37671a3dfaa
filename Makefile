# Two commands set everything up on a fresh machine (Python 3.11 + Java 17 + Maven):
#   make demo   the main job on the embedded default (local Kafka broker + worker + chDB)
#   make test   installs everything, lints (ruff) and type-checks (mypy strict), starts its own
#               broker, runs the whole suite, stops it
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KAFKA  := $(PY) tools/kafka/local_kafka.py
STAMP  := $(VENV)/.installed

.PHONY: demo test unit integration install kafka-jars lint typecheck bench clean

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

test: install kafka-jars lint typecheck
	$(KAFKA) run --state .run/kafka-test.json -- $(PY) -m pytest -q tests

unit: install
	$(PY) -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check stream tests load_tests tools

typecheck: install
	$(VENV)/bin/mypy

bench: install kafka-jars
	$(PY) load_tests/bench_metrics.py
	$(PY) load_tests/bench_ingest.py
	$(PY) load_tests/bench_estimate.py
	$(KAFKA) run --state .run/kafka-bench.json -- $(PY) load_tests/bench_stream.py --quick

clean:
	rm -rf .data .run
