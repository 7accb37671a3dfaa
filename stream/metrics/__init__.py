"""Pure metrics engine: window accumulators, drift, performance, quality, fairness.

Nothing here does I/O (except :func:`stream.metrics.reference.ReferenceProfile.from_file`).
Import from the submodules; this file stays empty so they can import each other freely.
"""
