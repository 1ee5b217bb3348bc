-- The patient sees who claims to treat them: a hospital becoming a treating hospital (its
-- checked sample's sample.registered) is an entry in the access log, like every read.
ALTER TABLE consent_access_log DROP CONSTRAINT consent_access_log_action_check;
ALTER TABLE consent_access_log ADD CONSTRAINT consent_access_log_action_check
    CHECK (action IN ('record', 'read_history', 'read_access_log', 'became_treating'));
