-- Consent applies to the purpose: a sample on the research lane runs only for a patient who
-- allows research use. Rows from before this column know nothing of it (NULL) and are read as
-- restricted until the patient's next consent version says otherwise.
ALTER TABLE consents ADD COLUMN research_use text
    CHECK (research_use IN ('allowed', 'own_treatment_only'));
