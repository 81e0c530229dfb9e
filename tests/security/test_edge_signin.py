"""#18 attack tests: sign-in for the company only, roles from Entra through rolesSource.

The config is the one deployed (``web/staticwebapp.config.json``); the sign-in flow runs
on the local host, whose Easy Auth emulation posts to ``auth.rolesSource`` as SWA does.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from functions.http.auth_roles import roles_from_claims
from localhost.easyauth import COOKIE, principal_cookie
from shared.auth.principal import parse_principal
from tests.conftest import RunningHost
from tests.pipeline.test_pipeline_e2e import make_env

CONFIG = json.loads((Path(__file__).resolve().parents[2] / "web" /
                     "staticwebapp.config.json").read_text())
GROUP = "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_sign_in_uses_a_custom_entra_registration_of_one_tenant() -> None:
    registration = CONFIG["auth"]["identityProviders"]["azureActiveDirectory"]["registration"]
    assert registration["openIdIssuer"].startswith("https://login.microsoftonline.com/")
    assert "/common/" not in registration["openIdIssuer"]
    assert "/organizations/" not in registration["openIdIssuer"]
    assert registration["clientIdSettingName"] == "AAD_CLIENT_ID"
    assert registration["clientSecretSettingName"] == "AAD_CLIENT_SECRET"
    assert CONFIG["auth"]["rolesSource"] == "/api/auth/roles"


@pytest.mark.parametrize("provider", ["github", "twitter", "google", "facebook", "apple"])
def test_other_providers_are_blocked(running_host: RunningHost, provider: str) -> None:
    blocked = [r for r in CONFIG["routes"] if r["route"] == f"/.auth/login/{provider}"]
    assert blocked and blocked[0]["statusCode"] == 404
    assert CONFIG["routes"].index(blocked[0]) < next(
        i for i, r in enumerate(CONFIG["routes"]) if r["route"] == "/.auth/*")
    form = requests.get(running_host.url(f"/.auth/login/{provider}"), timeout=30,
                        allow_redirects=False)
    assert form.status_code == 404
    submit = requests.post(running_host.url(f"/.auth/login/{provider}"), timeout=30,
                           data={"userId": "gh-1", "userDetails": "x", "roles": "admin"},
                           allow_redirects=False)
    assert submit.status_code == 404 and COOKIE not in submit.cookies


def sign_in(host: RunningHost, user: str, roles: str = "", groups: str = "") -> Any:
    reply = requests.post(host.url("/.auth/login/aad"), timeout=30, allow_redirects=False,
                          data={"userId": user, "userDetails": f"{user}@corp.example",
                                "roles": roles, "groups": groups,
                                "post_login_redirect_uri": "/"})
    assert reply.status_code == 302, reply.text
    principal = json.loads(base64.b64decode(reply.cookies[COOKIE]))
    return principal


def test_roles_come_only_from_entra_app_roles_and_groups(running_host: RunningHost) -> None:
    principal = sign_in(running_host, f"u-{uuid.uuid4().hex[:6]}",
                        roles="reader, superuser, authenticated",
                        groups=f"{GROUP}, not-a-group")
    assert principal["userRoles"] == ["anonymous", "authenticated", "reader",
                                      f"group:{GROUP}"]


def test_a_group_grant_reaches_its_members_through_rolesSource(
        running_host: RunningHost) -> None:
    admin = running_host.session("edge-signin-admin", ("admin",))
    project, _ = make_env(admin, running_host)
    group = str(uuid.uuid4())
    assert admin.post(running_host.url(f"/api/projects/{project}/roles"), json={
        "principalType": "group", "principalId": group, "role": "operator"}
    ).status_code == 201
    member, outsider = (f"m-{uuid.uuid4().hex[:6]}", f"o-{uuid.uuid4().hex[:6]}")
    s = requests.Session()
    sign_in_cookie = base64.b64encode(json.dumps(
        sign_in(running_host, member, groups=group)).encode()).decode()
    s.cookies.set(COOKIE, sign_in_cookie)
    assert s.get(running_host.url(f"/api/projects/{project}")).json()["yourRole"] == "operator"
    o = requests.Session()
    o.cookies.set(COOKIE, base64.b64encode(json.dumps(
        sign_in(running_host, outsider)).encode()).decode())
    assert o.get(running_host.url(f"/api/projects/{project}")).status_code == 403


def test_roles_source_answers_only_about_the_caller_and_only_through_the_platform(
        running_host: RunningHost) -> None:
    body = {"identityProvider": "aad", "userId": "victim", "userDetails": "v",
            "claims": [{"typ": "roles", "val": "admin"}], "accessToken": ""}
    assert requests.post(running_host.url("/api/auth/roles"), json=body,
                         timeout=30).status_code == 401
    other = requests.Session()
    other.cookies.set(COOKIE, principal_cookie("attacker", "a", []))
    refused = other.post(running_host.url("/api/auth/roles"), json=body)
    assert refused.status_code == 422 and "roles" not in refused.json()


def test_builtin_and_unknown_claims_give_no_roles() -> None:
    assert roles_from_claims([{"typ": "roles", "val": "authenticated"},
                              {"typ": "roles", "val": "root"},
                              {"typ": "groups", "val": "admins"},
                              {"typ": "name", "val": "admin"}]) == []


def test_group_roles_become_memberships_not_roles() -> None:
    raw = base64.b64encode(json.dumps({
        "identityProvider": "aad", "userId": "u", "userDetails": "u",
        "userRoles": ["authenticated", f"group:{GROUP}", "reader"]}).encode()).decode()
    p = parse_principal({"x-ms-client-principal": raw,
                         "x-ms-client-principal-idp": "azureStaticWebApps"})
    assert p.groups == frozenset({GROUP}) and p.roles == frozenset({"reader"})
