"""tidewatch: streaming ML monitoring on Kafka, results in ClickHouse.

The package is laid out along the data flow: ``ingest`` -> ``join`` -> ``windows`` (stage 1,
per partition) -> ``merge`` (stage 2, per window) -> ``metrics`` (pure) -> ``store`` and
``alerts``. Faust lives in ``runtime/`` and nowhere else; services log through ``sdk/``.
The layers are in ``docs/layout.md``.
"""

__version__ = "0.1.0"
