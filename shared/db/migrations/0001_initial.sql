-- The control plane's models. Rules live here as constraints, not only in Python.

CREATE TABLE projects (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_slug_key UNIQUE (slug),
    CONSTRAINT projects_slug_format CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT projects_name_length CHECK (char_length(name) BETWEEN 1 AND 200)
);

CREATE TABLE environments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    slug        text NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL DEFAULT 'shared',
    -- where operations run: {"type": "agent", "pool": "local", "labels": [...]} or
    -- {"type": "appservice", "subscriptionId": ..., "resourceGroup": ..., "site": ...}
    target      jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- which database backups/restores act on: {"connection": "<name known to the agent>"}
    database    jsonb NOT NULL DEFAULT '{}'::jsonb,
    parent_id   uuid REFERENCES environments (id) ON DELETE RESTRICT,
    expires_at  timestamptz,
    url         text,
    created_by  text NOT NULL DEFAULT 'system',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT environments_project_slug_key UNIQUE (project_id, slug),
    CONSTRAINT environments_slug_format CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT environments_kind_check CHECK (kind IN ('shared', 'sandbox')),
    -- a sandbox always has a parent and an expiry; a shared environment has neither
    CONSTRAINT environments_sandbox_shape CHECK (
        (kind = 'sandbox' AND parent_id IS NOT NULL AND expires_at IS NOT NULL)
        OR (kind = 'shared' AND parent_id IS NULL AND expires_at IS NULL)),
    CONSTRAINT environments_target_object CHECK (jsonb_typeof(target) = 'object'),
    CONSTRAINT environments_database_object CHECK (jsonb_typeof(database) = 'object')
);
CREATE INDEX environments_expiry_idx ON environments (expires_at) WHERE kind = 'sandbox';

CREATE TABLE tasks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- arrival order: FIFO per environment and cursor pagination
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    environment_id  uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    operation       text NOT NULL,
    status          text NOT NULL DEFAULT 'queued',
    progress        smallint NOT NULL DEFAULT 0,
    parameters      jsonb NOT NULL DEFAULT '{}'::jsonb,
    result          jsonb,
    error           text,
    reason          text,
    requested_by    text NOT NULL,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    CONSTRAINT tasks_operation_check CHECK (operation IN (
        'deploy', 'backup', 'restore', 'restart', 'sandbox_create', 'sandbox_delete',
        'script_run', 'noop')),
    CONSTRAINT tasks_status_check CHECK (status IN (
        'queued', 'waiting', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    CONSTRAINT tasks_progress_range CHECK (progress BETWEEN 0 AND 100),
    -- a terminal task has a finish time and says why it ended
    CONSTRAINT tasks_terminal_shape CHECK (
        (status IN ('succeeded', 'failed', 'cancelled', 'timed_out'))
        = (finished_at IS NOT NULL)),
    CONSTRAINT tasks_failure_has_error CHECK (
        status NOT IN ('failed', 'cancelled', 'timed_out') OR error IS NOT NULL),
    CONSTRAINT tasks_idempotency_key UNIQUE (requested_by, idempotency_key)
);
CREATE INDEX tasks_environment_open_idx ON tasks (environment_id, seq)
    WHERE status IN ('queued', 'waiting', 'running');
CREATE INDEX tasks_project_idx ON tasks (project_id, seq DESC);
CREATE INDEX tasks_status_idx ON tasks (status, seq DESC);

-- One row per environment that has a task holding it: operations never overlap.
CREATE TABLE environment_leases (
    environment_id uuid PRIMARY KEY REFERENCES environments (id) ON DELETE CASCADE,
    task_id        uuid NOT NULL UNIQUE REFERENCES tasks (id) ON DELETE CASCADE,
    acquired_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE activity_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,
    action         text NOT NULL,
    project_id     uuid REFERENCES projects (id) ON DELETE SET NULL,
    environment_id uuid REFERENCES environments (id) ON DELETE SET NULL,
    task_id        uuid REFERENCES tasks (id) ON DELETE SET NULL,
    details        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX activity_log_project_idx ON activity_log (project_id, id DESC);
CREATE INDEX activity_log_actor_idx ON activity_log (actor, id DESC);
CREATE INDEX activity_log_task_idx ON activity_log (task_id);

CREATE TABLE agent_pools (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_pools_name_key UNIQUE (name),
    CONSTRAINT agent_pools_name_format CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
);

CREATE TABLE registration_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pool_id     uuid NOT NULL REFERENCES agent_pools (id) ON DELETE CASCADE,
    token_hash  text NOT NULL UNIQUE,
    multi_use   boolean NOT NULL DEFAULT false,
    uses        integer NOT NULL DEFAULT 0,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT registration_tokens_single_use CHECK (multi_use OR uses <= 1)
);

CREATE TABLE agents (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pool_id           uuid NOT NULL REFERENCES agent_pools (id) ON DELETE CASCADE,
    name              text NOT NULL,
    key_hash          text NOT NULL,
    key_expires_at    timestamptz NOT NULL,
    -- the key being rotated out stays valid briefly so rotation needs no downtime
    previous_key_hash text,
    previous_key_expires_at timestamptz,
    enabled           boolean NOT NULL DEFAULT true,
    version           text NOT NULL DEFAULT '',
    os                text NOT NULL DEFAULT '',
    capacity          integer NOT NULL DEFAULT 1,
    last_heartbeat_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agents_pool_name_key UNIQUE (pool_id, name),
    CONSTRAINT agents_capacity_range CHECK (capacity BETWEEN 1 AND 64)
);
CREATE UNIQUE INDEX agents_key_hash_idx ON agents (key_hash);

CREATE TABLE agent_labels (
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    label    text NOT NULL,
    PRIMARY KEY (agent_id, label),
    CONSTRAINT agent_labels_format CHECK (label ~ '^[A-Za-z0-9._:=-]{1,100}$')
);

CREATE TABLE jobs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    task_id          uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    pool_id          uuid NOT NULL REFERENCES agent_pools (id) ON DELETE RESTRICT,
    demands          text[] NOT NULL DEFAULT '{}',
    kind             text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'pending',
    agent_id         uuid REFERENCES agents (id) ON DELETE SET NULL,
    attempts         integer NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    result           jsonb,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    claimed_at       timestamptz,
    finished_at      timestamptz,
    CONSTRAINT jobs_status_check CHECK (status IN (
        'pending', 'leased', 'succeeded', 'failed', 'cancelled', 'lost')),
    CONSTRAINT jobs_leased_shape CHECK (
        status <> 'leased' OR (agent_id IS NOT NULL AND lease_expires_at IS NOT NULL))
);
CREATE INDEX jobs_pending_idx ON jobs (pool_id, seq) WHERE status = 'pending';
CREATE INDEX jobs_leased_idx ON jobs (lease_expires_at) WHERE status = 'leased';
CREATE INDEX jobs_task_idx ON jobs (task_id);

