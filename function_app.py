"""The CloudOps function app: a table of contents. Each feature is a blueprint."""

import azure.durable_functions as df
import azure.functions as func

from functions.activities.approvals import bp as approval_activities_bp
from functions.activities.appservice import bp as appservice_activities_bp
from functions.activities.environments import bp as environment_activities_bp
from functions.activities.jobs import bp as job_activities_bp
from functions.activities.maintenance import bp as maintenance_activities_bp
from functions.activities.notify import bp as notify_activities_bp
from functions.activities.tasks import bp as task_activities_bp
from functions.agent_timers import bp as agent_timers_bp
from functions.dead_letters import bp as dead_letters_bp
from functions.http.access import bp as access_bp
from functions.http.agent_pools import bp as agent_pools_bp
from functions.http.agents import bp as agents_bp
from functions.http.artifacts import bp as artifacts_bp
from functions.http.auth_roles import bp as auth_roles_bp
from functions.http.backups import bp as backups_bp
from functions.http.health import bp as health_bp
from functions.http.notifications import bp as notifications_bp
from functions.http.openapi import bp as openapi_bp
from functions.http.operations import bp as operations_bp
from functions.http.pipeline_keys import bp as pipeline_keys_bp
from functions.http.projects import bp as projects_bp
from functions.http.realtime import bp as realtime_bp
from functions.http.resources import bp as resources_bp
from functions.http.schedules import bp as schedules_bp
from functions.http.tasks import bp as tasks_bp
from functions.orchestrators import (
    backup,
    deploy,
    refresh,
    restart,
    restore,
    sandbox,
    sandbox_delete,
    script_run,
)
from functions.task_queue import bp as task_queue_bp
from functions.timers import bp as upkeep_timers_bp

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
blueprint: func.Blueprint | df.Blueprint

for blueprint in (health_bp, artifacts_bp):
    app.register_functions(blueprint)
for blueprint in (agents_bp, agent_pools_bp, agent_timers_bp, resources_bp):
    app.register_functions(blueprint)
app.register_functions(realtime_bp)
app.register_functions(pipeline_keys_bp)
app.register_functions(auth_roles_bp)  # the Static Web App's rolesSource
# The task pipeline: API → Service Bus → orchestrations → activities.
for blueprint in (projects_bp, operations_bp, tasks_bp, openapi_bp, task_queue_bp,
                  task_activities_bp, job_activities_bp, environment_activities_bp,
                  appservice_activities_bp, access_bp, approval_activities_bp,
                  deploy.bp, backup.bp, restore.bp, restart.bp, sandbox.bp, script_run.bp):
    app.register_functions(blueprint)
app.register_functions(refresh.bp)  # restore from another environment's backup (#20)
app.register_functions(backups_bp)  # backup details, download URLs, deletion (#20)
app.register_functions(dead_letters_bp)  # a dead-lettered task message fails its task
# Notifications and timer-driven upkeep: schedules, retention, sandbox expiry.
for blueprint in (notifications_bp, schedules_bp, notify_activities_bp,
                  maintenance_activities_bp, upkeep_timers_bp, sandbox_delete.bp):
    app.register_functions(blueprint)
