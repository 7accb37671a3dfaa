"""The producer SDK services use to log predictions and labels (``client.MonitorClient``).

It partitions like the worker expects (``partitioning``: Kafka's murmur2) and validates
against the same schemas; it imports nothing of the worker, so a service needs no Faust.
"""
