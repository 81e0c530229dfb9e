"""Backup schedules and sandboxes in the browser: an admin adds, edits, pauses and deletes
a schedule whose next runs read in its own time zone; an operator extends a sandbox and
tears it down after typing its name; readers see the controls disabled with the reason;
the API's field errors land next to their fields with what was typed kept."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from tests.pipeline.test_pipeline_e2e import wait_for
from tests.web.a11y import check_page
from tests.web.conftest import ADMIN, OPERATOR, READER, Pages, World, call

ENV = "/api/projects/webshop/environments"


def _schedules(world: World, pages: Pages) -> list[dict[str, Any]]:
    return call(world.admin, pages.host, "GET", f"{ENV}/dev/backup-schedules")["items"]


def _clear_schedules(world: World, pages: Pages) -> None:
    for s in _schedules(world, pages):
        call(world.admin, pages.host, "DELETE", f"{ENV}/dev/backup-schedules/{s['id']}")


def _sandbox(world: World, pages: Pages) -> dict[str, Any]:
    name = f"sb-{uuid.uuid4().hex[:5]}"
    task = call(world.admin, pages.host, "POST", f"{ENV}/dev/sandboxes",
                {"name": name, "ttlHours": 8})
    assert wait_for(world.admin, pages.host, task["id"])["status"] == "succeeded"
    envs = call(world.admin, pages.host, "GET", ENV)["items"]
    return next(e for e in envs if e["kind"] == "sandbox" and name in e["slug"])


def _ready(page: Any) -> None:
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def test_an_admin_adds_edits_and_deletes_a_schedule_shown_in_its_own_zone(
        pages: Pages, world: World) -> None:
    _clear_schedules(world, pages)
    page = pages.open(ADMIN, "/schedules/?p=webshop")
    _ready(page)
    form = page.locator("#schedule-form")
    page.select_option("#schedule-env", "dev")
    page.fill("#schedule-form input[name=cron]", "0 * * * * *")  # every minute: refused
    page.fill("#schedule-form input[name=timeZone]", "Asia/Tokyo")
    page.fill("#schedule-form input[name=retainCount]", "7")
    page.click("#schedule-submit")
    cron = page.locator("#schedule-form input[name=cron]")
    expect(form.locator(".field-problem")).to_have_text(
        "cron fires more often than every 0:15:00 (each slot takes a full backup)")
    expect(cron).to_have_attribute("aria-invalid", "true")
    expect(cron).to_be_focused()
    expect(page.locator("#schedule-form input[name=timeZone]")).to_have_value("Asia/Tokyo")
    expect(page.locator("#schedule-form input[name=retainCount]")).to_have_value("7")
    assert _schedules(world, pages) == []

    page.fill("#schedule-form input[name=cron]", "0 0 2 * * *")
    page.click("#schedule-submit")
    row = page.locator("#schedules tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Asia/Tokyo")
    expect(row).to_contain_text("newest 7")
    runs = row.locator("ol.slots li")
    expect(runs).to_have_count(5)
    expect(runs.first).to_contain_text("02:00 GMT+9")  # 02:00 in Tokyo, said in Tokyo time
    expect(form.locator(".form-message.ok")).to_contain_text("Next backup:")
    check_page(page, "schedules-admin", refused=(400,))

    row.get_by_role("button", name="Edit the schedule of Dev (0 0 2 * * *)").click()
    expect(page.locator("#schedule-form-title")).to_have_text("Edit the schedule of Dev")
    page.fill("#schedule-form input[name=retainDays]", "30")
    page.uncheck("#schedule-form input[name=enabled]")
    page.click("#schedule-submit")
    expect(row).to_contain_text("newest 7, at most 30 days")
    expect(row).to_contain_text("paused")
    [schedule] = _schedules(world, pages)
    assert schedule["enabled"] is False and schedule["retainDays"] == 30

    row.get_by_role("button", name="Delete the schedule of Dev (0 0 2 * * *)").click()
    expect(page.locator("#confirm-body")).to_contain_text(
        'No more backups of Dev are taken at "0 0 2 * * *" (Asia/Tokyo).')
    page.click("#confirm-ok")
    expect(page.locator("#no-schedules")).to_be_visible()
    assert _schedules(world, pages) == []


def test_an_operator_extends_a_sandbox_and_tears_it_down_after_typing_its_name(
        pages: Pages, world: World) -> None:
    sandbox = _sandbox(world, pages)
    slug = sandbox["slug"]
    page = pages.open(OPERATOR, "/schedules/?p=webshop")
    _ready(page)
    row = page.locator(f"#sandboxes tbody tr[data-env='{slug}']")
    expect(row).to_contain_text("Dev")  # the copy's parent
    expect(page.get_by_role("button", name="Edit the schedule of Dev")).to_have_count(0)
    expect(page.locator("#schedule-submit")).to_be_disabled()
    expect(page.locator("#schedules-why-not")).to_have_text(
        "Changing backup schedules needs the admin role on this project; yours is operator.")

    hours = row.locator("input[name=hours]")
    hours.fill("500")  # the API allows 1-168 hours at a time
    row.get_by_role("button", name=f"Extend {sandbox['name']}").click()
    expect(row.locator(".field-problem")).to_contain_text("less than or equal to 168")
    expect(hours).to_have_value("500")
    expect(hours).to_be_focused()
    hours.fill("24")
    hours.press("Enter")
    expect(page.locator("#sandbox-message")).to_contain_text(f"{sandbox['name']} now expires")
    after = call(world.admin, pages.host, "GET", f"{ENV}/{slug}")
    assert after["expiresAt"] > sandbox["expiresAt"]
    check_page(page, "schedules-sandboxes-operator", refused=(422,))

    row.get_by_role("button", name=f"Tear down {sandbox['name']}").click()
    body = page.locator("#confirm-body")
    expect(body).to_contain_text(f"A teardown task runs on {slug}: its database and workloads "
                                 "are deleted, then the sandbox itself.")
    expect(body).to_contain_text("nothing is backed up first")
    ok = page.locator("#confirm-ok")
    expect(ok).to_be_disabled()
    page.keyboard.type(slug)  # the typed confirmation has the focus
    expect(ok).to_be_enabled()
    ok.click()
    link = page.locator("#sandbox-message a")
    expect(link).to_have_text("follow the task")
    task_id = link.get_attribute("href").split("id=")[1]
    assert wait_for(world.admin, pages.host, task_id)["status"] == "succeeded"


def test_a_reader_sees_schedules_and_sandboxes_but_may_change_neither(
        pages: Pages, world: World) -> None:
    _clear_schedules(world, pages)
    call(world.admin, pages.host, "POST", f"{ENV}/dev/backup-schedules",
         {"cron": "0 30 1 * * 1-5", "timeZone": "Europe/Amsterdam", "retainDays": 14})
    sandbox = _sandbox(world, pages)
    page = pages.open(READER, "/schedules/?p=webshop")
    _ready(page)
    expect(page.locator("#schedules tbody tr")).to_contain_text("14 days")
    edit = page.get_by_role("button", name="Edit the schedule of Dev (0 30 1 * * 1-5)")
    expect(edit).to_be_disabled()
    expect(edit).to_have_attribute("aria-describedby", "schedules-why-not")
    teardown = page.get_by_role("button", name=f"Tear down {sandbox['name']}")
    expect(teardown).to_be_disabled()
    expect(page.locator("#sandboxes-why-not")).to_have_text(
        "Extending or tearing down a sandbox needs the operator role on this project; "
        "yours is reader.")
    check_page(page, "schedules-reader")
    _clear_schedules(world, pages)
    gone = call(world.admin, pages.host, "POST", f"{ENV}/{sandbox['slug']}/teardown", {})
    assert wait_for(world.admin, pages.host, gone["id"])["status"] == "succeeded"
