"""One root error for the package, one subclass per stage, so callers can catch by stage."""


class StreamError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(StreamError):
    """The settings are inconsistent or refer to something that does not exist."""


class ValidationError(StreamError):
    """An event does not match its JSON Schema; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DeliveryError(StreamError):
    """The producer could not deliver an event to Kafka."""


class StoreError(StreamError):
    """The ClickHouse store refused or could not take a write or a query."""


class MetricsError(StreamError):
    """A metric cannot be computed from the data given (e.g. not enough samples)."""
