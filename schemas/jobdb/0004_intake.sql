-- 0004: studies that became stable and are not routed yet (waiting to be complete, or not looked at
-- before a restart). The plugin looks at every row again when it starts, so a restart loses no
-- study; first_seen is where a completeness wait started.
CREATE TABLE intake (
  study_id    text PRIMARY KEY,
  first_seen  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
