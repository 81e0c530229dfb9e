"""The task page reads like a person wrote it: a failure shows its headline and its last
output lines as a block, a cancel says who asked without looking like an error, times
name their zone, and a long log is virtualised (few DOM rows, search over every line)."""

from __future__ import annotations

import re
from typing import Any

import requests
from playwright.sync_api import expect

from tests.web.conftest import ADMIN, OPERATOR, Pages, World, call


def _deploy(world: World, pages: Pages, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    task = call(world.admin, pages.host, "POST",
                "/api/projects/webshop/environments/staging/deployments", {"version": version})
    job = world.agent.next_job()
    assert job["taskId"] == task["id"]
    return task, job


def test_a_failure_shows_its_headline_and_last_output_as_a_block(pages: Pages,
                                                                 world: World) -> None:
    task, job = _deploy(world, pages, "6.6.6")
    tail = ["[1/2] migrating", "Traceback (most recent call last):",
            '  File "deploy.py", line 3, in <module>', "ValueError: no such column: price"]
    world.agent.log(job, tail)
    # The agent's error is the script's handler's: a headline, then the output's tail.
    reply = requests.post(pages.host.url(f"/api/agent/jobs/{job['id']}/result"),
                          headers=world.agent.headers, timeout=30, json={
                              "status": "failed",
                              "error": "deploy exited with code 1; last lines:\n"
                                       + "\n".join(tail)})
    assert reply.status_code == 200, reply.text
    page = pages.open(OPERATOR, f"/task/?id={task['id']}")
    expect(page.locator("#task-status .badge")).to_have_text("failed")
    failure = page.locator("#task-failure")
    expect(failure).to_be_visible()
    expect(page.locator("#failure-output")).to_contain_text(
        'File "deploy.py", line 3, in <module>\nValueError: no such column: price')
    assert page.locator("#failure-output").evaluate("e => getComputedStyle(e).whiteSpace") \
        == "pre"
    expect(page.locator("#failure-headline")).to_have_text("deploy exited with code 1")
    expect(page.locator("#task-reason")).to_have_text("")  # said once, in the block


def test_a_requested_cancel_names_who_asked_and_is_not_an_error(pages: Pages,
                                                               world: World) -> None:
    task, job = _deploy(world, pages, "6.6.7")
    call(world.admin, pages.host, "POST", f"/api/tasks/{task['id']}/cancel", {},
         expect=202)
    world.agent.finish(job, "cancelled")
    page = pages.open(OPERATOR, f"/task/?id={task['id']}")
    expect(page.locator("#task-status .badge")).to_have_text("cancelled")
    note = page.locator("#task-cancelled")
    expect(note).to_have_text(re.compile(rf"^cancelled by .*{re.escape(ADMIN.name)}.*\.$"))
    assert "error" not in (note.get_attribute("class") or "")
    expect(page.locator("#task-failure")).to_be_hidden()
    expect(page.locator("#task-reason")).to_have_text("")  # said once, in the note


def test_times_name_their_zone_and_relative_ones_show_the_absolute_on_hover(
        pages: Pages, world: World) -> None:
    task, job = _deploy(world, pages, "6.6.8")
    world.agent.finish(job)
    page = pages.open(OPERATOR, f"/task/?id={task['id']}")
    created = page.locator("#task-facts dd").nth(2)
    zone = page.evaluate("Intl.DateTimeFormat(undefined, {timeZoneName: 'short'})"
                         ".formatToParts(new Date()).find(p => p.type === 'timeZoneName').value")
    expect(created).to_contain_text(zone)
    expect(page.locator("#log-zone")).to_have_text(f"times in {zone}")
    tasks = pages.open(OPERATOR, "/tasks/")
    relative = tasks.locator(f"#all-tasks tr[data-task-id='{task['id']}'] time")
    expect(relative).to_have_text(re.compile(r"ago|just now"))
    assert zone in (relative.get_attribute("title") or "")


def test_activity_entries_read_as_sentences(pages: Pages, world: World) -> None:
    task, job = _deploy(world, pages, "6.6.9")
    world.agent.finish(job)
    page = pages.open(ADMIN, "/activity/")
    row = page.locator("#activity tbody tr", has=page.locator(f"a[href='/task/?id={task['id']}']"))
    expect(row.filter(has_text="requested a deployment")).to_have_count(1)
    expect(row.filter(has_text="the task succeeded")).to_have_count(1)
    expect(page.locator("#activity tbody .details summary").first).to_be_visible()


def test_a_long_log_keeps_few_rows_in_the_page_and_searches_every_line(
        pages: Pages, world: World) -> None:
    task, job = _deploy(world, pages, "7.7.7")
    for start in (0, 2000):
        world.agent.log(job, [f"row {i}" for i in range(start, start + 2000)])
    world.agent.finish(job)
    page = pages.open(OPERATOR, f"/task/?id={task['id']}")
    expect(page.locator("#task-status .badge")).to_have_text("succeeded")
    total = call(world.admin, pages.host, "GET",
                 f"/api/tasks/{task['id']}/logs?after=3990")["items"][-1]["seq"]
    expect(page.locator("#log-count")).to_have_text(f"{total} lines")
    assert page.locator("#logs .log-line").count() < 200  # virtualised, not 4,000 rows
    page.fill("#log-search", "row 3999")
    expect(page.locator("#log-count")).to_have_text(f"1 of {total} lines match")
    expect(page.locator("#logs .log-line .log-text")).to_have_text(["row 3999"])
    page.fill("#log-search", "")
    page.locator("#logs").evaluate("e => { e.scrollTop = e.scrollHeight; }")
    expect(page.locator("#logs .log-line", has_text="row 3999")).to_be_visible()
    assert page.locator("#logs .log-line").count() < 200


def test_an_open_page_shows_the_closing_line_that_came_with_the_terminal_status(
        pages: Pages, world: World) -> None:
    task, job = _deploy(world, pages, "7.7.8")
    world.agent.log(job, ["step one"])
    page = pages.open(OPERATOR, f"/task/?id={task['id']}")
    expect(page.locator("#logs .log-line .log-text").last).to_have_text("step one")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")  # joined
    world.agent.finish(job)
    expect(page.locator("#task-status .badge")).to_have_text("succeeded")
    expect(page.locator("#logs .log-line .log-text").last).to_contain_text("succeeded")
    total = call(world.admin, pages.host, "GET", f"/api/tasks/{task['id']}/logs")["items"]
    expect(page.locator("#log-count")).to_have_text(f"{len(total)} lines")
