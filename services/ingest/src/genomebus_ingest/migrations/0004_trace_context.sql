-- Where each sample's trace began (the LIS's POST), as a W3C carrier: work that happens later in
-- other requests or events (reads, checks, release by a consent) continues that one trace.
ALTER TABLE samples ADD COLUMN trace_context jsonb;
-- The trace of the consent event each held consent version came from: a release links to it.
ALTER TABLE consents ADD COLUMN trace_context jsonb;
-- Samples per state for the metrics, counted from the index alone.
CREATE INDEX samples_status ON samples (status);
