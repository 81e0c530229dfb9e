"""Repositories: SQL kept as SQL, one module per model, functions over a connection.

Callers own the transaction (``Database.transaction()``), so one business step that
touches several tables commits or rolls back as a whole.
"""

from shared.db._database import register_constraint_fields

register_constraint_fields({
    "projects_slug_key": "slug",
    "projects_slug_format": "slug",
    "projects_name_length": "name",
    "environments_project_slug_key": "slug",
    "environments_slug_format": "slug",
    "environments_kind_check": "kind",
    "environments_sandbox_shape": "kind",
    "environments_target_object": "target",
    "environments_database_object": "database",
    "environments_parent_id_fkey": "parentId",
    "environments_project_id_fkey": "projectId",
    "tasks_operation_check": "operation",
    "tasks_status_check": "status",
    "tasks_progress_range": "progress",
    "tasks_idempotency_key": "Idempotency-Key",
    "tasks_environment_id_fkey": "environmentId",
    "agent_pools_name_key": "name",
    "agent_pools_name_format": "name",
    "agents_pool_name_key": "name",
    "agents_capacity_range": "capacity",
    "agent_labels_format": "labels",
    "jobs_status_check": "status",
    "backups_sha256_format": "sha256",
    "backups_size_nonnegative": "sizeBytes",
    "backup_schedules_retain_count_positive": "retainCount",
    "backup_schedules_retain_days_positive": "retainDays",
    "role_assignments_role_check": "role",
    "role_assignments_principal_type_check": "principalType",
    "role_assignments_unique_idx": "principalId",
})
