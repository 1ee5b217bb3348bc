-- Energy per sample and stage: what each stage's tools are estimated to have cost, and how much
-- of it was recovered as heat, as the stages reported it (alignment on sample.aligned, calling on
-- variants.called). Estimates, never meter readings: the method says how each was derived.
--
-- Kept apart from samples on purpose: alignment's figures arrive before the sample is loaded
-- here (or for a sample that never will be, or was removed), and a sample's energy is not
-- genetic data. Rows are upserted by (sample_id, stage), so a redelivered event changes nothing.
CREATE TABLE sample_energy (
    sample_id              text             NOT NULL,
    stage                  text             NOT NULL CHECK (stage IN ('alignment', 'calling')),
    patient_pseudonym      text             NOT NULL,
    hospital_id            text,
    method                 text             NOT NULL,
    cpu_seconds            double precision NOT NULL CHECK (cpu_seconds >= 0),
    wall_seconds           double precision NOT NULL CHECK (wall_seconds >= 0),
    watts_per_core         double precision NOT NULL CHECK (watts_per_core >= 0),
    kwh                    double precision NOT NULL CHECK (kwh >= 0),
    heat_recovery_fraction double precision NOT NULL
        CHECK (heat_recovery_fraction BETWEEN 0 AND 1),
    heat_recovered_kwh     double precision NOT NULL CHECK (heat_recovered_kwh >= 0),
    node                   text,
    source_event_id        uuid             NOT NULL,
    recorded_at            timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (sample_id, stage)
);
