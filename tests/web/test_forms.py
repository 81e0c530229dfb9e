"""Operation forms check their fields against the API's OpenAPI constraints before the
confirm step opens, say what is wrong in words next to the field, and the confirm step
tells the truth: where a sandbox's data comes from, and when approval is needed."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from tests.pipeline.test_pipeline_e2e import wait_for
from tests.waiting import wait_until
from tests.web.conftest import ADMIN, OPERATOR, Pages, World, call


def _tasks(world: World, pages: Pages, env: str) -> list[dict[str, Any]]:
    return call(world.admin, pages.host, "GET",
                f"/api/tasks?project=webshop&environment={env}")["items"]


def _environment(world: World, pages: Pages, target: dict[str, Any]) -> str:
    slug = f"f-{uuid.uuid4().hex[:6]}"
    call(world.admin, pages.host, "POST", "/api/projects/webshop/environments",
         {"slug": slug, "name": slug.upper(), "target": target,
          "database": {"connection": "db"}})
    return slug


def test_a_version_with_a_space_is_refused_in_words_before_any_confirm(
        pages: Pages, world: World) -> None:
    page = pages.open(OPERATOR, "/environment/?p=webshop&e=dev")
    before = len(_tasks(world, pages, "dev"))
    page.fill("#deploy-form input[name=version]", "1.0 beta")
    page.click("#deploy-button")
    problem = page.locator("#deploy-form .field-problem")
    expect(problem).to_have_text(
        "Version: start with a letter or digit, then letters, digits and . _ + : / @ - "
        "(no spaces).")
    expect(page.locator("#deploy-form input[name=version]")).to_have_attribute(
        "aria-invalid", "true")
    expect(page.locator("#deploy-form input[name=version]")).to_be_focused()
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    page.fill("#deploy-form input[name=version]", "1.0-beta")  # typing clears the mark
    expect(problem).to_have_count(0)
    assert len(_tasks(world, pages, "dev")) == before


def test_sandbox_lifetime_and_name_are_checked_against_the_api_limits(
        pages: Pages, world: World) -> None:
    page = pages.open(OPERATOR, "/environment/?p=webshop&e=dev")
    before = len(_tasks(world, pages, "dev"))
    page.fill("#sandbox-form input[name=name]", "feature-x")
    for ttl in ("0", "10000", "2.5"):
        page.fill("#sandbox-form input[name=ttlHours]", ttl)
        page.click("#sandbox-button")
        expected = ("Lifetime (hours) must be a whole number." if ttl == "2.5"
                    else "Lifetime (hours) must be from 1 to 168.")
        expect(page.locator("#sandbox-form .field-problem")).to_have_text(expected)
        expect(page.locator("#confirm-dialog")).to_be_hidden()
    page.fill("#sandbox-form input[name=ttlHours]", "8")
    page.fill("#sandbox-form input[name=name]", "PR-UPPER")
    page.click("#sandbox-button")
    expect(page.locator("#sandbox-form .field-problem")).to_have_text(
        "Name: use lower-case letters, digits and hyphens (at most 63), starting and ending "
        "with a letter or digit.")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert len(_tasks(world, pages, "dev")) == before


def test_a_problem_the_api_finds_is_shown_next_to_its_field(pages: Pages,
                                                            world: World) -> None:
    page = pages.open(OPERATOR, "/environment/?p=webshop&e=dev")
    page.fill("#sandbox-form input[name=name]", "staging")  # valid, but taken
    page.click("#sandbox-button")
    page.click("#confirm-ok")
    expect(page.locator("#sandbox-form .field-problem")).to_have_text(
        "an environment named staging already exists")
    expect(page.locator("#sandbox-form .form-message.error")).to_contain_text("Not started.")


def test_the_sandbox_dialog_says_where_its_data_comes_from(pages: Pages,
                                                           world: World) -> None:
    agent_env = _environment(world, pages, {"type": "agent", "pool": "web-pool"})
    page = pages.open(OPERATOR, f"/environment/?p=webshop&e={agent_env}")
    page.fill("#sandbox-form input[name=name]", "copy")
    page.click("#sandbox-button")
    body = page.locator("#confirm-body")
    expect(body).to_contain_text(f"A fresh backup of {agent_env.upper()} is taken first, "
                                 "and the sandbox's database is seeded from it")
    page.click("#confirm-cancel")

    task = call(world.admin, pages.host, "POST",
                f"/api/projects/webshop/environments/{agent_env}/backups", {})
    job = world.agent.next_job()
    world.agent.finish_backup(job)
    # the backup is recorded by the orchestration after the result: wait for that fact
    assert wait_for(world.admin, pages.host, task["id"])["status"] == "succeeded"
    backup = call(world.admin, pages.host, "GET",
                  f"/api/projects/webshop/environments/{agent_env}/backups")["items"][0]
    page.reload()
    page.fill("#sandbox-form input[name=name]", "copy")
    page.select_option("#sandbox-seed", backup["id"])
    page.click("#sandbox-button")
    expect(body).to_contain_text(f"Its database is seeded from {agent_env.upper()}'s backup "
                                 f"{backup['id'][:8]} taken")
    expect(body).to_contain_text("no new backup is taken")
    page.click("#confirm-cancel")

    noop = pages.open(OPERATOR, "/environment/?p=webshop&e=dev")
    noop.fill("#sandbox-form input[name=name]", "copy")
    noop.click("#sandbox-button")
    expect(noop.locator("#confirm-body")).to_contain_text(
        "No data is copied: Dev's noop target has no database to seed a sandbox from.")


def test_the_confirm_step_says_when_approval_is_needed(pages: Pages, world: World) -> None:
    guarded = _environment(world, pages, {"type": "noop"})
    call(world.admin, pages.host, "PUT",
         f"/api/projects/webshop/environments/{guarded}/protection",
         {"operations": ["deploy"], "approvers": [{"type": "user", "id": ADMIN.name}],
          "requiredApprovals": 2, "timeoutMinutes": 120})
    page = pages.open(OPERATOR, f"/environment/?p=webshop&e={guarded}")
    page.fill("#deploy-form input[name=version]", "1.0.0")
    page.click("#deploy-button")
    expect(page.locator("#confirm-body")).to_contain_text(
        f"{guarded.upper()} is protected: this waits for 2 approvals from {ADMIN.name} "
        "(not yours) before it joins the queue, and is cancelled if not approved within "
        "2 hours.")
    expect(page.locator("#confirm-ok")).to_have_text(f"Deploy to {guarded.upper()} "
                                                     "(after approval)")
    expect(page.locator("#confirm-body")).to_contain_text("is a dry-run target")
    page.click("#confirm-cancel")
    page.fill("#restart-form input[name=workload]", "web")
    page.click("#restart-button")  # restarts are not protected here: no approval line
    expect(page.locator("#confirm-body")).not_to_contain_text("protected")
    page.click("#confirm-cancel")


def test_an_app_service_deploy_ships_the_package_or_image_chosen(pages: Pages,
                                                                 world: World) -> None:
    site = _environment(world, pages, {
        "type": "appservice", "subscriptionId": "00000000-0000-4000-8000-000000000001",
        "resourceGroup": "rg-shop", "site": "shop-web", "slot": "staging"})
    page = pages.open(OPERATOR, f"/environment/?p=webshop&e={site}")
    page.fill("#deploy-form input[name=version]", "2.1.0")
    page.fill("#deploy-form input[name=packageUrl]",
              "https://pkgs.example/shop-2.1.0.zip?sig=s3cret")
    page.fill("#deploy-form input[name=image]", "acr.example/shop:2.1.0")
    page.click("#deploy-button")
    expect(page.locator("#deploy-form")).to_contain_text("not both")
    expect(page.locator("#confirm-dialog")).to_be_hidden()

    page.fill("#deploy-form input[name=image]", "")
    page.click("#deploy-button")
    body = page.locator("#confirm-body")
    expect(body).to_contain_text("with the package https://pkgs.example/shop-2.1.0.zip?… "
                                 "(the slot runs from it: WEBSITE_RUN_FROM_PACKAGE)")
    expect(body).not_to_contain_text("s3cret")
    page.click("#confirm-ok")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    # the POST is on its way: poll until it is recorded
    [task] = wait_until(lambda: _tasks(world, pages, site), "the deploy task recorded",
                        timeout=15)
    assert task["parameters"]["version"] == "2.1.0"
    assert task["parameters"]["packageUrl"].startswith("https://pkgs.example/shop-2.1.0.zip")

    noop = pages.open(OPERATOR, "/environment/?p=webshop&e=dev")
    expect(noop.locator("#deploy-form input[name=packageUrl]")).to_be_hidden()
