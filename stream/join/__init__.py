"""The join of predictions and labels by ``request_id``, per input partition: the entries
(:mod:`stream.join.entries`), their local index and checkpoints (:mod:`stream.join.store`),
and when an entry may stop waiting for its label (:mod:`stream.join.horizon`)."""
