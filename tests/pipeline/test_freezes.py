"""Change freezes and business hours end to end on the local host (real Durable timers,
real Postgres): a held task waits saying until when and runs when the window ends; a
refusing window turns the request away with the reason; an admin's override lets held
tasks run, recorded with its reason; scheduled backups respect refusing windows; bad
windows are refused naming the field, with nothing written."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import RunningHost
from tests.pipeline.test_pipeline_e2e import admin, make_env, wait_for  # noqa: F401

AMS = ZoneInfo("Europe/Amsterdam")


def local(at: datetime) -> str:
    return at.astimezone(AMS).strftime("%Y-%m-%dT%H:%M:%S")


def freeze(name: str, operations: list[str], start: datetime, end: datetime,
           mode: str = "hold") -> dict[str, Any]:
    return {"name": name, "type": "freeze", "timezone": "Europe/Amsterdam",
            "operations": operations, "mode": mode, "start": local(start), "end": local(end)}


def logs(admin: Any, host: RunningHost, task_id: str) -> str:  # noqa: F811
    items = admin.get(host.url(f"/api/tasks/{task_id}/logs")).json()["items"]
    return "\n".join(x["text"] for x in items)


def test_a_held_deploy_waits_saying_until_when_and_runs_when_the_freeze_ends(
        running_host: RunningHost, admin: Any) -> None:  # noqa: F811
    project, env = make_env(admin, running_host)
    base = running_host.url(f"/api/projects/{project}/environments/{env}")
    now = datetime.now(UTC)
    ends = (now + timedelta(seconds=6)).replace(microsecond=0)  # local times have seconds
    r = admin.put(f"{base}/freezes", json={"windows": [
        freeze("release", ["deploy"], now - timedelta(minutes=1), ends)]})
    assert r.status_code == 200, r.text
    assert r.json()["windows"][0]["mode"] == "hold"

    r = admin.post(f"{base}/deployments", json={"version": "1.2.3"})
    assert r.status_code == 202, r.text
    held = wait_for(admin, running_host, r.json()["id"], statuses={"waiting"})
    assert held["reason"].startswith("held: change freeze 'release': frozen until ")
    assert held["reason"].endswith(f"{ends.astimezone(AMS):%A %H:%M} Europe/Amsterdam")
    other = admin.post(f"{base}/restarts", json={"workload": "web"})  # not chosen: runs now
    ran = wait_for(admin, running_host, other.json()["id"])
    assert ran["status"] == "succeeded", (ran["reason"], ran.get("error"))

    done = wait_for(admin, running_host, r.json()["id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert datetime.now(UTC) >= ends
    assert "held: change freeze 'release'" in logs(admin, running_host, done["id"])


def test_a_refusing_window_turns_the_request_away_and_an_override_lets_it_through(
        running_host: RunningHost, admin: Any) -> None:  # noqa: F811
    project, env = make_env(admin, running_host)
    base = running_host.url(f"/api/projects/{project}/environments/{env}")
    now = datetime.now(UTC)
    r = admin.put(f"{base}/freezes", json={"windows": [
        freeze("audit", ["restart"], now - timedelta(hours=1), now + timedelta(days=1),
               mode="refuse"),
        freeze("audit-hold", ["deploy"], now - timedelta(hours=1), now + timedelta(days=1))]})
    assert r.status_code == 200, r.text

    refused = admin.post(f"{base}/restarts", json={"workload": "web"})
    assert refused.status_code == 409, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert "restart is refused: change freeze 'audit': frozen until" in refused.json()["detail"]
    assert "override" in refused.json()["detail"]

    held = admin.post(f"{base}/deployments", json={"version": "9"}).json()
    assert wait_for(admin, running_host, held["id"], statuses={"waiting"})["reason"].startswith(
        "held: change freeze 'audit-hold'")
    no_reason = admin.post(f"{base}/freezes/override", json={"reason": " "})
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"

    r = admin.post(f"{base}/freezes/override", json={"reason": "hotfix INC-42",
                                                     "minutes": 30})
    assert r.status_code == 201, r.text
    assert r.json()["override"]["by"] == "alice" and r.json()["override"]["reason"] == (
        "hotfix INC-42")
    done = wait_for(admin, running_host, held["id"], timeout=30)  # woken, not polled
    assert done["status"] == "succeeded", done
    assert ("change freeze 'audit-hold' overridden by alice" in
            logs(admin, running_host, done["id"]))
    assert admin.post(f"{base}/restarts", json={"workload": "web"}).status_code == 202
    actions = admin.get(running_host.url(f"/api/activity?project={project}")).json()["items"]
    overridden = [a for a in actions if a["action"] == "freeze.overridden"]
    assert overridden and overridden[0]["details"]["reason"] == "hotfix INC-42"


def test_removing_the_window_releases_a_held_task_at_once(
        running_host: RunningHost, admin: Any) -> None:  # noqa: F811
    project, env = make_env(admin, running_host)
    base = running_host.url(f"/api/projects/{project}/environments/{env}")
    now = datetime.now(UTC)
    admin.put(f"{base}/freezes", json={"windows": [
        freeze("quiet", ["restart"], now - timedelta(hours=1), now + timedelta(days=3))]})
    task = admin.post(f"{base}/restarts", json={"workload": "web"}).json()
    assert wait_for(admin, running_host, task["id"], statuses={"waiting"})["reason"].startswith(
        "held: change freeze 'quiet'")
    started = time.monotonic()
    assert admin.put(f"{base}/freezes", json={"windows": []}).status_code == 200
    assert wait_for(admin, running_host, task["id"])["status"] == "succeeded"
    assert time.monotonic() - started < 15  # the change woke it; the poll is 15 minutes


def test_bad_windows_are_refused_naming_the_field_and_nothing_is_written(
        running_host: RunningHost, admin: Any) -> None:  # noqa: F811
    project, env = make_env(admin, running_host)
    base = running_host.url(f"/api/projects/{project}/environments/{env}")
    for window, field in (
            ({"name": "x", "type": "freeze", "timezone": "Mars/Olympus",
              "operations": ["deploy"], "start": "2026-12-01T00:00",
              "end": "2026-12-02T00:00"}, "windows.0.timezone"),
            ({"name": "x", "type": "freeze", "timezone": "Europe/Amsterdam",
              "operations": ["deploy"], "start": "2026-12-01T00:00"}, "windows.0.end"),
            ({"name": "x", "type": "business_hours", "timezone": "Europe/Amsterdam",
              "operations": ["deploy"], "days": ["mon"], "opens": "18:00",
              "closes": "08:00"}, "windows.0.closes")):
        r = admin.put(f"{base}/freezes", json={"windows": [window]})
        assert r.status_code == 422, r.text
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json()["field"] == field, r.json()
    assert admin.get(f"{base}/freezes").json() == {"windows": [], "override": None,
                                                   "updatedBy": None, "updatedAt": None}
