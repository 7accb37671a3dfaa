"""tidewatch: streaming ML monitoring on Kafka, results in ClickHouse.

The package is laid out along the data flow: ``ingest`` -> ``join`` -> ``windows`` ->
``metrics`` (pure) -> ``store`` and ``alerts``.
"""

__version__ = "0.1.0"