CREATE TABLE backups (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    task_id        uuid REFERENCES tasks (id) ON DELETE SET NULL,
    location       text NOT NULL,
    size_bytes     bigint NOT NULL,
    sha256         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT backups_size_nonnegative CHECK (size_bytes >= 0),
    CONSTRAINT backups_sha256_format CHECK (sha256 ~ '^[0-9a-f]{64}$')
);
CREATE INDEX backups_environment_idx ON backups (environment_id, created_at DESC);

CREATE TABLE backup_schedules (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    cron           text NOT NULL,
    timezone       text NOT NULL DEFAULT 'UTC',
    retain_count   integer,
    retain_days    integer,
    enabled        boolean NOT NULL DEFAULT true,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_slot_at   timestamptz,
    CONSTRAINT backup_schedules_retain_count_positive CHECK (retain_count IS NULL OR retain_count > 0),
    CONSTRAINT backup_schedules_retain_days_positive CHECK (retain_days IS NULL OR retain_days > 0)
);

-- One row per fired schedule slot: two hosts racing fire a slot at most once.
CREATE TABLE backup_schedule_slots (
    schedule_id uuid NOT NULL REFERENCES backup_schedules (id) ON DELETE CASCADE,
    slot_at     timestamptz NOT NULL,
    task_id     uuid REFERENCES tasks (id) ON DELETE SET NULL,
    PRIMARY KEY (schedule_id, slot_at)
);

CREATE TABLE role_assignments (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL project = a global assignment
    project_id     uuid REFERENCES projects (id) ON DELETE CASCADE,
    principal_type text NOT NULL,
    principal_id   text NOT NULL,
    role           text NOT NULL,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_assignments_principal_type_check CHECK (
        principal_type IN ('user', 'group', 'service')),
    CONSTRAINT role_assignments_role_check CHECK (role IN ('reader', 'operator', 'admin'))
);
CREATE UNIQUE INDEX role_assignments_unique_idx ON role_assignments (
    COALESCE(project_id, '00000000-0000-0000-0000-000000000000'::uuid),
    principal_type, principal_id);
