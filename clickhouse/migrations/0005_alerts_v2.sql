-- Alert messages version 2 (schemas/alert.v2.schema.json): the model version, the comparison,
-- what to look at first (contributors, a JSON array of {name, value, detail}) and the wall
-- clock of the evaluation. time stays the deduplicating key's time: from version 2 on it is
-- the end of the window that changed the state (event time), so a re-sent change (same id,
-- same time) collapses into one row.
ALTER TABLE alerts
    ADD COLUMN IF NOT EXISTS model_version LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS op LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS contributors String DEFAULT '[]',
    ADD COLUMN IF NOT EXISTS detected_at DateTime64(3, 'UTC') DEFAULT 0;
