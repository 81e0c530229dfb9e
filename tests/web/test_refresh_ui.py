"""Refreshing an environment from another one through the web UI: the source, its backup
and the masking script are chosen on the environment page, the confirm step says what is
replaced, the task runs live; a request the API refuses shows the API's reason."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.web.conftest import ADMIN, Pages, World, call, cancel_open_tasks


def _datahub(world: World, host: Any) -> None:
    call(world.admin, host, "POST", "/api/projects",
         {"slug": "datahub", "name": "Data hub"}, expect=(201, 409))
    for slug, name in (("prod", "Prod"), ("qa", "QA")):
        call(world.admin, host, "POST", "/api/projects/datahub/environments",
             {"slug": slug, "name": name, "database": {"connection": f"{slug}-db"},
              "target": {"type": "agent", "pool": "web-pool"}}, expect=(201, 409))
    call(world.admin, host, "POST", "/api/projects/datahub/scripts", {
        "name": "mask-pii", "description": "Mask e-mail addresses",
        "argv": ["./mask.sh", "{mode}"], "parameters": [{"name": "mode", "default": "emails"}]},
        expect=(201, 409))


def _backup(world: World, host: Any, data: bytes = b"dump") -> str:
    """A backup of datahub/prod, uploaded and reported as a real agent does."""
    task = call(world.admin, host, "POST", "/api/projects/datahub/environments/prod/backups", {})
    world.agent.finish_backup(world.agent.next_job(), data, durationMs=1500,
                              toolVersions={"pg_dump": "16.4"})
    return str(task["id"])


@pytest.fixture
def datahub(world: World, web_host: Any) -> Iterator[None]:
    """The project; afterwards nothing of it is left open to take the shared agent's jobs."""
    _datahub(world, web_host)
    yield
    cancel_open_tasks(world, web_host, "datahub")


def test_refresh_is_chosen_confirmed_and_runs_live_on_the_environment_page(
        pages: Pages, world: World, web_host: Any, datahub: None) -> None:
    page = pages.open(ADMIN, "/environment/?p=datahub&e=qa")
    expect(page.locator("#refresh-source option")).to_have_text(["Prod"])
    # no backup of prod yet: the API's refusal is shown, nothing starts
    page.click("#refresh-button")
    page.fill("#confirm-type", "qa")
    page.click("#confirm-ok")
    expect(page.locator("#refresh-form .form-message")).to_contain_text("prod has no backup yet")

    _backup(world, web_host)
    page.reload()
    expect(page.locator("#refresh-backup option")).to_have_count(2)  # latest + the backup
    page.select_option("#refresh-mask", "mask-pii")
    expect(page.locator("#refresh-mask-params [name=mode]")).to_have_value("emails")
    page.click("#refresh-button")
    expect(page.locator("#confirm-dialog")).to_contain_text("replaced by prod's latest backup")
    expect(page.locator("#confirm-dialog")).to_contain_text("Then mask-pii runs to mask the data")
    page.fill("#confirm-type", "qa")
    page.click("#confirm-ok")

    restore = world.agent.next_job()
    assert restore["kind"] == "restore"
    row = page.locator(f"#env-tasks tbody tr[data-task-id='{restore['taskId']}']")
    expect(row).to_contain_text("Refresh from prod, masked by mask-pii")
    world.agent.finish(restore)
    mask = world.agent.next_job()
    assert mask["kind"] == "script" and mask["payload"]["argv"] == ["./mask.sh", "emails"]
    world.agent.finish(mask, result_body={"exitCode": 0})
    expect(row).to_have_attribute("data-status", "succeeded")
    # the only console error is the browser noting the refused request (422) above
    assert [e for e in page.console_errors if "status of 422" not in e] == []


def test_a_backup_shows_its_details_downloads_through_a_signed_link_and_an_admin_deletes_it(
        pages: Pages, world: World, web_host: Any, datahub: None) -> None:
    data = b"a dump to download"
    _backup(world, web_host, data)
    page = pages.open(ADMIN, "/environment/?p=datahub&e=prod")
    expect(page.locator("#backup-details")).to_contain_text("took 1.5 s · pg_dump 16.4")
    expect(page.locator("#backup-details")).to_contain_text(hashlib.sha256(data).hexdigest())
    page.click("#backup-download")
    link = page.locator("#backup-link")
    expect(link).to_be_visible()
    assert requests.get(link.get_attribute("href") or "", timeout=30).content == data
    before = page.locator("#backup-select option").count()
    page.click("#backup-delete")
    page.fill("#confirm-type", "prod")
    page.click("#confirm-ok")
    expect(page.locator("#restore-form .form-message")).to_contain_text("deleted")
    expect(page.locator("#backup-select option")).to_have_count(max(before - 1, 1))
