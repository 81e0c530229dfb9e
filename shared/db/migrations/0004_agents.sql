-- Agents: liveness as published, revocation, registration-token limits, per-job retry
-- budget, and an outbox for the orchestration wake-up of finished jobs.

-- What was last published about the agent's liveness, so "went offline" is announced once.
ALTER TABLE agents
    ADD COLUMN online boolean NOT NULL DEFAULT false,
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN key_rotated_at timestamptz;
CREATE INDEX agents_online_idx ON agents (last_heartbeat_at) WHERE online;

ALTER TABLE registration_tokens
    ADD COLUMN max_uses integer,
    ADD CONSTRAINT registration_tokens_max_uses_positive CHECK (max_uses IS NULL OR max_uses > 0);

-- A job of an operation that is safe to repeat may be re-leased after its agent vanished;
-- everything else runs at most once (max_attempts = 1).
ALTER TABLE jobs
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 1,
    ADD COLUMN progress smallint,
    -- the orchestration is woken by a durable external event; until that call succeeds the
    -- job stays in this outbox and the reaper timer delivers it again
    ADD COLUMN event_delivered_at timestamptz,
    ADD COLUMN event_attempts integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT jobs_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 10);
CREATE INDEX jobs_event_outbox_idx ON jobs (finished_at)
    WHERE finished_at IS NOT NULL AND event_delivered_at IS NULL;
CREATE INDEX jobs_agent_leased_idx ON jobs (agent_id) WHERE status = 'leased';
