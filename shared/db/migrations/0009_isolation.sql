-- Tenant isolation: execution resources (agent pools, database connections, Kubernetes
-- clusters, App Service sites) are registered by global admins and granted to projects
-- (project NULL: every project); a task records the plan it was requested (and approved)
-- with, and dispatch runs exactly that plan.

CREATE TABLE resources (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind        text NOT NULL,
    -- pool / connection / cluster: the name the environment and the agent use;
    -- site: "<subscription id>/<resource group>/<site>", lower case
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    -- non-secret facts only (secrets stay in the agent's config or Key Vault)
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT resources_kind_check CHECK (kind IN ('pool', 'connection', 'cluster', 'site')),
    CONSTRAINT resources_kind_name_key UNIQUE (kind, name),
    CONSTRAINT resources_name_length CHECK (char_length(name) BETWEEN 1 AND 300),
    CONSTRAINT resources_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE TABLE resource_grants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id uuid NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    project_id  uuid REFERENCES projects (id) ON DELETE CASCADE,
    -- clusters: the namespaces the project may use; NULL for other kinds
    namespaces  text[],
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX resource_grants_one_per_project ON resource_grants (
    resource_id, COALESCE(project_id, '00000000-0000-0000-0000-000000000000'::uuid));
CREATE INDEX resource_grants_project_idx ON resource_grants (project_id);

-- What the task was requested with: resources, script argv; approvals approve it.
ALTER TABLE tasks ADD COLUMN plan jsonb;

-- Existing installations keep working: what environments already use is registered and
-- granted to their projects (pools keep their registration in agent_pools as well).
INSERT INTO resources (kind, name, description, created_by)
    SELECT 'pool', name, description, 'migration 0009' FROM agent_pools
    ON CONFLICT DO NOTHING;
CREATE TEMPORARY TABLE used_resources ON COMMIT DROP AS
    SELECT project_id, 'pool' AS kind, target->>'pool' AS name, NULL::text AS namespace
      FROM environments WHERE COALESCE(target->>'pool', '') <> ''
    UNION
    SELECT project_id, 'connection', database->>'connection', NULL
      FROM environments WHERE COALESCE(database->>'connection', '') <> ''
    UNION
    SELECT project_id, 'cluster', target->>'cluster', COALESCE(target->>'namespace', 'default')
      FROM environments WHERE COALESCE(target->>'cluster', '') <> ''
    UNION
    SELECT project_id, 'site', lower(concat_ws('/', target->>'subscriptionId',
                                               target->>'resourceGroup', target->>'site')), NULL
      FROM environments WHERE target->>'type' = 'appservice';
INSERT INTO resources (kind, name, created_by)
    SELECT DISTINCT kind, name, 'migration 0009' FROM used_resources
    ON CONFLICT DO NOTHING;
INSERT INTO resource_grants (resource_id, project_id, namespaces, created_by)
    SELECT r.id, u.project_id,
           CASE WHEN u.kind = 'cluster' THEN array_agg(DISTINCT u.namespace) END,
           'migration 0009'
      FROM used_resources u JOIN resources r ON r.kind = u.kind AND r.name = u.name
     GROUP BY r.id, u.project_id, u.kind
    ON CONFLICT DO NOTHING;
