-- 0002: versioned routing rule sets, series-level jobs, cancellation.
-- Every save is a new version; the active rule set is the highest version. Rolling back saves an
-- older body again as a new version, so history is never rewritten.
CREATE TABLE rule_sets (
  version     serial PRIMARY KEY,
  body        text NOT NULL,
  author      text NOT NULL,
  comment     text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE jobs ADD COLUMN series_id text;
ALTER TABLE jobs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
