"""Alerts: rules over window rows, a lifecycle per fingerprint, messages for the alert topic.

Pure modules (no I/O): :mod:`.rules` selects and compares rows, :mod:`.lifecycle` folds
per-window verdicts into firing/resolved state changes, :mod:`.detectors` computes the
``concept`` rows (performance test against the reference, CUSUM on the error stream, volume
and label-coverage ratios), :mod:`.messages` builds and validates alert messages,
:mod:`.defaults` holds the built-in rules, and :mod:`.evaluator` ties them together for one
window of one model. The Faust agent that runs it is in :mod:`stream.runtime.app`.
"""
