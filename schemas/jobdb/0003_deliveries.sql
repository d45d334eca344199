-- 0003: deliveries of a job's result objects to configured destinations (C-STORE through Orthanc),
-- retried with exponential backoff; a delivery that used up its attempts is 'dead' (dead letter)
-- with the reason, until an admin asks for a resend.
CREATE TABLE deliveries (
  id                bigserial PRIMARY KEY,
  job_id            bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  destination       text NOT NULL,
  instances         text NOT NULL,            -- JSON array of Orthanc instance IDs
  state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
  attempts          integer NOT NULL DEFAULT 0,
  max_attempts      integer NOT NULL,
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  lease_owner       text,
  lease_expires_at  timestamptz,
  last_error        text,
  sent_at           timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (job_id, destination)
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state IN ('pending', 'sending');
