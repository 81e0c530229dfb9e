"""#18 attack tests: identities only the platform vouches for, keyed by stable ids.

Unit-level against ``parse_principal`` and over real HTTP against the local host, whose
Easy Auth emulation plays the linked Static Web App (it strips client-supplied
``x-ms-client-principal*`` headers and vouches with ``-idp: azureStaticWebApps``).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import requests

from localhost.easyauth import COOKIE, principal_cookie
from shared.auth.principal import parse_principal
from shared.errors import Unauthorized
from tests.conftest import RunningHost
from tests.pipeline.test_pipeline_e2e import make_env, wait_for


def b64(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


ADMIN_SWA = b64({"identityProvider": "aad", "userId": "evil", "userDetails": "evil",
                 "userRoles": ["authenticated", "admin"]})


def test_a_principal_header_without_the_platforms_word_is_refused() -> None:
    with pytest.raises(Unauthorized, match="did not vouch"):
        parse_principal({"x-ms-client-principal": ADMIN_SWA})


@pytest.mark.parametrize("idp", ["github", "twitter", "AzureStaticWebApps ", ""])
def test_a_principal_from_an_unknown_provider_is_refused(idp: str) -> None:
    with pytest.raises(Unauthorized):
        parse_principal({"x-ms-client-principal": ADMIN_SWA,
                         "x-ms-client-principal-idp": idp})


def test_a_principal_is_read_only_in_its_providers_format() -> None:
    # an SWA-shaped principal claiming to come from Entra (App Service format) is refused
    with pytest.raises(Unauthorized):
        parse_principal({"x-ms-client-principal": ADMIN_SWA,
                         "x-ms-client-principal-idp": "aad"})
    app_service = b64({"auth_typ": "aad", "claims": [
        {"typ": "oid", "val": "o-1"}, {"typ": "name", "val": "A"},
        {"typ": "roles", "val": "admin"}]})
    with pytest.raises(Unauthorized):
        parse_principal({"x-ms-client-principal": app_service,
                         "x-ms-client-principal-idp": "azureStaticWebApps"})


def test_an_entra_user_without_an_object_id_is_refused_not_keyed_by_name() -> None:
    named_only = b64({"auth_typ": "aad", "claims": [{"typ": "name", "val": "alice"}]})
    with pytest.raises(Unauthorized, match="object id"):
        parse_principal({"x-ms-client-principal": named_only,
                         "x-ms-client-principal-idp": "aad"})


def test_users_act_under_their_id_and_the_builtin_roles_never_count() -> None:
    p = parse_principal({"x-ms-client-principal": ADMIN_SWA,
                         "x-ms-client-principal-idp": "azureStaticWebApps"})
    assert p.actor == "evil" and "authenticated" not in p.roles


def test_forged_principal_and_idp_headers_are_stripped_at_the_front_door(
        running_host: RunningHost) -> None:
    slug = f"forged-{uuid.uuid4().hex[:8]}"
    r = requests.post(running_host.url("/api/projects"), timeout=30, headers={
        "x-ms-client-principal": ADMIN_SWA,
        "x-ms-client-principal-idp": "azureStaticWebApps"},
        json={"slug": slug, "name": "Forged"})
    assert r.status_code == 401
    admin = running_host.session("edge-admin", ("admin",))
    assert admin.get(running_host.url(f"/api/projects/{slug}")).status_code == 404


def test_a_shared_display_name_neither_approves_nor_self_approves(
        running_host: RunningHost) -> None:
    """Two users named alike: the requester's twin is not an approver named by id, and
    the approver list's display name grants nothing."""
    admin = running_host.session("edge-owner", ("admin",))
    project, env = make_env(admin, running_host)
    url = running_host.url(f"/api/projects/{project}/environments/{env}/protection")
    assert admin.put(url, json={"operations": ["deploy"], "approvers": [
        {"type": "user", "id": "approver-id-1"},
        {"type": "user", "id": "Same Name"}]}).status_code == 200
    requester = requests.Session()
    requester.cookies.set(COOKIE, principal_cookie("requester-id", "Same Name", ["admin"]))
    task = requester.post(running_host.url(
        f"/api/projects/{project}/environments/{env}/deployments"),
        json={"version": "9"}).json()
    wait_for(admin, running_host, task["id"], {"waiting"})
    # the requester's display name is listed as a "user id": it must not make them one
    refused = requester.post(running_host.url(f"/api/tasks/{task['id']}/approvals"),
                             json={"decision": "approve"})
    assert refused.status_code == 403
    twin = requests.Session()  # another user, same display name as the approver id-1's
    twin.cookies.set(COOKIE, principal_cookie("twin-id", "approver-id-1", []))
    assert twin.post(running_host.url(f"/api/tasks/{task['id']}/approvals"),
                     json={"decision": "approve"}).status_code in (403, 404)
    state = admin.get(running_host.url(f"/api/tasks/{task['id']}")).json()
    assert state["status"] == "waiting" and state["approval"]["approvals"] == 0
    assert state["requestedBy"] == "requester-id" and state["requestedByName"] == "Same Name"


def test_idempotency_keys_are_per_user_id_not_per_display_name(
        running_host: RunningHost) -> None:
    admin = running_host.session("edge-idem-owner", ("admin",))
    project, env = make_env(admin, running_host)
    url = running_host.url(f"/api/projects/{project}/environments/{env}/deployments")
    first, second = requests.Session(), requests.Session()
    first.cookies.set(COOKIE, principal_cookie("idem-a", "Pat", ["admin"]))
    second.cookies.set(COOKIE, principal_cookie("idem-b", "Pat", ["admin"]))
    key = {"Idempotency-Key": uuid.uuid4().hex}
    a = first.post(url, json={"version": "1"}, headers=key)
    b = second.post(url, json={"version": "2"}, headers=key)
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]  # Pat's twin does not replay Pat's task
    assert "Idempotent-Replayed" not in b.headers
