-- The Azure edge (#18): secrets kept apart from task parameters, named pipeline keys
-- stored as keyed hashes, stable user ids beside display names, and no role grants to
-- the built-in "everyone" roles.

-- Secret parameter values (a package URL's query, a script's secret parameters): read by
-- the steps that need them, masked in logs, never part of the task's JSON.
ALTER TABLE tasks ADD COLUMN secrets jsonb;

-- Pipeline keys: HMAC-SHA256 under the server secret, named, expiring, rotatable.
CREATE TABLE pipeline_keys (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text NOT NULL,
    key_hash            text NOT NULL,
    previous_hash       text,
    previous_expires_at timestamptz,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    rotated_at          timestamptz,
    last_used_at        timestamptz,
    revoked_at          timestamptz,
    CONSTRAINT pipeline_keys_name_format CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
);
CREATE UNIQUE INDEX pipeline_keys_active_name_idx ON pipeline_keys (name) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX pipeline_keys_hash_idx ON pipeline_keys (key_hash);
CREATE INDEX pipeline_keys_previous_hash_idx ON pipeline_keys (previous_hash)
    WHERE previous_hash IS NOT NULL;

-- Stable identities: actors are keyed by id (a user's userId/oid, service:<name>, or a
-- system actor); the display name is kept beside them, for showing only.
ALTER TABLE tasks ADD COLUMN requested_by_name text;
ALTER TABLE activity_log ADD COLUMN actor_name text;
UPDATE tasks SET requested_by_name = requested_by;
UPDATE activity_log SET actor_name = actor;
-- Rows written before were keyed by display name. A name cannot be turned into an id, so
-- user actors become "name:<display name>": shown as before, never matching an id (no
-- self-approval, no double approval, no idempotency replay across users by name).
CREATE FUNCTION pg_temp.legacy_actor(actor text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN actor IS NULL
                  OR actor ~ '^(service|agent|name):'
                  OR actor IN ('system', 'scheduler', 'sweeper', 'notifier', 'sandbox-expiry',
                               'reaper', 'retention', 'test')
                THEN actor ELSE 'name:' || actor END
$$;
UPDATE tasks SET requested_by = pg_temp.legacy_actor(requested_by);
UPDATE activity_log SET actor = pg_temp.legacy_actor(actor);
UPDATE approvals SET approver = pg_temp.legacy_actor(approver);

-- "Everyone signed in" and "everyone" are not roles anyone can be granted.
DELETE FROM role_assignments
    WHERE principal_type = 'group' AND principal_id IN ('authenticated', 'anonymous');
ALTER TABLE role_assignments ADD CONSTRAINT role_assignments_no_builtin_roles
    CHECK (NOT (principal_type = 'group' AND principal_id IN ('authenticated', 'anonymous')));
