"""The function app indexes cleanly and exposes exactly the expected functions."""

from function_app import app

EXPECTED = {
    "health": ("httpTrigger", "health"),
    "negotiate": ("httpTrigger", "negotiate"),
    "realtime_group": ("httpTrigger", "realtime/groups/{group}"),
    "agent_register": ("httpTrigger", "agent/register"),
    "agent_rotate_key": ("httpTrigger", "agent/key"),
    "agent_heartbeat": ("httpTrigger", "agent/heartbeat"),
    "agent_next_job": ("httpTrigger", "agent/jobs/next"),
    "agent_job_logs": ("httpTrigger", "agent/jobs/{job}/logs"),
    "agent_job_result": ("httpTrigger", "agent/jobs/{job}/result"),
    "list_pools": ("httpTrigger", "pools"),
    "create_pool": ("httpTrigger", "pools"),
    "issue_registration_token": ("httpTrigger", "pools/{pool}/registration-tokens"),
    "list_pool_agents": ("httpTrigger", "pools/{pool}/agents"),
    "change_agent": ("httpTrigger", "pools/{pool}/agents/{agent}/{action:alpha}"),
    "agent_lease_reaper": ("timerTrigger", None),
    "agent_offline_detector": ("timerTrigger", None),
    "artifact": ("httpTrigger", "artifacts/{*name}"),
    # the task pipeline
    "list_projects": ("httpTrigger", "projects"),
    "create_project": ("httpTrigger", "projects"),
    "project_item": ("httpTrigger", "projects/{project}"),
    "environments": ("httpTrigger", "projects/{project}/environments"),
    "environment_item": ("httpTrigger", "projects/{project}/environments/{env}"),
    "project_scripts": ("httpTrigger", "projects/{project}/scripts"),
    "delete_script": ("httpTrigger", "projects/{project}/scripts/{script}"),
    "deploy": ("httpTrigger", "projects/{project}/environments/{env}/deployments"),
    "backup": ("httpTrigger", "projects/{project}/environments/{env}/backups"),
    "list_backups": ("httpTrigger", "projects/{project}/environments/{env}/backups"),
    "restore": ("httpTrigger", "projects/{project}/environments/{env}/restores"),
    "restart": ("httpTrigger", "projects/{project}/environments/{env}/restarts"),
    "create_sandbox": ("httpTrigger", "projects/{project}/environments/{env}/sandboxes"),
    "run_script": ("httpTrigger",
                   "projects/{project}/environments/{env}/scripts/{script}/runs"),
    "list_tasks": ("httpTrigger", "tasks"),
    "get_task": ("httpTrigger", "tasks/{id}"),
    "task_logs": ("httpTrigger", "tasks/{id}/logs"),
    "cancel_task": ("httpTrigger", "tasks/{id}/cancel"),
    "list_activity": ("httpTrigger", "activity"),
    "me": ("httpTrigger", "me"),
    "openapi_document": ("httpTrigger", "openapi.json"),
    "api_docs": ("httpTrigger", "docs/{*asset}"),
    "start_task_orchestration": ("serviceBusTrigger", None),
    "sweep_tasks": ("timerTrigger", None),
    "acquire_environment": ("activityTrigger", None),
    "start_step": ("activityTrigger", None),
    "append_log": ("activityTrigger", None),
    "finish_task": ("activityTrigger", None),
    "dispatch_job": ("activityTrigger", None),
    "abandon_job": ("activityTrigger", None),
    "record_backup": ("activityTrigger", None),
    "create_sandbox_environment": ("activityTrigger", None),
    "appservice_set_version": ("activityTrigger", None),
    "appservice_restart_slot": ("activityTrigger", None),
    "appservice_health_check": ("activityTrigger", None),
    "appservice_swap": ("activityTrigger", None),
    "deploy_orchestrator": ("orchestrationTrigger", None),
    "backup_orchestrator": ("orchestrationTrigger", None),
    "restore_orchestrator": ("orchestrationTrigger", None),
    "restart_orchestrator": ("orchestrationTrigger", None),
    "sandbox_create_orchestrator": ("orchestrationTrigger", None),
    "script_run_orchestrator": ("orchestrationTrigger", None),
}


def test_function_app_lists_expected_functions_with_bindings() -> None:
    found = {}
    for fn in app.get_functions():
        trigger = fn.get_trigger()
        found[fn.get_function_name()] = (trigger.get_binding_name(),
                                         getattr(trigger, "route", None))
    assert found == EXPECTED
