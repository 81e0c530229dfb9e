-- Task pipeline: enqueue bookkeeping for the outbox sweeper, and the script catalogue.

ALTER TABLE tasks
    ADD COLUMN enqueue_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN last_enqueued_at timestamptz,
    -- set by a cancel request; running steps check it at their boundaries
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
CREATE INDEX tasks_queued_idx ON tasks (created_at) WHERE status = 'queued';

-- Approved scripts a project may run: argv templates with typed parameters, never a shell.
CREATE TABLE scripts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    argv            jsonb NOT NULL,
    parameters      jsonb NOT NULL DEFAULT '[]'::jsonb,
    timeout_seconds integer NOT NULL DEFAULT 600,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scripts_project_name_key UNIQUE (project_id, name),
    CONSTRAINT scripts_name_format CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT scripts_argv_array CHECK (jsonb_typeof(argv) = 'array' AND jsonb_array_length(argv) > 0),
    CONSTRAINT scripts_parameters_array CHECK (jsonb_typeof(parameters) = 'array'),
    CONSTRAINT scripts_timeout_range CHECK (timeout_seconds BETWEEN 1 AND 86400)
);
