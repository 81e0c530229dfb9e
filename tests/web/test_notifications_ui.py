"""Notification rules in the browser: an admin creates, edits, tests and deletes a rule
(the webhook URL never shown back), API field errors appear next to their fields with
what was typed kept, readers see the controls disabled with the reason, and a task's page
lists the notifications its events produced."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.notify.sinks import WebhookSink
from tests.pipeline.test_pipeline_e2e import wait_for
from tests.waiting import wait_until
from tests.web.a11y import check_page
from tests.web.conftest import ADMIN, READER, Pages, World, call


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    receiver = WebhookSink()
    yield receiver
    receiver.close()


def _rules(world: World, pages: Pages) -> list[dict]:
    return call(world.admin, pages.host, "GET", "/api/projects/webshop/notification-rules")["items"]


def _delete_rules(world: World, pages: Pages) -> None:
    for rule in _rules(world, pages):
        call(world.admin, pages.host, "DELETE",
             f"/api/projects/webshop/notification-rules/{rule['id']}")


def test_an_admin_creates_edits_tests_and_deletes_a_rule_from_the_keyboard(
        pages: Pages, world: World, sink: WebhookSink) -> None:
    _delete_rules(world, pages)
    page = pages.open(ADMIN, "/notifications/?p=webshop")
    form = page.locator("#rule-form")
    expect(page.locator("#project-role")).to_have_text("your role here: admin")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")

    # a real 422 from the API: shown under the webhook field, everything typed kept
    page.locator("#rule-form input[name=name]").focus()
    page.keyboard.type("ops-alerts")
    page.locator("#events-task-failed").focus()
    page.keyboard.press("Space")
    page.fill("#rule-form input[name=webhookUrl]", "ftp://hooks.example/x")
    page.locator("#rule-submit").focus()
    page.keyboard.press("Enter")
    problem = form.locator("#webhook-field .field-problem")
    expect(problem).to_contain_text("must be an https URL")
    webhook = page.locator("#rule-form input[name=webhookUrl]")
    expect(webhook).to_have_attribute("aria-invalid", "true")
    expect(webhook).to_be_focused()
    expect(page.locator("#rule-form input[name=name]")).to_have_value("ops-alerts")
    expect(page.locator("#events-task-failed")).to_be_checked()
    expect(form.locator(".form-message.error")).to_contain_text("Not created.")
    assert _rules(world, pages) == []

    page.fill("#rule-form input[name=webhookUrl]", sink.url)
    expect(problem).to_have_count(0)  # typing clears the mark
    page.keyboard.press("Enter")
    row = page.locator("#rules tbody tr", has_text="ops-alerts")
    expect(row).to_contain_text("Task failed")
    expect(row).to_contain_text("http://127.0.0.1/…")
    expect(page.locator("#rules")).not_to_contain_text("SECRET")
    check_page(page, "notifications-admin", refused=(422,))

    # edit: the stored URL is kept when the field is left empty
    row.get_by_role("button", name="Edit rule ops-alerts").click()
    expect(page.locator("#rule-form-title")).to_have_text("Edit rule ops-alerts")
    expect(page.locator("#rule-form input[name=webhookUrl]")).to_have_value("")
    expect(page.locator("#webhook-hint")).to_contain_text("Leave empty to keep the stored URL")
    page.fill("#rule-form input[name=name]", "ops-all")
    page.check("#events-task-succeeded")
    page.check("#environments-dev")
    page.click("#rule-submit")
    row = page.locator("#rules tbody tr", has_text="ops-all")
    expect(row).to_contain_text("Task succeeded")
    expect(row).to_contain_text("dev")
    [rule] = _rules(world, pages)
    assert rule["hasWebhookUrl"] and rule["environments"] == ["dev"]

    row.get_by_role("button", name="Send a test through rule ops-all").click()
    expect(page.locator("#test-result")).to_have_text(
        "Test sent through ops-all to the Teams channel.")
    # exactly one test card (a task of another test ending in dev may also reach this rule)
    tests = [m for m in sink.delivered
             if "Test message for notification rule 'ops-all'" in json.dumps(m)]
    assert len(tests) == 1

    row.get_by_role("button", name="Delete rule ops-all").click()
    body = page.locator("#confirm-body")
    expect(body).to_contain_text("ops-all stops at once sending notifications (task "
                                 "succeeded, task failed) to its Teams channel.")
    expect(body).to_contain_text("Deliveries already made stay listed on their tasks")
    expect(page.locator("#confirm-cancel")).to_be_focused()  # the safe choice first
    page.click("#confirm-ok")
    expect(page.locator("#no-rules")).to_be_visible()
    assert _rules(world, pages) == []


def test_an_e_mail_rule_with_a_bad_address_is_marked_at_its_field(
        pages: Pages, world: World) -> None:
    page = pages.open(ADMIN, "/notifications/?p=webshop")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.fill("#rule-form input[name=name]", "mail")
    page.check("#events-backup-failed")
    page.select_option("#rule-channel", "email")
    page.fill("#rule-form textarea[name=recipients]", "ops@example.com, not-an-address")
    page.click("#rule-submit")
    expect(page.locator("#recipients-field .field-problem")).to_contain_text(
        "'not-an-address' is not an e-mail address")
    expect(page.locator("#rule-form textarea[name=recipients]")).to_have_value(
        "ops@example.com, not-an-address")
    page.uncheck("#events-backup-failed")
    page.fill("#rule-form textarea[name=recipients]", "ops@example.com")
    page.click("#rule-submit")  # no event: the API names the events group
    expect(page.locator("fieldset[data-field=events] .field-problem")).to_be_visible()
    expect(page.locator("#events-task-succeeded")).to_be_focused()


def test_a_reader_sees_the_rules_with_every_control_disabled_and_why(
        pages: Pages, world: World, sink: WebhookSink) -> None:
    _delete_rules(world, pages)
    call(world.admin, pages.host, "POST", "/api/projects/webshop/notification-rules",
         {"name": "team", "events": ["task.failed"], "channel": "teams",
          "webhookUrl": sink.url})
    page = pages.open(READER, "/notifications/?p=webshop")
    expect(page.locator("#rules tbody tr")).to_have_count(1)
    why = "Changing notification rules needs the admin role on this project; yours is reader."
    expect(page.locator("#rules-why-not")).to_have_text(why)
    for name in ("Edit rule team", "Send a test through rule team", "Delete rule team"):
        button = page.get_by_role("button", name=name)
        expect(button).to_be_disabled()
        expect(button).to_have_attribute("aria-describedby", "rules-why-not")
    expect(page.locator("#rule-submit")).to_be_disabled()
    expect(page.locator("#rule-form input[name=name]")).to_be_disabled()
    check_page(page, "notifications-reader")
    _delete_rules(world, pages)


def test_a_task_page_lists_the_notifications_its_outcome_sent(
        pages: Pages, world: World, sink: WebhookSink) -> None:
    _delete_rules(world, pages)
    call(world.admin, pages.host, "POST", "/api/projects/webshop/notification-rules",
         {"name": "deploys", "events": ["task.succeeded"], "environments": ["dev"],
          "channel": "teams", "webhookUrl": sink.url})
    task = call(world.admin, pages.host, "POST",
                "/api/projects/webshop/environments/dev/deployments", {"version": "9.9.9"})
    assert wait_for(world.admin, pages.host, task["id"])["status"] == "succeeded"
    page = pages.open(READER, f"/task/?id={task['id']}")
    row = page.locator("#deliveries tbody tr")
    delivered = page.locator("#deliveries tbody tr[data-status=delivered]")
    # the delivery is written by the orchestration after the task ends: poll, refreshing

    def refreshed() -> int:
        page.click("#deliveries-refresh")
        return delivered.count()

    wait_until(refreshed, "the task's delivery listed after a refresh", timeout=20,
               interval=0.2)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("task.succeeded")
    expect(row).to_contain_text("deploys")
    expect(row.locator(".badge")).to_have_text("delivered")
    expect(page.locator("#rules-link")).to_have_attribute("href", "/notifications/?p=webshop")
    check_page(page, "task-notifications")
    _delete_rules(world, pages)
