-- 0005: studies this node has routed (rules evaluated, jobs enqueued or none due). At start-up and
-- after a job database outage the node compares Orthanc's stable studies with this table, so a
-- study that became stable while the database was away, or while no node was listening, is still
-- routed. Seeded with the studies that already have jobs, so an upgrade does not route them again.
CREATE TABLE routed (
  study_id   text PRIMARY KEY,
  routed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO routed (study_id)
  SELECT DISTINCT study_id FROM jobs WHERE study_id NOT IN (SELECT study_id FROM intake)
  ON CONFLICT DO NOTHING;
