"""The producer SDK's earlier import path, kept so that code written against it runs.

New code imports :mod:`stream.sdk.client`.
"""

from stream.sdk.client import MonitorClient

__all__ = ["MonitorClient"]
