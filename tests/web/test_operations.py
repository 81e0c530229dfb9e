"""The web UI end to end in Chromium against our app on the local host: sign-in, creating
a project and environment, one-click operations with live progress, the task log across a
dropped WebSocket, roles, and readable API errors."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import ADMIN, OPERATOR, READER, Pages, World, call, screenshot


def test_signing_in_through_the_easy_auth_form_lands_on_the_projects_page(pages: Pages) -> None:
    page = pages.open(None, "/projects/")
    # SWA's 401 override sends anonymous visitors to the sign-in page, coming back after.
    expect(page).to_have_url(re.compile(r"/\.auth/login/aad\?post_login_redirect_uri=/projects/"))
    page.fill("input[name=userId]", "u-new")
    page.fill("input[name=userDetails]", "nina@example.com")
    page.fill("input[name=roles]", "operator")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/projects/$"))
    expect(page.locator("#usermenu .user-name").first).to_have_text("nina@example.com")
    expect(page.locator("#create-project")).to_be_visible()  # operators may create projects
    response = page.request.get("/projects/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "max-age=" in response.headers["strict-transport-security"]


def test_admin_creates_a_project_and_environment_and_a_deploy_succeeds_live(
        pages: Pages) -> None:
    page = pages.open(ADMIN, "/projects/")
    page.fill("#project-form input[name=slug]", "payments")
    page.fill("#project-form input[name=name]", "Payments")
    page.click("#project-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/project/\?p=payments"))
    expect(page.locator("#project-name")).to_have_text("Payments")

    page.click("#new-environment")
    expect(page).to_have_url(re.compile(r"/environment-settings/\?p=payments$"))
    page.fill("#env-form input[name=slug]", "qa")
    page.fill("#env-form input[name=name]", "QA")
    page.click("#env-save")
    expect(page).to_have_url(re.compile(r"/environment-settings/\?p=payments&e=qa&created=1"))
    page.click("#open-environment")
    expect(page).to_have_url(re.compile(r"/environment/\?p=payments&e=qa"))
    expect(page.locator("#env-name")).to_have_text("QA")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")

    page.evaluate("window.__notReloaded = true")
    page.fill("#deploy-form input[name=version]", "2.0.1")
    page.click("#deploy-button")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("QA (Payments) is a dry-run target: nothing is deployed; "
                                   "the task logs what it would do with version 2.0.1.")
    page.click("#confirm-ok")
    row = page.locator("#env-tasks tbody tr").first
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row.locator("progress")).to_have_attribute("value", "100")
    assert page.evaluate("window.__notReloaded") is True


def test_progress_moves_and_the_task_succeeds_without_reloading(pages: Pages,
                                                                world: World) -> None:
    page = pages.open(OPERATOR, "/environment/?p=webshop&e=staging")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")
    page.fill("#deploy-form input[name=version]", "3.1.0")
    page.click("#deploy-button")
    expect(page.locator("#confirm-title")).to_have_text("Deploy 3.1.0 to Staging?")
    page.click("#confirm-ok")

    job = world.agent.next_job()
    row = page.locator(f"#env-tasks tbody tr[data-task-id='{job['taskId']}']")
    expect(row).to_have_attribute("data-status", "running")
    queued = page.locator(f"#queue li[data-task-id='{job['taskId']}']")
    expect(queued.locator(".queue-pos")).to_have_text("now")
    for progress in (30, 70):
        world.agent.log(job, [f"at {progress}%"], progress=progress)
        expect(row.locator("progress")).to_have_attribute("value", str(progress))
    screenshot(page, "environment-running")
    agents = pages.open(OPERATOR, "/agents/")
    agent_row = agents.locator(f"tr[data-agent-id='{world.agent.id}']")
    expect(agent_row).to_have_attribute("data-status", "online")
    expect(agent_row.locator("a", has_text="Deploy 3.1.0")).to_be_visible()
    world.agent.finish(job)
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row.locator("progress")).to_have_attribute("value", "100")
    expect(page.locator("#queue-empty")).to_be_visible()
    assert page.evaluate("window.__notReloaded") is True


def shown_log(page: Any) -> list[tuple[int, str]]:
    return [(int(seq), text) for seq, text in page.evaluate(
        "[...document.querySelectorAll('#logs .log-line')]"
        ".map(n => [n.dataset.seq, n.querySelector('.log-text').textContent])")]


def test_task_log_streams_and_resumes_after_the_websocket_dies_with_no_gap(
        pages: Pages, world: World) -> None:
    host = pages.host
    task = call(world.admin, host, "POST", "/api/projects/webshop/environments/staging/deployments",
                {"version": "3.2.0"})
    job = world.agent.next_job()
    assert job["taskId"] == task["id"]
    finished = False
    try:
        page = pages.open(OPERATOR, f"/task/?id={task['id']}", track_sockets=True)
        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
        expect(page.locator("#task-status .badge")).to_have_text("running")

        world.agent.log(job, [f"line {i}" for i in range(1, 6)], progress=20)
        expect(page.locator("#logs .log-line", has_text="line 5")).to_be_visible()

        # Kill the live connection and keep the browser offline while more lines arrive.
        page.context.set_offline(True)
        # The socket dies as a dropped network kills it (code 1006, not clean), told to its
        # owner at once: a close() alone waits for a closing handshake that offline emulation
        # may hold up past the wait below (it did once, under load).
        page.evaluate("""window.__sockets.forEach(s => {
          const dying = s.onclose;
          s.close();
          if (dying) dying.call(s, new CloseEvent("close", {code: 1006, wasClean: false}));
        })""")
        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "reconnecting")
        world.agent.log(job, [f"line {i}" for i in range(6, 11)], progress=50)
        stored = call(world.admin, host, "GET", f"/api/tasks/{task['id']}/logs")["items"]
        assert "line 10" in [line["text"] for line in stored]  # the server has them all…
        assert not page.locator("#logs .log-line", has_text="line 6").count()  # …the page not yet
        page.context.set_offline(False)

        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live",
                                                                  timeout=20_000)
        expect(page.locator("#logs .log-line", has_text="line 10")).to_be_visible()
        world.agent.log(job, [f"line {i}" for i in range(11, 16)], progress=90)
        expect(page.locator("#logs .log-line", has_text="line 15")).to_be_visible()
        world.agent.finish(job)
        finished = True
        expect(page.locator("#task-status .badge")).to_have_text("succeeded")

        page.fill("#log-search", "line 1")
        expect(page.locator("#log-count")).to_contain_text("7 of")  # line 1, 10-15
        page.fill("#log-search", "")
        screenshot(page, "task")

        shown = shown_log(page)
        seqs = [seq for seq, _ in shown]
        assert seqs == list(range(1, len(seqs) + 1)), "gap or duplicate in the shown log"
        expected = call(world.admin, host, "GET", f"/api/tasks/{task['id']}/logs")["items"]
        assert shown == [(line["seq"], line["text"]) for line in expected]
        agent_lines = [text for _, text in shown if re.fullmatch(r"line \d+", text)]
        assert agent_lines == [f"line {i}" for i in range(1, 16)]
    finally:
        if not finished:  # a failure here must not leave staging held by this job
            world.agent.finish(job)


def test_a_reader_sees_no_operations_and_a_forged_call_is_refused(pages: Pages,
                                                                  world: World) -> None:
    page = pages.open(READER, "/environment/?p=webshop&e=dev")
    expect(page.locator("#readonly-note")).to_be_visible()
    expect(page.locator("#env-tasks")).to_be_visible()
    assert page.locator("#actions, #deploy-button, #restore-button, form.action").count() == 0
    status = page.evaluate("""async () => (await fetch(
        '/api/projects/webshop/environments/dev/deployments',
        {method: 'POST', headers: {'Content-Type': 'application/json'},
         body: JSON.stringify({version: '6.6.6'})})).status""")
    assert status == 403
    screenshot(page, "environment-reader")
    # The admin page is behind the SWA admin role: a reader gets the forbidden page.
    response = page.goto("/admin/")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("You don't have access to this page")


def test_api_errors_are_shown_readably(pages: Pages, world: World) -> None:
    page = pages.open(ADMIN, "/project/?p=no-such-project")
    error = page.locator("#page-error")
    expect(error).to_be_visible()
    expect(error.locator(".error-title")).to_contain_text("Could not load project no-such-project")
    expect(error.locator(".error-detail")).to_have_text("project no-such-project not found")
    expect(error.locator(".error-hint")).to_contain_text("deleted, or the link is wrong")
    screenshot(page, "error-state")

    page.goto("/projects/")
    page.fill("#project-form input[name=slug]", "webshop")
    page.fill("#project-form input[name=name]", "Duplicate")
    page.click("#project-form button[type=submit]")
    message = page.locator("#project-form .form-message.error")
    expect(message).to_contain_text("Could not create the project")
    expect(message).to_contain_text("Conflict: slug already exists")


def test_without_realtime_the_page_polls_and_says_so(pages: Pages, world: World) -> None:
    page = pages.open(OPERATOR, None)
    page.route("**/api/negotiate", lambda route: route.fulfill(
        status=503, content_type="application/problem+json",
        body='{"title": "Service unavailable", "status": 503, "detail": "SignalR is down"}'))
    page.goto("/environment/?p=webshop&e=dev")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "polling")
    expect(page.locator("#banner")).to_contain_text(
        "Live updates are unavailable (SignalR is down)")
    task = call(world.admin, pages.host, "POST",
                "/api/projects/webshop/environments/dev/deployments", {"version": "9.9.9"})
    row = page.locator(f"#env-tasks tbody tr[data-task-id='{task['id']}']")
    expect(row).to_have_attribute("data-status", "succeeded")



def test_task_list_shows_new_tasks_live_and_filters_by_status(pages: Pages,
                                                               world: World) -> None:
    page = pages.open(OPERATOR, "/tasks/")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    task = call(world.admin, pages.host, "POST",
                "/api/projects/webshop/environments/dev/deployments", {"version": "7.0.0"})
    row = page.locator(f"#all-tasks tbody tr[data-task-id='{task['id']}']")
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row).to_contain_text("Dev · Web shop")
    page.select_option("#filter-status", "failed")
    expect(row).to_have_count(0)
