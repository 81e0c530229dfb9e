"""Approvals in the browser: pending approvals are shown to approvers only, and an
approver approves from the task page; the task then runs, live."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.conftest import ADMIN, OPERATOR, READER, Pages, World, api_session, call


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
