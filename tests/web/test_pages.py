"""Every main page renders for its role, passes axe-core (no serious or critical
violations), stays usable at half a laptop screen, and is screenshotted for people to see
(``tests/artifacts/screenshots/``, gitignored)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.a11y import check_page
from tests.web.conftest import ADMIN, OPERATOR, Pages, World, call, screenshot


@pytest.fixture(scope="module")
def finished_task(world: World, web_host: Any) -> dict[str, Any]:
    """A finished deploy with a few log lines, and a backup to restore from."""
    task = call(world.admin, web_host, "POST",
                "/api/projects/webshop/environments/staging/deployments", {"version": "1.0.0"})
    job = world.agent.next_job()
    world.agent.log(job, ["fetching 1.0.0", "ERROR-free: migrations applied", "switching"],
                    progress=80)
    world.agent.finish(job)
    return dict(task)


# (name, user, path, what must be visible once the page has loaded)
MAIN_PAGES = [
    ("landing", None, "/", "#sign-in"),
    ("projects", ADMIN, "/projects/", ".project-card"),
    ("project", ADMIN, "/project/?p=webshop", ".env-card"),
    ("environment", OPERATOR, "/environment/?p=webshop&e=staging", "#deploy-form"),
    ("tasks", OPERATOR, "/tasks/", "#all-tasks tbody tr"),
    ("task", OPERATOR, "/task/?id={task}", "#logs .log-line"),
    ("agents", OPERATOR, "/agents/", "table.agents tbody tr"),
    ("activity", ADMIN, "/activity/", "#activity tbody tr"),
    ("admin", ADMIN, "/admin/", "#admin-agents"),
]


@pytest.mark.parametrize(("name", "user", "path", "ready"), MAIN_PAGES,
                         ids=[p[0] for p in MAIN_PAGES])
def test_main_page_is_accessible_and_screenshotted(pages: Pages, finished_task: dict[str, Any],
                                                   name: str, user: Any, path: str,
                                                   ready: str) -> None:
    page = pages.open(user, path.format(task=finished_task["id"]))
    expect(page.locator(ready).first).to_be_visible()
    expect(page.locator("#page-error")).to_have_count(0 if name in ("landing", "admin") else 1)
    if name not in ("landing", "admin"):
        expect(page.locator("#page-error")).to_be_hidden()
    check_page(page, name)


def test_confirm_dialog_for_a_restore_is_in_the_danger_colour_and_names_the_environment(
        pages: Pages, world: World) -> None:
    page = pages.open(OPERATOR, "/environment/?p=webshop&e=staging")
    # The page learns of the new backup from its live updates, so it must have joined its
    # project's group (the indicator says live) before the backup finishes.
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    # A backup to choose: recorded through the API as the agent would report it.
    call(world.admin, pages.host, "POST", "/api/projects/webshop/environments/staging/backups", {})
    world.agent.finish_backup(world.agent.next_job())
    expect(page.locator("#restore-button")).to_be_enabled()
    page.click("#restore-button")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_have_class("confirm danger")
    expect(page.locator("#confirm-title")).to_contain_text("Restore Staging from backup")
    expect(page.locator("#confirm-ok")).to_be_disabled()
    page.fill("#confirm-type", "staging")
    expect(page.locator("#confirm-ok")).to_be_enabled()
    check_page(page, "confirm-restore")
    page.click("#confirm-cancel")
    expect(dialog).to_be_hidden()


def test_script_form_is_generated_from_the_catalogue_with_typed_fields(pages: Pages,
                                                                        world: World) -> None:
    page = pages.open(OPERATOR, "/environment/?p=webshop&e=dev")
    page.select_option("#script-select", "reindex")
    expect(page.locator("#param-batch")).to_have_attribute("type", "number")
    expect(page.locator("#param-batch")).to_have_value("500")
    expect(page.locator("#param-mode option")).to_have_text(["fast", "full"])
    expect(page.locator("#param-dry")).to_be_checked()
    page.fill("#param-batch", "250")
    page.select_option("#param-mode", "full")
    page.click("#script-button")
    expect(page.locator("#confirm-body")).to_contain_text('batch = 250')
    expect(page.locator("#confirm-body")).to_contain_text('mode = "full"')
    page.click("#confirm-ok")
    row = page.locator("#env-tasks tbody tr", has_text="Run script reindex").first
    expect(row).to_have_attribute("data-status", "succeeded")


def test_environment_page_fits_half_a_laptop_screen(pages: Pages, world: World) -> None:
    page = pages.open(OPERATOR, "/environment/?p=webshop&e=staging")
    page.set_viewport_size({"width": 700, "height": 900})
    expect(page.locator("#deploy-form")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    screenshot(page, "environment-half-screen")


def test_activity_log_filters_by_actor(pages: Pages, world: World,
                                       finished_task: dict[str, Any]) -> None:
    page = pages.open(ADMIN, "/activity/")
    expect(page.locator("#activity tbody tr").first).to_be_visible()
    page.fill("#filter-actor", "ada@example.com")
    page.click("#activity-filters button[type=submit]")
    actors = page.locator("#activity tbody tr td:nth-child(2)")
    expect(actors.filter(has_not_text="ada@example.com")).to_have_count(0)
    expect(actors.first).to_have_text("ada@example.com")
    page.fill("#filter-actor", "nobody@example.com")
    page.click("#activity-filters button[type=submit]")
    expect(page.locator("#activity-empty")).to_be_visible()


def test_operations_work_from_the_keyboard(pages: Pages, world: World) -> None:
    page = pages.open(OPERATOR, "/environment/?p=webshop&e=dev")
    expect(page.locator("#deploy-form")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    page.locator("#deploy-form input[name=version]").focus()
    page.keyboard.type("4.0.0")
    page.keyboard.press("Enter")  # submits the form: the confirm step opens, focus inside
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-cancel")).to_be_focused()  # the safe choice
    page.keyboard.press("Escape")  # nothing runs
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.keyboard.press("Enter")  # Enter pressed twice: the dialog closes, nothing runs
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(page.locator("#env-tasks tbody tr", has_text="Deploy 4.0.0")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#confirm-ok")).to_be_focused()
    page.keyboard.press("Enter")
    row = page.locator("#env-tasks tbody tr", has_text="Deploy 4.0.0")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "succeeded")


def test_an_unknown_page_is_a_404_with_the_navigation_and_no_try_again(pages: Pages,
                                                                       world: World) -> None:
    page = pages.open(OPERATOR, None)
    response = page.goto("/no-such-page/")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Page not found")
    expect(page.locator(".mainnav a[href='/tasks/']")).to_be_visible()
    missing = pages.open(OPERATOR, "/environment/?p=webshop&e=no-such-env")
    expect(missing.locator("#page-error")).to_be_visible()
    expect(missing.locator("#page-error [data-action=retry]")).to_be_hidden()
    expect(missing.locator("#page-error .error-hint")).to_contain_text("projects list")


def test_task_filters_are_kept_in_the_address(pages: Pages, world: World,
                                              finished_task: dict[str, Any]) -> None:
    page = pages.open(OPERATOR, "/tasks/")
    expect(page.locator("#all-tasks tbody tr").first).to_be_visible()
    page.select_option("#filter-status", "succeeded")
    expect(page).to_have_url(re.compile(r"/tasks/\?status=succeeded$"))
    page.select_option("#filter-project", "webshop")
    expect(page).to_have_url(re.compile(r"/tasks/\?project=webshop&status=succeeded$"))
    page.reload()
    expect(page.locator("#filter-status")).to_have_value("succeeded")
    expect(page.locator("#filter-project")).to_have_value("webshop")
    expect(page.locator("#all-tasks tbody tr[data-status]:not([data-status=succeeded])")) \
        .to_have_count(0)
    page.go_back()
    expect(page.locator("#filter-project")).to_have_value("")
    expect(page.locator("#filter-status")).to_have_value("succeeded")


def test_a_long_version_wraps_inside_its_boxes(pages: Pages, world: World) -> None:
    version = "1.0.0-" + "x" * 120
    call(world.admin, pages.host, "POST", "/api/projects/webshop/environments/dev/deployments",
         {"version": version})
    page = pages.open(OPERATOR, "/environment/?p=webshop&e=dev")
    row = page.locator("#env-tasks tbody tr", has_text=version[:20]).first
    expect(row).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0


PROJECT_TABS = [("Overview", "/project/"), ("Settings", "/project-settings/"),
                ("Access", "/access/"), ("Scripts", "/scripts/"),
                ("Notifications", "/notifications/"),
                ("Schedules & sandboxes", "/schedules/"), ("Backups", "/backups/")]


def test_every_project_page_is_reached_through_one_set_of_tabs(pages: Pages, world: World) -> None:
    name = call(world.admin, pages.host, "GET", "/api/projects/webshop")["name"]
    page = pages.open(ADMIN, "/project/?p=webshop")
    tabs = page.locator("#project-tabs a")
    for label, path in PROJECT_TABS:
        page.locator("#project-tabs").get_by_role("link", name=label, exact=True).click()
        expect(page).to_have_url(re.compile(re.escape(f"{path}?p=webshop") + "$"))
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator("#project-tabs")).to_be_visible()
        expect(tabs).to_have_text([name for name, _ in PROJECT_TABS])
        expect(page.locator("#project-tabs a[aria-current=page]")).to_have_text(label)
        expect(page.locator("#crumb-project")).to_have_text(name)
        # a project's pages sit under Projects in the main navigation
        expect(page.locator(".mainnav a[aria-current=page]")).to_have_text("Projects")
    for index in range(len(PROJECT_TABS)):
        assert tabs.nth(index).get_attribute("href").endswith("?p=webshop")


def test_the_admin_page_sends_pools_and_tokens_to_the_agents_page(pages: Pages) -> None:
    page = pages.open(ADMIN, "/admin/")
    expect(page.locator(".mainnav a[aria-current=page]")).to_have_text("Admin")
    assert page.locator("#pool-form, #token-form").count() == 0  # one place for them
    page.click("#admin-agents")
    expect(page).to_have_url(re.compile(r"/agents/$"))
    expect(page.locator("#pool-form")).to_be_visible()
