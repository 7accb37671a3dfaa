"""The Faust runtime: what makes Faust deliver each message once and in order.

Nothing here computes a statistic; the domain (``ingest`` -> ``join`` -> ``windows`` ->
``metrics`` -> ``store`` / ``alerts``) knows nothing of it. ``app`` wires the agents,
``worker`` starts and stops them (``shutdown`` bounds the stop), ``acks`` hands acks to Faust
in offset order, ``durable`` holds an ack until the table writes before it are delivered,
``contiguity`` reads from the broker what Faust did not hand over, ``faust_fixes`` patches
Faust itself, and ``telemetry`` serves the worker's ``/metrics``.
"""
