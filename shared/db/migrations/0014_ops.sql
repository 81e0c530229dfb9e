-- Operations as ops teams run them (#20): refreshing an environment from another one's
-- backup, and backups that say what produced them.

ALTER TABLE tasks DROP CONSTRAINT tasks_operation_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_operation_check CHECK (operation IN (
    'deploy', 'backup', 'restore', 'refresh', 'restart', 'sandbox_create', 'sandbox_delete',
    'script_run', 'noop'));

-- How long the dump took and which client tools wrote it (shown with size and sha256).
ALTER TABLE backups ADD COLUMN duration_ms bigint;
ALTER TABLE backups ADD COLUMN tool_versions jsonb;
