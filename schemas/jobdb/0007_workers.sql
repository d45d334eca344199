-- 0007: requirements and capabilities. A job that must run on a GPU (its rule says device "gpu")
-- is claimed only by workers that have one; every worker pool (in a plugin, or a standalone
-- `procnode worker`) registers itself and renews its row with each heartbeat, so that a job no live
-- worker can run says so, and GET /procnode/workers lists them.
ALTER TABLE jobs ADD COLUMN needs_gpu boolean NOT NULL DEFAULT false;
CREATE TABLE workers (
  owner       text PRIMARY KEY,
  orthanc_id  text NOT NULL,
  kind        text NOT NULL,
  host        text NOT NULL,
  threads     integer NOT NULL,
  gpu         text,
  started_at  timestamptz NOT NULL DEFAULT now(),
  last_seen   timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
