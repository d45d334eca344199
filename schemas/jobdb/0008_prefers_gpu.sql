-- 0008: a job whose processor has a GPU implementation and whose rule lets the device be chosen
-- (device "auto") prefers a GPU: while a live GPU worker of its Orthanc exists, CPU workers leave
-- it for ProcNode.GpuWaitSeconds after it was queued, then take it.
ALTER TABLE jobs ADD COLUMN prefers_gpu boolean NOT NULL DEFAULT false;
