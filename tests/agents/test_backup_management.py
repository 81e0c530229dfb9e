"""Backups an ops engineer can manage, with a real agent, the local host and Postgres:
details (size, duration, sha256, the pg_dump version), a short-lived download URL whose
bytes match the sha256, deletion (audited, artifact first), and a backup whose artifact
storage dropped is refused for restore at request time and forgotten after the next
good backup."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import requests

from tests.agents.conftest import ControlPlane, start_agent, stop_agent
from tests.agents.test_refresh import _wait, two_databases  # noqa: F401 (fixture)


def test_backup_details_download_delete_and_a_gone_artifact(
        control_plane: ControlPlane, two_databases: tuple[str, str],  # noqa: F811
        tmp_path: Path) -> None:
    from shared.services import services

    plane, (prod, _) = control_plane, two_databases
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=[], connections={"prod": prod})
    try:
        slug = f"bm-{secrets.token_hex(3)}"
        assert plane.request("POST", "/api/projects", headers=plane.admin,
                             json={"slug": slug, "name": slug}).status_code == 201
        resp = plane.request("POST", f"/api/projects/{slug}/environments", headers=plane.admin,
                             json={"slug": "prod", "name": "prod",
                                   "database": {"connection": "prod"},
                                   "target": {"type": "agent", "pool": pool}})
        assert resp.status_code == 201, resp.text
        env = f"/api/projects/{slug}/environments/prod"
        ids = []
        for _ in range(2):
            task = _wait(plane, plane.request("POST", f"{env}/backups", headers=plane.admin,
                                              json={}).json()["id"])
            assert task["status"] == "succeeded", (task, agent.output()[-2000:])
            ids.append(task["result"]["backup"]["id"])
        first, second = ids

        detail = plane.request("GET", f"{env}/backups/{first}", headers=plane.admin).json()
        assert detail["artifactStored"] is True and detail["sizeBytes"] > 0
        assert detail["durationMs"] >= 0 and detail["toolVersions"]["pg_dump"][0].isdigit()
        link = plane.request("POST", f"{env}/backups/{first}/download", headers=plane.admin)
        assert link.status_code == 200, link.text
        body = requests.get(link.json()["url"], timeout=30).content
        assert hashlib.sha256(body).hexdigest() == detail["sha256"] == link.json()["sha256"]
        assert link.json()["expiresAt"]

        # deleting: artifact and row go, the activity log says who
        assert plane.request("DELETE", f"{env}/backups/{first}",
                             headers=plane.admin).status_code == 204
        assert requests.get(link.json()["url"], timeout=30).status_code == 404
        assert plane.request("GET", f"{env}/backups/{first}",
                             headers=plane.admin).status_code == 404
        actions = plane.request("GET", f"/api/activity?project={slug}",
                                headers=plane.admin).json()["items"]
        assert {"backup.deleted", "backup.download_issued"} <= {a["action"] for a in actions}
        resp = plane.request("POST", f"{env}/restores", headers=plane.admin,
                             json={"backupId": first})
        assert resp.status_code == 404 and resp.json()["field"] == "backupId"

        # the storage lifecycle rule removes the second one's artifact behind our back
        artifacts = services().artifacts
        location = plane.db.fetch_one("SELECT location FROM backups WHERE id = %s",
                                      (second,))["location"]
        artifacts.delete(artifacts.name_of(location))
        resp = plane.request("POST", f"{env}/restores", headers=plane.admin,
                             json={"backupId": second})
        assert resp.status_code == 409 and resp.json()["field"] == "backupId"
        assert "no artifact any more" in resp.json()["detail"]
        third = _wait(plane, plane.request("POST", f"{env}/backups", headers=plane.admin,
                                           json={}).json()["id"])
        assert third["status"] == "succeeded"
        listed = plane.request("GET", f"{env}/backups", headers=plane.admin).json()["items"]
        assert [b["id"] for b in listed] == [third["result"]["backup"]["id"]]
        actions = plane.request("GET", f"/api/activity?project={slug}",
                                headers=plane.admin).json()["items"]
        assert any(a["action"] == "backup.expired" and a["details"]["backup"] == second
                   for a in actions)
    finally:
        stop_agent(agent)
