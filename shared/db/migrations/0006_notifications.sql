-- Notifications: per-project rules (which events, which environments, which channel) and
-- one delivery row per (event, rule), so an event reaches a channel at most once and a
-- delivery that finally fails stays visible.

CREATE TABLE notification_rules (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            text NOT NULL,
    events          text[] NOT NULL,
    -- empty: every environment of the project (sandboxes included)
    environment_ids uuid[] NOT NULL DEFAULT '{}',
    channel         text NOT NULL,
    -- Teams incoming-webhook URL: a secret (it alone lets anyone post to the channel)
    webhook_url     text,
    recipients      text[] NOT NULL DEFAULT '{}',
    enabled         boolean NOT NULL DEFAULT true,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_rules_project_name_key UNIQUE (project_id, name),
    CONSTRAINT notification_rules_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT notification_rules_events_known CHECK (
        cardinality(events) > 0 AND events <@ ARRAY[
            'task.succeeded', 'task.failed', 'task.cancelled', 'approval.requested',
            'backup.failed', 'agent.offline', 'sandbox.expiring']::text[]),
    CONSTRAINT notification_rules_channel_check CHECK (channel IN ('teams', 'email')),
    CONSTRAINT notification_rules_channel_shape CHECK (
        (channel = 'teams' AND webhook_url IS NOT NULL)
        OR (channel = 'email' AND cardinality(recipients) > 0))
);
CREATE INDEX notification_rules_project_idx ON notification_rules (project_id);

CREATE TABLE notification_deliveries (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- e.g. task:<id>:failed or sandbox:<id>:expiring:<expiry>; the idempotency key
    event_id     text NOT NULL,
    rule_id      uuid NOT NULL REFERENCES notification_rules (id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task_id      uuid REFERENCES tasks (id) ON DELETE SET NULL,
    event        text NOT NULL,
    channel      text NOT NULL,
    status       text NOT NULL DEFAULT 'pending',
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    CONSTRAINT notification_deliveries_event_rule_key UNIQUE (event_id, rule_id),
    CONSTRAINT notification_deliveries_status_check CHECK (
        status IN ('pending', 'delivered', 'failed')),
    CONSTRAINT notification_deliveries_delivered_shape CHECK (
        (status = 'delivered') = (delivered_at IS NOT NULL))
);
CREATE INDEX notification_deliveries_task_idx ON notification_deliveries (task_id);
