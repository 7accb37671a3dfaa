"""``tidewatch backfill``: the stream's windows and rows computed from files, into the store.

:mod:`stream.backfill.readers` turns JSON Lines, CSV and Parquet files into validated events
(rejects counted, never raised); :mod:`stream.backfill.run` computes the rows with the
stream's own code path (:func:`stream.merge.offline.offline_results`, which calls stage 2's
``evaluate_closed_window``) and writes them. See docs/backfill.md.
"""
