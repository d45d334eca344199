-- 0006: several Orthancs on one job database. Each job, intake row and routed study belongs to the
-- Orthanc that holds the study (its ProcNode.OrthancId); the same study in two Orthancs makes a
-- job in each. '' marks rows from before this migration: the first Orthanc node to start adopts
-- them (an upgrade from one Orthanc).
ALTER TABLE jobs ADD COLUMN orthanc_id text NOT NULL DEFAULT '';
ALTER TABLE jobs DROP CONSTRAINT jobs_idempotency_key_key;
CREATE UNIQUE INDEX jobs_orthanc_key ON jobs (orthanc_id, idempotency_key);
ALTER TABLE intake ADD COLUMN orthanc_id text NOT NULL DEFAULT '';
ALTER TABLE intake DROP CONSTRAINT intake_pkey;
ALTER TABLE intake ADD PRIMARY KEY (orthanc_id, study_id);
ALTER TABLE routed ADD COLUMN orthanc_id text NOT NULL DEFAULT '';
ALTER TABLE routed DROP CONSTRAINT routed_pkey;
ALTER TABLE routed ADD PRIMARY KEY (orthanc_id, study_id);
