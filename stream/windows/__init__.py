"""Event-time windows, per input partition (stage 1): window ids and the frames stage 2
reads (:mod:`stream.windows.frames`), each model's clock (:mod:`stream.windows.eventtime`),
and the partition stage that joins, fills and closes windows
(:mod:`stream.windows.partition`, on :mod:`stream.windows.plan`)."""
