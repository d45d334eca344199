-- 0011: jobs on a Slurm cluster. A job's executor is fixed when it is enqueued (the rule's, or the
-- node's default): local jobs are claimed by workers as before; Slurm jobs are submitted by their
-- node as batch jobs running `procnode worker --once ID` on a compute node and are never claimed
-- by local workers. slurm_job_id names the batch job now responsible for the job ('submitting'
-- while sbatch runs); a worker that finishes the job (done, failed, cancelled) clears it, so a
-- batch job that ends while it is still set ended without the job being finished. A worker that
-- releases its job (SIGTERM: Slurm's time limit, preemption, scancel) leaves it set: the batch
-- job's end then says why, in Slurm's words.
ALTER TABLE jobs ADD COLUMN executor text NOT NULL DEFAULT 'local' CHECK (executor IN ('local', 'slurm'));
ALTER TABLE jobs ADD COLUMN slurm_job_id text;
ALTER TABLE jobs ADD COLUMN slurm_last_job_id text;   -- the latest batch job, kept for the record
ALTER TABLE jobs ADD COLUMN slurm_state text;         -- as squeue last said (PENDING, RUNNING, ...)
ALTER TABLE jobs ADD COLUMN slurm_reason text;        -- squeue's reason (Resources, Priority, ...)
ALTER TABLE jobs ADD COLUMN slurm_script text;        -- the batch script last submitted
ALTER TABLE jobs ADD COLUMN slurm_submitted_at timestamptz;
CREATE INDEX jobs_slurm_tracked ON jobs (orthanc_id) WHERE slurm_job_id IS NOT NULL;
CREATE INDEX jobs_slurm_waiting ON jobs (priority DESC, id) WHERE executor = 'slurm' AND state = 'queued' AND slurm_job_id IS NULL;
