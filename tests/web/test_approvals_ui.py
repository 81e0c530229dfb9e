"""Approvals in the browser: pending approvals are shown to approvers only; an approver
approves from the task page, or on the pending-approvals page, which shows the exact plan
being approved (the script's argv) and takes a comment; the task then runs, live. A
decision the API refuses is shown on its card with the comment kept."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from tests.web.a11y import check_page
from tests.web.conftest import (
    ADMIN,
    OPERATOR,
    READER,
    Pages,
    World,
    api_session,
    call,
)


def test_an_approver_sees_the_pending_approval_and_approves_from_the_task_page(
        pages: Pages, world: World) -> None:
    host = pages.host
    call(world.admin, host, "POST", "/api/projects/webshop/environments",
         {"slug": "gated", "name": "Gated", "target": {"type": "noop"}})
    call(world.admin, host, "PUT", "/api/projects/webshop/environments/gated/protection",
         {"operations": ["deploy"], "approvers": [{"type": "user", "id": READER.id}]})
    task = call(api_session(host, OPERATOR), host, "POST",
                "/api/projects/webshop/environments/gated/deployments", {"version": "4.0.0"})

    requester = pages.open(OPERATOR, f"/task/?id={task['id']}")
    expect(requester.locator("#approval-state")).to_contain_text(
        f"Awaiting approval from user {READER.id} (0 of 1)")
    expect(requester.locator("#approval-form")).to_be_hidden()  # not an approver

    other = pages.open(ADMIN, "/tasks/")
    expect(other.locator("#all-tasks")).to_contain_text("4.0.0")
    expect(other.locator("#my-approvals")).to_be_hidden()

    approver = pages.open(READER, "/tasks/")
    expect(approver.locator("#my-approvals")).to_be_visible()
    approver.click(f"#my-approvals-list a[href='/task/?id={task['id']}']")
    expect(approver.locator("#approval-form")).to_be_visible()
    approver.fill("#approval-comment", "looks good")
    approver.click("#approve-button")
    expect(approver.locator("#task-status .badge")).to_have_text("succeeded")
    expect(approver.locator("#approval-decisions")).to_contain_text("looks good")
    expect(requester.locator("#task-status .badge")).to_have_text("succeeded")  # live


def _env(world: World, host: Any) -> str:
    slug = f"a-{uuid.uuid4().hex[:6]}"
    call(world.admin, host, "POST", "/api/projects/webshop/environments",
         {"slug": slug, "name": slug.upper(), "target": {"type": "noop"}})
    return slug


def _protected_run(world: World, host: Any) -> tuple[str, dict[str, Any]]:
    slug = _env(world, host)
    call(world.admin, host, "PUT", f"/api/projects/webshop/environments/{slug}/protection",
         {"operations": ["script_run"], "approvers": [{"type": "user", "id": READER.id}]})
    task = call(api_session(host, OPERATOR), host, "POST",
                f"/api/projects/webshop/environments/{slug}/scripts/reindex/runs",
                {"parameters": {"batch": 50, "mode": "full"}})
    return slug, task


def test_an_approver_approves_the_exact_plan_on_the_approvals_page(
        pages: Pages, world: World) -> None:
    slug, task = _protected_run(world, pages.host)
    requester = pages.open(OPERATOR, "/approvals/")
    expect(requester.locator("#no-approvals")).to_be_visible()  # not an approver

    page = pages.open(READER, "/approvals/")
    card = page.locator(f"article[data-task-id='{task['id']}']")
    expect(card).to_contain_text("Run script reindex")
    expect(card).to_contain_text("0 of 1 approval(s) from user u-reader")
    argv = card.locator("ol.argv-preview li")
    expect(argv).to_have_text(["./reindex.sh", "--batch", "50", "--mode", "full",
                               "--dry=true"])
    check_page(page, "approvals")
    card.locator("textarea").fill("batch size checked")
    card.locator(f"#approve-{task['id']}").click()
    expect(page.locator("#confirm-dialog")).to_contain_text(
        f"It then joins the queue of {slug.upper()} and runs the plan shown.")
    page.click("#confirm-ok")
    expect(card).to_have_count(0)
    expect(page.locator("#no-approvals")).to_be_visible()
    decided = call(world.admin, pages.host, "GET", f"/api/tasks/{task['id']}")
    assert decided["approval"]["state"] == "approved"
    assert decided["approval"]["decisions"][0]["comment"] == "batch size checked"


def test_a_decision_the_api_refuses_shows_on_its_card_and_the_comment_stays(
        pages: Pages, world: World) -> None:
    slug = _env(world, pages.host)
    call(world.admin, pages.host, "PUT", f"/api/projects/webshop/environments/{slug}/protection",
         {"operations": ["deploy"], "requiredApprovals": 2,
          "approvers": [{"type": "user", "id": READER.id},
                        {"type": "group", "id": "release-managers"}]})
    task = call(api_session(pages.host, OPERATOR), pages.host, "POST",
                f"/api/projects/webshop/environments/{slug}/deployments", {"version": "7.1.0"})
    page = pages.open(READER, "/approvals/")
    card = page.locator(f"article[data-task-id='{task['id']}']")
    expect(card).to_contain_text("0 of 2 approval(s)")
    card.locator(f"#reject-{task['id']}").click()
    expect(page.locator("#confirm-dialog")).to_contain_text(
        "The task is cancelled with your comment as the reason; it will not run.")
    page.click("#confirm-cancel")
    # meanwhile this approver decided through the API: the card updates live
    call(api_session(pages.host, READER), pages.host, "POST",
         f"/api/tasks/{task['id']}/approvals", {"decision": "approve", "comment": "cli"})
    expect(card).to_contain_text("1 of 2 approval(s)")
    card.locator("textarea").fill("second thoughts")
    card.locator(f"#approve-{task['id']}").click()
    expect(page.locator("#confirm-dialog")).to_contain_text(
        f"It then joins the queue of {slug.upper()}")
    page.click("#confirm-ok")
    expect(card.locator(".form-message")).to_contain_text(
        "Your decision was not recorded. Conflict:")
    expect(card.locator(".form-message")).to_contain_text("already decided on this task")
    expect(card.locator("textarea")).to_have_value("second thoughts")


