-- 0009: the typed job specification (core/job_spec.h). A job's processor, parameters, device,
-- anonymization, destinations and requirements are one JSON document (spec, version 2); before,
-- device, anonymize and destinations rode among the processor's parameters. Rows written before
-- are converted here, so every row reads the same way; parameters keeps the processor's own.
-- The memory a job is estimated to need is kept beside it, for claiming and for what it waits for.
ALTER TABLE jobs ADD COLUMN spec jsonb;
ALTER TABLE jobs ADD COLUMN device_memory_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN host_memory_bytes bigint NOT NULL DEFAULT 0;
UPDATE jobs SET spec = jsonb_build_object(
  'version', 2,
  'processor', pipeline,
  'processor_version', '1',
  'parameters', parameters - 'device' - 'anonymize' - 'destinations',
  'device', coalesce(parameters->>'device', 'auto'),
  'anonymize', CASE
      WHEN NOT parameters ? 'anonymize' OR parameters->'anonymize' = 'false'::jsonb THEN 'null'::jsonb
      WHEN jsonb_typeof(parameters->'anonymize') = 'object' THEN jsonb_build_object(
        'project', coalesce(parameters->'anonymize'->>'project', 'rule:' || rule_id),
        'options', coalesce(parameters->'anonymize'->'options', '[]'::jsonb),
        'results', coalesce(parameters->'anonymize'->>'results', 'pseudonymous'))
      ELSE jsonb_build_object('project', 'rule:' || rule_id, 'options', '[]'::jsonb, 'results', 'pseudonymous')
    END,
  'destinations', coalesce(parameters->'destinations', '[]'::jsonb),
  'requirements', jsonb_build_object('needs_gpu', needs_gpu, 'prefers_gpu', prefers_gpu,
                                     'device_memory_bytes', 0, 'host_memory_bytes', 0));
UPDATE jobs SET parameters = parameters - 'device' - 'anonymize' - 'destinations';
ALTER TABLE jobs ALTER COLUMN spec SET NOT NULL;
