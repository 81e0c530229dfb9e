"""Settings in the browser (#19 items 1, 2, 3, 6): projects and environments (targets and
databases chosen from the project's granted resources), access, protection and freezes,
the pending-approvals page and the script catalogue — each as the role that uses it, with
a lesser role's controls disabled and saying why, a real API refusal shown next to its
field with what was typed kept, typed confirmations before deletes, and axe-core clean."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.a11y import check_page
from tests.web.conftest import (
    ADMIN,
    OPERATOR,
    READER,
    Pages,
    User,
    World,
    api_session,
    call,
    screenshot,
)

# A project admin who holds no global role: the environment form offers only what the
# project was granted (a global admin would authorize anything by saving).
PROJECT_ADMIN = User("u-padmin", "pam@example.com", ())
# An approver: reads the project, decides on its protected operations.
APPROVER = User("u-approver", "april@example.com", ())


@pytest.fixture(scope="module")
def roles(world: World, web_host: Any) -> None:
    for user, role in ((PROJECT_ADMIN, "admin"), (APPROVER, "reader")):
        call(world.admin, web_host, "POST", "/api/projects/webshop/roles",
             {"principalType": "user", "principalId": user.id, "role": role})
    # granted to webshop: web-pool (saving staging granted it) and two connections; one
    # more connection granted elsewhere only, which webshop's forms must not offer
    for name, project in (("orders-db", "webshop"), ("elsewhere-db", "elsewhere")):
        if project == "elsewhere":
            call(world.admin, web_host, "POST", "/api/projects",
                 {"slug": "elsewhere", "name": "Elsewhere"}, expect=(201, 409))
        call(world.admin, web_host, "POST", "/api/resources",
             {"kind": "connection", "name": name}, expect=(200, 201))
        call(world.admin, web_host, "POST", f"/api/resources/connection:{name}/grants",
             {"project": project})


def _env(world: World, host: Any, target: dict[str, Any] | None = None) -> str:
    slug = f"s-{uuid.uuid4().hex[:6]}"
    call(world.admin, host, "POST", "/api/projects/webshop/environments",
         {"slug": slug, "name": slug.upper(), "target": target or {"type": "noop"}})
    return slug


# -- 1. projects and environments -------------------------------------------------------
def test_a_project_admin_creates_an_environment_from_the_granted_resources(
        pages: Pages, world: World, roles: None) -> None:
    page = pages.open(PROJECT_ADMIN, "/environment-settings/?p=webshop")
    expect(page.locator("#role-here")).to_have_text("Your role here: admin (on this project).")
    page.select_option("#target-type", "agent")
    expect(page.locator("#agent-pool option[value=web-pool]")).to_have_count(1)
    connections = page.locator("#db-connection option").all_text_contents()
    assert "orders-db" in connections and "staging-db" in connections
    assert "elsewhere-db" not in connections  # granted to another project only
    expect(page.locator("#deploy-script option[value=deploy]")).to_have_count(1)

    # a slug the API refuses: said next to the slug, and everything typed stays
    page.fill("#env-slug", "QA Env")
    page.fill("#env-name-input", "QA east")
    page.fill("#agent-labels", "linux, postgres")
    page.select_option("#deploy-script", "deploy")
    page.select_option("#db-connection", "orders-db")
    page.click("#env-save")
    problem = page.locator("#env-form .field-problem")
    expect(problem).to_have_text("use lower-case letters, digits and hyphens (at most 63), "
                                 "starting and ending with a letter or digit")
    expect(page.locator("#env-slug")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#env-slug")).to_be_focused()
    expect(page.locator("#env-name-input")).to_have_value("QA east")
    expect(page.locator("#agent-labels")).to_have_value("linux, postgres")
    expect(page.locator("#db-connection")).to_have_value("orders-db")
    screenshot(page, "environment-settings-field-error")

    slug = f"qa-{uuid.uuid4().hex[:4]}"
    page.fill("#env-slug", slug)
    page.click("#env-save")
    expect(page).to_have_url(f"{pages.host.base_url}/environment-settings/?p=webshop&e={slug}"
                             "&created=1")
    expect(page.locator("#env-form .form-message")).to_contain_text("Created QA east.")
    saved = call(world.admin, pages.host, "GET", f"/api/projects/webshop/environments/{slug}")
    assert saved["target"] == {"type": "agent", "pool": "web-pool",
                               "labels": ["linux", "postgres"], "deployScript": "deploy",
                               "namespaces": [], "services": {}}
    assert saved["database"] == {"connection": "orders-db"}
    expect(page.locator("#protection-panel")).to_be_visible()
    check_page(page, "environment-settings", refused=(422,))


def test_an_environment_is_edited_and_deleted_after_typing_its_name(
        pages: Pages, world: World, roles: None) -> None:
    slug = _env(world, pages.host)
    page = pages.open(ADMIN, f"/environment-settings/?p=webshop&e={slug}")
    expect(page.locator("#env-slug")).to_have_attribute("readonly", "")
    page.fill("#env-name-input", "Renamed")
    page.fill("#env-url", "https://renamed.example.com")
    page.click("#env-save")
    expect(page.locator("#env-form .form-message")).to_contain_text("Saved Renamed")
    env = call(world.admin, pages.host, "GET", f"/api/projects/webshop/environments/{slug}")
    assert (env["name"], env["url"]) == ("Renamed", "https://renamed.example.com")

    page.click("#env-delete")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("Its tasks and their logs, its backup records, approval rule")
    expect(dialog).to_contain_text("Nothing on the target is touched")
    expect(page.locator("#confirm-ok")).to_be_disabled()
    page.fill("#confirm-type", slug[:-1])
    expect(page.locator("#confirm-ok")).to_be_disabled()
    page.fill("#confirm-type", slug)
    page.click("#confirm-ok")
    expect(page).to_have_url(f"{pages.host.base_url}/project-settings/?p=webshop&deleted={slug}")
    expect(page.locator("#deleted-note")).to_have_text(f"Deleted environment {slug}.")
    call(world.admin, pages.host, "GET", f"/api/projects/webshop/environments/{slug}",
         expect=404)


def test_project_settings_save_show_the_api_refusal_and_a_reader_sees_why_not(
        pages: Pages, world: World, roles: None) -> None:
    page = pages.open(ADMIN, "/project-settings/?p=webshop")
    expect(page.locator("#environments-table tbody tr[data-env=dev]")).to_be_visible()
    page.fill("#project-form input[name=name]", "   ")
    page.fill("#project-form input[name=description]", "kept as typed")
    page.click("#project-save")
    expect(page.locator("#project-form .field-problem")).to_contain_text(
        "at least 1 character")
    expect(page.locator("#project-form input[name=description]")).to_have_value("kept as typed")
    page.fill("#project-form input[name=name]", "Web shop")
    page.fill("#project-form input[name=description]", "The storefront")
    page.click("#project-save")
    expect(page.locator("#project-form .form-message")).to_have_text("Saved Web shop.")
    page.click("#project-delete")
    expect(page.locator("#confirm-dialog")).to_contain_text("This deletes Web shop")
    expect(page.locator("#confirm-ok")).to_be_disabled()
    page.click("#confirm-cancel")  # nothing deleted
    call(world.admin, pages.host, "GET", "/api/projects/webshop")
    check_page(page, "project-settings", refused=(422,))

    reader = pages.open(READER, "/project-settings/?p=webshop")
    expect(reader.locator("#role-here")).to_have_text(
        "Your role here: reader (global, on every project). Changing the project needs its "
        "admin role.")
    expect(reader.locator("#project-delete")).to_be_disabled()
    expect(reader.locator("#project-delete-why")).to_have_text(
        "Needs the admin role on this project.")
    expect(reader.locator("#project-save")).to_be_disabled()
    expect(reader.locator("#delete-dev")).to_be_disabled()
    expect(reader.locator("#delete-dev")).to_have_attribute(
        "title", "Needs the admin role on this project.")
    check_page(reader)


# -- 3. protection, freezes, approvals --------------------------------------------------
def test_an_admin_protects_an_environment_and_a_bad_approver_is_marked(
        pages: Pages, world: World, roles: None) -> None:
    slug = _env(world, pages.host)
    page = pages.open(ADMIN, f"/environment-settings/?p=webshop&e={slug}")
    expect(page.locator("#protection-state")).to_contain_text("Not protected")
    page.check("#protected-operations-deploy")
    page.check("#protected-operations-script_run")
    page.select_option("#approver-0-type", "group")
    page.fill("#approver-0-id", "authenticated")  # everyone: the API refuses it
    page.click("#protection-save")
    problem = page.locator("#protection-form .field-problem")
    expect(problem).to_contain_text("is everyone, not a group")
    expect(page.locator("#approver-0-id")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#protected-operations-script_run")).to_be_checked()  # kept

    page.select_option("#approver-0-type", "user")
    page.fill("#approver-0-id", APPROVER.id)
    page.click("#add-approver")
    page.fill("#approver-1-id", READER.id)
    page.fill("#protection-form input[name=requiredApprovals]", "2")
    page.fill("#protection-form input[name=timeoutMinutes]", "90")
    page.click("#protection-save")
    expect(page.locator("#protection-form .form-message")).to_have_text("Approval rule saved.")
    rule = call(world.admin, pages.host, "GET",
                f"/api/projects/webshop/environments/{slug}/protection")
    assert rule == {"operations": ["deploy", "script_run"],
                    "approvers": [{"type": "user", "id": APPROVER.id},
                                  {"type": "user", "id": READER.id}],
                    "requiredApprovals": 2, "allowSelfApproval": False, "timeoutMinutes": 90.0}
    expect(page.locator("#protection-state")).to_contain_text(
        "Deploy, Run script: 2 approvals from user u-approver, user u-reader")

    # freezes: an unknown zone is refused next to its field; a good window is listed
    page.fill("#window-form input[name=name]", "Nights")
    page.select_option("#window-type", "business_hours")
    page.fill("#window-form input[name=timezone]", "Mars/Olympus")
    page.fill("#window-form input[name=opens]", "08:00")
    page.fill("#window-form input[name=closes]", "18:00")
    page.click("#window-add")
    expect(page.locator("#window-form .field-problem")).to_contain_text("unknown time zone")
    expect(page.locator("#window-form input[name=name]")).to_have_value("Nights")
    page.fill("#window-form input[name=timezone]", "Europe/Amsterdam")
    page.click("#window-add")
    expect(page.locator("#windows-table tbody tr")).to_have_count(1)
    expect(page.locator("#windows-table")).to_contain_text(
        "mon, tue, wed, thu, fri 08:00\u201318:00")

    # lifting them: a reason too short is refused next to it; then the override shows
    page.fill("#override-form input[name=reason]", "x")
    page.click("#override-button")
    expect(page.locator("#confirm-dialog")).to_contain_text("held tasks run now")
    page.click("#confirm-ok")
    expect(page.locator("#override-form .field-problem")).to_contain_text("at least 3")
    page.fill("#override-form input[name=reason]", "hotfix 4711")
    page.fill("#override-form input[name=minutes]", "30")
    page.click("#override-button")
    page.click("#confirm-ok")
    expect(page.locator("#freezes-state")).to_contain_text("“hotfix 4711”")
    freezes = call(world.admin, pages.host, "GET",
                   f"/api/projects/webshop/environments/{slug}/freezes")
    assert freezes["override"]["reason"] == "hotfix 4711"

    page.click("#protection-remove")
    expect(page.locator("#confirm-dialog")).to_contain_text("without anyone approving them")
    page.click("#confirm-ok")
    expect(page.locator("#protection-state")).to_contain_text("Not protected")
    call(world.admin, pages.host, "GET",
         f"/api/projects/webshop/environments/{slug}/protection", expect=404)


def test_an_operator_sees_protection_and_freezes_but_may_not_change_them(
        pages: Pages, world: World, roles: None) -> None:
    page = pages.open(OPERATOR, "/environment-settings/?p=webshop&e=dev")
    expect(page.locator("#protection-save")).to_be_disabled()
    expect(page.locator("#protection-form .why-disabled")).to_have_text(
        "Needs the admin role on this project.")
    expect(page.locator("#env-save")).to_be_disabled()
    expect(page.locator("#env-delete")).to_be_disabled()
    expect(page.locator("#env-delete-why")).to_be_visible()
    check_page(page, "environment-settings-operator")


# -- 2. access --------------------------------------------------------------------------
def test_an_admin_grants_and_revokes_a_role_and_the_api_refusal_is_marked(
        pages: Pages, world: World, roles: None) -> None:
    page = pages.open(ADMIN, "/access/?p=webshop")
    expect(page.locator("#members-table tbody tr[data-principal=u-padmin]")).to_contain_text(
        "admin")
    page.select_option("#member-form select[name=principalType]", "group")
    page.fill("#member-form input[name=principalId]", "anonymous")
    page.select_option("#member-form select[name=role]", "operator")
    page.click("#member-grant")
    expect(page.locator("#member-form .field-problem")).to_contain_text(
        "is everyone (signed in or not)")
    expect(page.locator("#member-form input[name=principalId]")).to_have_value("anonymous")
    expect(page.locator("#member-form select[name=role]")).to_have_value("operator")

    page.fill("#member-form input[name=principalId]", "shop-oncall")
    page.click("#member-grant")
    row = page.locator("#members-table tbody tr[data-principal=shop-oncall]")
    expect(row).to_contain_text("operator")
    page.locator("#members-table tbody tr[data-principal=shop-oncall] button").click()
    expect(page.locator("#confirm-dialog")).to_contain_text(
        "group shop-oncall loses the operator role on project Web shop.")
    page.click("#confirm-ok")
    expect(row).to_have_count(0)
    expect(page.locator("#global-body")).to_be_visible()  # a global admin
    expect(page.locator("#global-table tbody")).to_be_attached()
    check_page(page, "access", refused=(422,))


def test_access_shows_a_reader_their_role_who_approves_and_nothing_they_may_not_use(
        pages: Pages, world: World, roles: None) -> None:
    slug = _env(world, pages.host)
    call(world.admin, pages.host, "PUT", f"/api/projects/webshop/environments/{slug}/protection",
         {"operations": ["deploy"], "approvers": [{"type": "user", "id": APPROVER.id}]})
    page = pages.open(APPROVER, "/access/?p=webshop")
    expect(page.locator("#role-here")).to_have_text("Your role here: reader (on this project).")
    expect(page.locator(f"#approvers-table tr[data-env={slug}]")).to_contain_text(
        "approver (not of your own requests)")
    expect(page.locator("#member-grant")).to_be_disabled()
    expect(page.locator("#member-form .why-disabled")).to_have_text(
        "Needs the admin role on this project.")
    expect(page.locator("#members-table tbody button").first).to_be_disabled()
    expect(page.locator("#global-body")).to_be_hidden()
    expect(page.locator("#global-note")).to_contain_text(
        "Seeing and changing them needs the global admin role")
    check_page(page)


def test_the_grant_form_works_from_the_keyboard(pages: Pages, world: World,
                                                roles: None) -> None:
    page = pages.open(PROJECT_ADMIN, "/access/?p=webshop")
    expect(page.locator("#member-form")).to_be_visible()
    page.focus("#member-form select[name=principalType]")
    page.keyboard.press("Tab")
    page.keyboard.type("kbd-user")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # reader → operator
    page.keyboard.press("Tab")
    expect(page.locator("#member-grant")).to_be_focused()
    page.keyboard.press("Enter")
    row = page.locator("#members-table tbody tr[data-principal=kbd-user]")
    expect(row).to_contain_text("operator")
    row.locator("button").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-cancel")).to_be_focused()  # the safe choice first
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(row).to_have_count(0)


# -- 6. script catalogue ----------------------------------------------------------------
def test_an_admin_writes_a_script_with_typed_parameters_and_sees_the_argv_it_runs(
        pages: Pages, world: World, roles: None) -> None:
    name = f"purge-{uuid.uuid4().hex[:4]}"
    page = pages.open(ADMIN, "/scripts/?p=webshop")
    expect(page.locator("#scripts-table tbody tr[data-script=reindex]")).to_be_visible()
    page.fill("#script-name", name)
    page.fill("#script-form input[name=description]", "Purge old rows")
    page.fill("#script-argv", "./purge.sh\n--older-than={days}\n--table\n{table}")
    page.click("#add-param")
    page.fill("#param-0-name", "days")
    page.select_option("#param-0-type", "integer")
    page.fill("#param-0-default", "30")
    expect(page.locator("#argv-preview li")).to_have_text(
        ["./purge.sh", "--older-than=30", "--table", "{table}"])
    expect(page.locator("#preview-note")).to_contain_text("Not declared as parameters: table")

    page.click("#script-save")  # {table} is not declared: the API names argv
    expect(page.locator("#script-form .field-problem")).to_contain_text(
        "argv uses {table} but no such parameter is declared")
    expect(page.locator("#script-argv")).to_be_focused()
    expect(page.locator("#param-0-default")).to_have_value("30")

    page.click("#add-param")
    page.fill("#param-1-name", "table")
    page.fill("#param-1-enum", "orders, carts")
    expect(page.locator("#preview-params select[name=table]")).to_be_visible()
    page.select_option("#preview-params select[name=table]", "carts")
    page.fill("#preview-params input[name=days]", "7")
    expect(page.locator("#argv-preview li")).to_have_text(
        ["./purge.sh", "--older-than=7", "--table", "carts"])
    check_page(page, "scripts", refused=(422,))
    page.click("#script-save")
    expect(page.locator("#script-form .form-message")).to_have_text(f"Added {name}.")
    stored = {s["name"]: s for s in call(world.admin, pages.host, "GET",
                                         "/api/projects/webshop/scripts")["items"]}[name]
    assert stored["parameters"][0]["default"] == 30
    assert stored["parameters"][1]["enum"] == ["orders", "carts"]

    # change it: the name stays, the argv changes (PUT)
    expect(page.locator("#script-form-title")).to_have_text(f"Change {name}")
    expect(page.locator("#script-name")).to_have_attribute("readonly", "")
    page.fill("#script-argv", "./purge.sh\n--days={days}\n{table}")
    page.click("#script-save")
    expect(page.locator("#script-form .form-message")).to_have_text(f"Saved {name}.")
    stored = {s["name"]: s for s in call(world.admin, pages.host, "GET",
                                         "/api/projects/webshop/scripts")["items"]}[name]
    assert stored["argv"] == ["./purge.sh", "--days={days}", "{table}"]

    page.click(f"#delete-{name}")
    expect(page.locator("#confirm-dialog")).to_contain_text("nobody can run it any more")
    page.fill("#confirm-type", name)
    page.click("#confirm-ok")
    expect(page.locator(f"#scripts-table tbody tr[data-script={name}]")).to_have_count(0)


def test_an_operator_reads_the_catalogue_and_is_told_why_it_cannot_change_it(
        pages: Pages, world: World, roles: None) -> None:
    page = pages.open(OPERATOR, "/scripts/?p=webshop")
    expect(page.locator("#edit-reindex")).to_be_disabled()
    expect(page.locator("#delete-reindex")).to_have_attribute(
        "title", "Needs the admin role on this project.")
    expect(page.locator("#script-save")).to_be_disabled()
    expect(page.locator("#role-here")).to_contain_text(
        "Your role here: operator (global, on every project). Changing the catalogue needs "
        "the admin role.")
    # a forged change is refused by the API all the same
    call(api_session(pages.host, OPERATOR), pages.host, "PUT",
         "/api/projects/webshop/scripts/reindex",
         {"name": "reindex", "argv": ["rm", "-rf", "/"]}, expect=403)
    check_page(page)


def test_a_typed_confirmation_works_from_the_keyboard(pages: Pages, world: World,
                                                      roles: None) -> None:
    slug = _env(world, pages.host)
    page = pages.open(PROJECT_ADMIN, "/project-settings/?p=webshop")
    button = page.locator(f"#delete-{slug}")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-type")).to_be_focused()  # the name goes here first
    page.keyboard.type(slug)
    page.keyboard.press("Tab")  # past Cancel…
    page.keyboard.press("Tab")  # …to Delete environment
    expect(page.locator("#confirm-ok")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(f"#environments-table tbody tr[data-env={slug}]")).to_have_count(0)
    expect(page.locator("#env-message")).to_have_text(f"Deleted {slug.upper()}.")


def test_access_without_a_project_lists_your_roles_and_says_why_global_roles_are_hidden(
        pages: Pages, world: World, roles: None) -> None:
    page = pages.open(PROJECT_ADMIN, "/access/")
    expect(page.locator("#role-here")).to_have_text(
        "You hold no global role; your roles per project are below.")
    expect(page.locator("#my-roles-table tbody tr", has_text="Web shop")).to_contain_text(
        "admin (on this project)")
    expect(page.locator("#global-body")).to_be_hidden()
    expect(page.locator("#global-note")).to_contain_text("needs the global admin role")
    check_page(page)


def test_an_app_service_environment_takes_its_site_from_the_grants_and_offers_its_url(
        pages: Pages, world: World, roles: None) -> None:
    subscription = str(uuid.uuid4())
    site = call(world.admin, pages.host, "POST", "/api/resources", {
        "kind": "site", "subscriptionId": subscription, "resourceGroup": "rg-shop",
        "site": "shop-web"})
    call(world.admin, pages.host, "POST", f"/api/resources/{site['id']}/grants",
         {"project": "webshop"})
    slug = f"as-{uuid.uuid4().hex[:4]}"
    page = pages.open(PROJECT_ADMIN, "/environment-settings/?p=webshop")
    page.fill("#env-slug", slug)
    page.fill("#env-name-input", "Shop web")
    page.select_option("#target-type", "appservice")
    page.select_option("#site-select", site["name"])
    page.fill("#site-slot", "blue")
    expect(page.locator("#url-choices option")).to_have_count(2)
    assert page.eval_on_selector_all("#url-choices option", "os => os.map(o => o.value)") == [
        "https://shop-web.azurewebsites.net", "https://shop-web-blue.azurewebsites.net"]
    page.fill("#env-url", "https://shop-web.azurewebsites.net")
    page.click("#env-save")
    expect(page.locator("#env-form .form-message")).to_contain_text("Created Shop web.")
    saved = call(world.admin, pages.host, "GET", f"/api/projects/webshop/environments/{slug}")
    assert saved["target"] == {"type": "appservice", "subscriptionId": subscription,
                               "resourceGroup": "rg-shop", "site": "shop-web", "slot": "blue",
                               "healthPath": "/health", "labels": []}
    assert saved["url"] == "https://shop-web.azurewebsites.net"
    expect(page.locator("#site-select")).to_have_value(site["name"])  # shown back as chosen


def test_a_withdrawn_grant_is_shown_as_such_and_the_api_refusal_lands_on_its_field(
        pages: Pages, world: World, roles: None) -> None:
    name = f"lapsed-{uuid.uuid4().hex[:4]}"
    call(world.admin, pages.host, "POST", "/api/resources", {"kind": "connection", "name": name})
    grant = call(world.admin, pages.host, "POST", f"/api/resources/connection:{name}/grants",
                 {"project": "webshop"})
    slug = f"l-{uuid.uuid4().hex[:4]}"
    call(world.admin, pages.host, "POST", "/api/projects/webshop/environments",
         {"slug": slug, "name": "Lapsed", "target": {"type": "noop"},
          "database": {"connection": name}})
    call(world.admin, pages.host, "DELETE",
         f"/api/resources/connection:{name}/grants/{grant['id']}")

    page = pages.open(PROJECT_ADMIN, f"/environment-settings/?p=webshop&e={slug}")
    expect(page.locator("#db-connection option:checked")).to_have_text(
        f"{name} (current; not granted to this project)")
    page.fill("#env-name-input", "Lapsed still")
    page.click("#env-save")
    problem = page.locator("#db-connection").locator("xpath=..").locator(".field-problem")
    expect(problem).to_contain_text(f"database connection '{name}' is not granted to project "
                                    "webshop")
    expect(page.locator("#db-connection")).to_be_focused()
    expect(page.locator("#env-name-input")).to_have_value("Lapsed still")
    page.select_option("#db-connection", "orders-db")
    page.click("#env-save")
    expect(page.locator("#env-form .form-message")).to_contain_text("Saved Lapsed still")
    check_page(page, refused=(422,))
