"""The agents page: an admin creates a pool, issues a registration token shown once with
the command line to paste, sees the agent that registers with it, disables, enables and
revokes it, and grants the pool to a project and withdraws it; API field errors land next
to their fields; an operator sees the same page with every control disabled and why."""

from __future__ import annotations

import uuid
from typing import Any

import requests
from playwright.sync_api import expect

from tests.web.a11y import check_page
from tests.web.conftest import ADMIN, OPERATOR, Pages, World


def _ready(page: Any) -> None:
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def test_an_admin_creates_a_pool_registers_an_agent_and_manages_it(
        pages: Pages, world: World) -> None:
    page = pages.open(ADMIN, "/agents/")
    _ready(page)
    name = page.locator("#pool-form input[name=name]")
    name.fill("Bad Pool")
    page.fill("#pool-form input[name=description]", "GPU runners")
    page.click("#pool-submit")
    expect(page.locator("#pool-form .field-problem")).to_have_text(
        "name must be lower-case letters, digits and dashes (1-63)")
    expect(name).to_be_focused()
    expect(page.locator("#pool-form input[name=description]")).to_have_value("GPU runners")

    pool = f"gpu-{uuid.uuid4().hex[:5]}"
    name.fill(pool)
    name.press("Enter")
    section = page.locator(f"section.pool[data-pool='{pool}']")
    expect(section).to_contain_text("No agents registered in this pool.")
    expect(section.locator("details")).to_have_attribute("open", "")

    form = section.locator("form[id^=token-form]")
    form.locator("input[name=expiresInMinutes]").fill("100000")
    form.get_by_role("button", name="Issue token").click()
    minutes = form.locator("input[name=expiresInMinutes]")
    expect(form.locator(".field-problem")).to_contain_text("expiresInMinutes must be at most")
    expect(minutes).to_have_attribute("aria-invalid", "true")
    minutes.fill("30")
    form.locator("input[name=labels]").fill("linux, gpu")
    form.get_by_role("button", name="Issue token").click()
    token = section.locator("pre[id^=token-]").inner_text().strip()
    command = section.locator("pre[id^=command-]")
    expect(command).to_have_text(
        f"cloudops-agent register --url {pages.host.base_url} --pool {pool} --token {token} "
        "--labels linux,gpu\ncloudops-agent run")
    expect(section).to_contain_text("Copy it now: this token is not shown again.")
    expect(section.get_by_role("button", name=f"Copy the command line for {pool}")).to_be_visible()
    check_page(page, "agents-token-admin", refused=(422,))

    reply = requests.post(pages.host.url("/api/agent/register"), timeout=30, json={
        "token": token, "name": "gpu-1", "labels": ["linux", "gpu"], "version": "2.4.0",
        "os": "linux"})
    assert reply.status_code == 201, reply.text
    page.reload()
    _ready(page)
    row = section.locator("tbody tr", has_text="gpu-1")
    expect(row).to_contain_text("2.4.0")
    expect(row).to_contain_text("gpu")
    expect(row).to_contain_text("idle")

    row.get_by_role("button", name="Disable agent gpu-1").click()
    expect(page.locator("#confirm-body")).to_contain_text(
        "gpu-1 gets no new jobs; a job it is running now finishes.")
    page.click("#confirm-ok")
    expect(row.locator(".badge")).to_have_text("disabled")
    row.get_by_role("button", name="Enable agent gpu-1").click()
    expect(row.locator(".badge")).not_to_have_text("disabled")

    row.get_by_role("button", name="Revoke agent gpu-1").click()
    expect(page.locator("#confirm-body")).to_contain_text("must register anew with a new token")
    expect(page.locator("#confirm-ok")).to_be_disabled()
    page.keyboard.type("gpu-1")
    page.keyboard.press("Tab")  # past Cancel (Enter in the field means cancel) to Revoke
    page.keyboard.press("Tab")
    expect(page.locator("#confirm-ok")).to_be_focused()
    page.keyboard.press("Enter")
    expect(row.locator(".badge")).to_have_text("revoked")
    assert requests.post(pages.host.url("/api/agent/heartbeat"), json={}, timeout=30,
                         headers={"Authorization": f"Bearer {reply.json()['key']}"}
                         ).status_code == 401

    grants = section.locator("div.grants")
    expect(grants).to_contain_text("no project")
    grants.get_by_role("button", name=f"Grant {pool}").click()  # no project chosen yet
    choice = grants.locator("select[name=project]")
    expect(grants.locator(".field-problem")).to_have_text(
        f"Choose the project to grant {pool} to.")
    expect(choice).to_have_attribute("aria-invalid", "true")
    choice.select_option("webshop")
    expect(grants.locator(".field-problem")).to_have_count(0)
    grants.get_by_role("button", name=f"Grant {pool}").click()
    expect(grants.locator(".chip")).to_contain_text("webshop")
    grants.get_by_role("button", name=f"Withdraw {pool} from webshop").click()
    expect(page.locator("#confirm-body")).to_contain_text(
        f"Environments of project webshop can no longer use pool {pool}.")
    page.click("#confirm-ok")
    expect(grants).to_contain_text("no project")


def test_an_operator_sees_agents_with_every_control_disabled_and_why(
        pages: Pages, world: World) -> None:
    page = pages.open(OPERATOR, "/agents/")
    _ready(page)
    why = page.locator("#admin-why-not")
    expect(why).to_have_text("Managing pools, agents and grants needs the global admin role; "
                             "yours is operator.")
    expect(page.locator("#pool-submit")).to_be_disabled()
    section = page.locator("section.pool[data-pool='web-pool']")
    row = section.locator("tbody tr", has_text="web-test-web-pool")
    disable = row.get_by_role("button", name="Disable agent web-test-web-pool")
    expect(disable).to_be_disabled()
    expect(disable).to_have_attribute("aria-describedby", "admin-why-not")
    section.locator("summary").click()  # open "Register an agent in web-pool"
    expect(section.get_by_role("button", name="Issue token")).to_be_disabled()
    check_page(page, "agents-operator")
