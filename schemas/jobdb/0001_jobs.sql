-- 0001: the durable job queue. No PHI here: studies are named by Orthanc ID only.
CREATE TABLE jobs (
  id                bigserial PRIMARY KEY,
  idempotency_key   text NOT NULL UNIQUE,
  study_id          text NOT NULL,
  rule_id           text NOT NULL,
  rule_version      integer NOT NULL,
  pipeline          text NOT NULL,
  parameters        jsonb NOT NULL DEFAULT '{}',
  state             text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  priority          integer NOT NULL DEFAULT 0,
  attempts          integer NOT NULL DEFAULT 0,
  max_attempts      integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  not_before        timestamptz NOT NULL DEFAULT now(),
  lease_owner       text,
  lease_expires_at  timestamptz,
  progress          real NOT NULL DEFAULT 0,
  progress_message  text NOT NULL DEFAULT '',
  error             text,
  device            text,
  result            jsonb,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX jobs_claimable ON jobs (priority DESC, id) WHERE state = 'queued';
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_study ON jobs (study_id);

-- What happened to each job, in order: enqueued, claimed, reclaimed, released, retry, done, failed.
CREATE TABLE job_events (
  id       bigserial PRIMARY KEY,
  job_id   bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  at       timestamptz NOT NULL DEFAULT now(),
  kind     text NOT NULL,
  owner    text,
  message  text NOT NULL DEFAULT ''
);

CREATE INDEX job_events_job ON job_events (job_id, id);
