-- Dispatch that never lies (issue #22): who asked a job to stop, when its own agent last
-- renewed its lease (not the agent's last request of any kind), an idempotent key
-- rotation, and when the lease reaper last ran (a control plane that was paused or down
-- must not count its own absence against the agents' leases).

ALTER TABLE jobs
    ADD COLUMN cancel_requested_by text,
    -- the last lease renewal by the leasing agent (claim, heartbeat listing the job)
    ADD COLUMN renewed_at timestamptz;

-- The rotation request (HMAC of the agent's request id) that produced the current key:
-- the same request retried within the grace window gets the same key back.
ALTER TABLE agents ADD COLUMN rotation_request_hash text;

CREATE TABLE agent_reaper_runs (
    id          smallint PRIMARY KEY DEFAULT 1 CONSTRAINT agent_reaper_runs_one_row CHECK (id = 1),
    last_run_at timestamptz NOT NULL
);
