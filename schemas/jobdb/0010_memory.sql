-- 0010: memory in requirements and capabilities. Each worker pool says how much host memory its
-- machine has and how much device memory its GPU has (0: unknown); a job is claimed only by a
-- worker with at least the memory the job is estimated to need (jobs.host_memory_bytes and
-- jobs.device_memory_bytes, from migration 0009), and a job no live worker can hold says so.
ALTER TABLE workers ADD COLUMN host_memory_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN gpu_memory_bytes bigint NOT NULL DEFAULT 0;
