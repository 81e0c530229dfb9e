-- Protected environments and approvals; the queue position a task takes when it joins.

CREATE TABLE environment_protections (
    environment_id     uuid PRIMARY KEY REFERENCES environments (id) ON DELETE CASCADE,
    operations         text[] NOT NULL,
    -- [{"type": "user"|"group", "id": "..."}]
    approvers          jsonb NOT NULL,
    required_approvals integer NOT NULL DEFAULT 1,
    allow_self_approval boolean NOT NULL DEFAULT false,
    timeout_minutes    numeric(10, 2) NOT NULL DEFAULT 1440,
    updated_by         text NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT environment_protections_operations_nonempty CHECK (cardinality(operations) > 0),
    CONSTRAINT environment_protections_approvers_array CHECK (
        jsonb_typeof(approvers) = 'array' AND jsonb_array_length(approvers) > 0),
    CONSTRAINT environment_protections_required_range CHECK (required_approvals BETWEEN 1 AND 10),
    CONSTRAINT environment_protections_timeout_range CHECK (timeout_minutes BETWEEN 0.05 AND 43200)
);

CREATE TABLE approvals (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id     uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    approver    text NOT NULL,
    approver_name text NOT NULL,
    decision    text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT approvals_decision_check CHECK (decision IN ('approve', 'reject')),
    CONSTRAINT approvals_one_per_approver UNIQUE (task_id, approver)
);

-- A task joins its environment's queue when it may run: at once, or once approved.
-- The queue is ordered by this number, so an approved task queues behind those that
-- joined while it waited for approval.
CREATE SEQUENCE task_queue_seq;
ALTER TABLE tasks
    ADD COLUMN queue_seq bigint,
    ADD COLUMN approval jsonb;
UPDATE tasks SET queue_seq = nextval('task_queue_seq') WHERE queue_seq IS NULL;
ALTER TABLE tasks ALTER COLUMN queue_seq SET DEFAULT nextval('task_queue_seq');
DROP INDEX tasks_environment_open_idx;
CREATE INDEX tasks_environment_queue_idx ON tasks (environment_id, queue_seq)
    WHERE status IN ('queued', 'waiting', 'running') AND queue_seq IS NOT NULL;
