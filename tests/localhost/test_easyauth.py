"""Easy Auth and staticwebapp.config.json rules, as the Static Web Apps CLI emulates them."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

from localhost.easyauth import COOKIE, principal_cookie
from tests.localhost.conftest import RunningHost


def cookie(roles: list[str], user: str = "u-1") -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={principal_cookie(user, 'ada@example.com', roles)}"}


def test_me_is_null_when_signed_out_and_the_principal_when_signed_in(basic: RunningHost) -> None:
    assert basic.get("/.auth/me").json() == {"clientPrincipal": None}
    principal = basic.get("/.auth/me", headers=cookie(["operator"])).json()["clientPrincipal"]
    assert principal["userId"] == "u-1"
    assert principal["userRoles"] == ["anonymous", "authenticated", "operator"]


def test_login_form_sets_the_cookie_and_redirects(basic: RunningHost) -> None:
    form = basic.get("/.auth/login/aad?post_login_redirect_uri=/about")
    assert form.status == 200 and b"<form" in form.body
    reply = basic.post("/.auth/login/aad", urlencode({
        "userId": "abc", "userDetails": "grace@example.com", "roles": "admin, operator",
        "post_login_redirect_uri": "/about"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 302 and reply.headers["location"] == "/about"
    value = reply.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    principal = json.loads(base64.b64decode(value))
    assert principal["userDetails"] == "grace@example.com"
    assert "admin" in principal["userRoles"]


def test_login_refuses_open_redirects(basic: RunningHost) -> None:
    reply = basic.post("/.auth/login/aad", urlencode({
        "userId": "abc", "userDetails": "x", "post_login_redirect_uri": "https://evil.example"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.headers["location"] == "/"


def test_logout_clears_the_cookie(basic: RunningHost) -> None:
    reply = basic.get("/.auth/logout", headers=cookie(["admin"]))
    assert reply.status == 302
    assert reply.headers["set-cookie"].startswith(f'{COOKIE}=""')


def test_cookie_becomes_the_client_principal_header_on_api_requests(basic: RunningHost) -> None:
    reply = basic.post("/api/echo", b"{}", headers=cookie(["operator"]))
    header = json.loads(base64.b64decode(reply.json()["principal"]))
    assert header == {"identityProvider": "aad", "userId": "u-1",
                      "userDetails": "ada@example.com",
                      "userRoles": ["anonymous", "authenticated", "operator"]}


def test_client_supplied_principal_header_is_stripped(basic: RunningHost) -> None:
    forged = base64.b64encode(json.dumps({"userId": "root", "userRoles": ["admin"]}).encode())
    reply = basic.post("/api/echo", b"{}", headers={"x-ms-client-principal": forged.decode()})
    assert reply.json()["principal"] is None


def test_damaged_cookie_counts_as_signed_out(basic: RunningHost) -> None:
    reply = basic.get("/.auth/me", headers={"Cookie": f"{COOKIE}=%%%not-base64"})
    assert reply.status == 200 and reply.json() == {"clientPrincipal": None}


def test_api_role_rule_gives_401_anonymous_403_wrong_role_200_right_role(
        basic: RunningHost) -> None:
    # 401 is overridden by responseOverrides into a login redirect, as SWA does.
    anonymous = basic.get("/api/secure-area/x")
    assert anonymous.status == 302
    assert anonymous.headers["location"].startswith("/.auth/login/aad?post_login_redirect_uri=")
    wrong = basic.get("/api/secure-area/x", headers=cookie(["reader"]))
    assert wrong.status == 403
    right = basic.get("/api/secure-area/x", headers=cookie(["operator"]))
    assert right.status == 200


def test_static_role_rule_uses_the_403_override_page(basic: RunningHost) -> None:
    reply = basic.get("/admin/", headers=cookie(["reader"]))
    assert reply.status == 403 and b"custom forbidden" in reply.body
    allowed = basic.get("/admin/", headers=cookie(["admin"]))
    assert allowed.status == 200 and b"admin area" in allowed.body


def test_redirect_rewrite_and_status_rules(basic: RunningHost) -> None:
    moved = basic.get("/old-page")
    assert moved.status == 301 and moved.headers["location"] == "/index.html"
    about = basic.get("/about")
    assert about.status == 200 and b"home" in about.body and about.headers["x-rule"] == "about"
    assert basic.get("/blocked").status == 404


def test_navigation_fallback_serves_index_except_for_excluded_paths(basic: RunningHost) -> None:
    deep = basic.get("/projects/demo/tasks")
    assert deep.status == 200 and b"home" in deep.body
    assert deep.headers["x-frame-options"] == "DENY"
    assert basic.get("/images/missing.png").status == 404


def test_static_files_cannot_escape_the_web_folder(basic: RunningHost) -> None:
    reply = basic.get("/..%2f..%2ffunction_app.py")
    assert b"import azure" not in reply.body


def test_static_content_refuses_writes(basic: RunningHost) -> None:
    assert basic.post("/index.html", b"x").status == 405
