"""The one way the app publishes real-time events (SignalR targets and groups).

- ``taskUpdated``: ``[task, ...]`` (``shared.api.views.task_json``; one snapshot, or
  several at once) to groups ``project:{projectId}`` and ``task:{id}``;
- ``taskLog``: ``[{taskId, from, lines: [{seq, at, level, text}]}]`` to ``task:{taskId}``;
  the lines that close a task travel instead in its terminal ``taskUpdated`` to
  ``task:{taskId}``, under the snapshot's ``log`` key (the same ``{taskId, from, lines}``
  body): one message where there were two;
- ``agentUpdated``: ``[agent]`` to group ``agents``.

Every payload is one argument, and a message may carry several of one target: the
publisher merges events queued for the same group (``shared.realtime.publisher``), so a
client handles each argument in order as if it came alone.

Reconnect contract: events are hints, the API is the truth. A task event carries the whole
task (``updatedAt`` orders snapshots); a log event carries the sequence numbers of its
lines (``from`` = the first). A client that reconnects re-reads ``GET /api/tasks/{id}``
and ``GET /api/tasks/{id}/logs?after={last seq it saw}`` and ignores lines at or below
its last seq, so nothing is lost and nothing shows twice. A client in both a project and
a task group receives ``taskUpdated`` twice; it keeps the newer ``updatedAt``.

Fewer sends, same news (issue #21, the Azure bill): a task just created is sent to its
project group only (nobody can be in its task group before the row committed, and whoever
joins after reads it); the queue positions a release refreshes go to a project group as
one ``taskUpdated`` message whose arguments are the snapshots (a client handles every
argument), and to each task's group as before.
Anyone who may list agents joins ``agents`` (readers of any project see pool health).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.realtime.port import Realtime

TASK_UPDATED = "taskUpdated"
TASK_LOG = "taskLog"
AGENT_UPDATED = "agentUpdated"
AGENTS_GROUP = "agents"


def project_group(project_id: object) -> str:
    return f"project:{project_id}"


def task_group(task_id: object) -> str:
    return f"task:{task_id}"


def publish_task_update(rt: Realtime, task_json: Mapping[str, Any]) -> bool:
    """Send the task snapshot to its project's and its own group; False if either failed."""
    task = dict(task_json)
    to_project = rt.send_to_group(project_group(task["projectId"]), TASK_UPDATED, [task])
    to_task = rt.send_to_group(task_group(task["id"]), TASK_UPDATED, [task])
    return to_project and to_task


def publish_new_task(rt: Realtime, task_json: Mapping[str, Any]) -> bool:
    """A task just committed: its project's group only. A page joins ``task:{id}`` only
    once it knows the id, which it reads from the API after the commit, so the task's own
    group has nobody who lacks this snapshot."""
    task = dict(task_json)
    return rt.send_to_group(project_group(task["projectId"]), TASK_UPDATED, [task])


def publish_task_updates(rt: Realtime, tasks_json: Iterable[Mapping[str, Any]]) -> bool:
    """Several snapshots at once (the queue positions one release refreshes): one message
    per project group carrying them all as arguments, in order, and one per task group."""
    tasks = [dict(t) for t in tasks_json]
    ok = True
    by_project: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        by_project.setdefault(str(task["projectId"]), []).append(task)
    for project_id, snapshots in by_project.items():
        ok = rt.send_to_group(project_group(project_id), TASK_UPDATED, snapshots) and ok
    for task in tasks:
        ok = rt.send_to_group(task_group(task["id"]), TASK_UPDATED, [task]) and ok
    return ok


def publish_task_end(rt: Realtime, task_json: Mapping[str, Any], lines: Iterable[Any]) -> bool:
    """A task's terminal snapshot and the log lines that closed it (stored just before):
    the snapshot to its project's group, and to its own group one ``taskUpdated`` whose
    snapshot carries the lines under ``log`` (``publish_task_log``'s body), instead of a
    ``taskLog`` and a ``taskUpdated``. Project pages show no log text, so the project's
    message is the plain snapshot. No lines: ``publish_task_update``."""
    body = _log_body(task_json["id"], lines)
    if body is None:
        return publish_task_update(rt, task_json)
    task = dict(task_json)
    to_project = rt.send_to_group(project_group(task["projectId"]), TASK_UPDATED, [task])
    to_task = rt.send_to_group(task_group(task["id"]), TASK_UPDATED, [{**task, "log": body}])
    return to_project and to_task


def _line(line: Any) -> dict[str, Any]:
    if hasattr(line, "to_json"):  # a shared.logs.LogLine
        line = line.to_json()
    at = line.get("at")
    return {"seq": int(line["seq"]),
            "at": at.isoformat().replace("+00:00", "Z") if hasattr(at, "isoformat") else at,
            "level": str(line.get("level", "info")), "text": str(line.get("text", ""))}


def publish_task_log(rt: Realtime, task_id: object, project_id: object,
                     lines: Iterable[Any]) -> bool:
    """Send new log lines to the task's group (ascending ``seq``); nothing when empty.

    ``lines`` are ``shared.logs.LogLine`` objects or mappings with ``seq, at, level, text``.

    ``project_id`` is accepted so callers need not know which groups see logs; logs go
    only to the task group, since project pages show status, not log text.
    """
    body = _log_body(task_id, lines)
    if body is None:
        return True
    return rt.send_to_group(task_group(task_id), TASK_LOG, [body])


def _log_body(task_id: object, lines: Iterable[Any]) -> dict[str, Any] | None:
    shaped = sorted((_line(line) for line in lines), key=lambda x: x["seq"])
    if not shaped:
        return None
    return {"taskId": str(task_id), "from": shaped[0]["seq"], "lines": shaped}


def publish_agent_update(rt: Realtime, agent_json: Mapping[str, Any]) -> bool:
    return rt.send_to_group(AGENTS_GROUP, AGENT_UPDATED, [dict(agent_json)])
