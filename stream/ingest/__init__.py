"""Ingest, the first step: what fails to decode goes to the dead letters
(:mod:`stream.ingest.dead_letters`), and what was thrown away (rejects, duplicates) is counted
per window (:mod:`stream.ingest.counts`). Decoding itself is the contract, in
:mod:`stream.events`."""
