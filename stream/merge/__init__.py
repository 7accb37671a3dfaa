"""Merge, per window (stage 2): the partials of all source partitions merged and evaluated
(:mod:`stream.merge.stage`) against the models' reference profiles
(:mod:`stream.merge.references`), rows to the results topic (:mod:`stream.merge.sink`); the
same results offline from a list of events (:mod:`stream.merge.offline`)."""
