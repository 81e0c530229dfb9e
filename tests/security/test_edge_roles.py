"""#18 attack tests: real time and role grants need a real role, never "everyone"."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import requests

from localhost.easyauth import COOKIE, principal_cookie
from tests.conftest import RunningHost
from tests.pipeline.test_pipeline_e2e import make_env


def test_negotiate_needs_a_role_somewhere(running_host: RunningHost) -> None:
    nobody = requests.Session()
    nobody.cookies.set(COOKIE, principal_cookie(f"n-{uuid.uuid4().hex[:6]}", "n", []))
    r = nobody.post(running_host.url("/api/negotiate"))
    assert r.status_code == 403 and "accessToken" not in r.text


@pytest.mark.parametrize("everyone", ["authenticated", "anonymous", "Authenticated"])
def test_everyone_cannot_be_granted_a_role(running_host: RunningHost, everyone: str) -> None:
    admin = running_host.session("edge-roles-admin", ("admin",))
    project, env = make_env(admin, running_host)
    for url in (f"/api/projects/{project}/roles", "/api/roles"):
        r = admin.post(running_host.url(url), json={
            "principalType": "group", "principalId": everyone, "role": "reader"})
        assert r.status_code == 422, r.text
    r = admin.put(running_host.url(f"/api/projects/{project}/environments/{env}/protection"),
                  json={"operations": ["deploy"],
                        "approvers": [{"type": "group", "id": everyone}]})
    assert r.status_code == 422
    with psycopg.connect(running_host.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM role_assignments WHERE principal_id = %s",
                            (everyone,)).fetchone() == (0,)
    # and a signed-in stranger still cannot read the project
    stranger = running_host.session(f"s-{uuid.uuid4().hex[:6]}", ())
    assert stranger.get(running_host.url(f"/api/projects/{project}")).status_code == 403


def test_the_database_refuses_a_grant_to_everyone(running_host: RunningHost) -> None:
    with psycopg.connect(running_host.database_url) as conn, pytest.raises(
            psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO role_assignments (project_id, principal_type, principal_id,"
                     " role, created_by) VALUES (NULL, 'group', 'authenticated', 'admin', 't')")
