"""The backups page: every backup of the project with size, age, sha256 and who took it;
an operator downloads one (and may not delete), an admin deletes one after typing the
environment's name, a reader may do neither, each told why."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import requests
from playwright.sync_api import expect

from shared.api.openapi import BackupOut
from tests.pipeline.test_pipeline_e2e import wait_for
from tests.web.a11y import check_page
from tests.web.conftest import ADMIN, OPERATOR, READER, Pages, World, api_session, call

DUMP = b"PGDMP" + b"\x01" * 3067  # 3 KiB


def _backed_up_environment(world: World, pages: Pages) -> tuple[str, dict[str, Any]]:
    slug = f"b-{uuid.uuid4().hex[:6]}"
    call(world.admin, pages.host, "POST", "/api/projects/webshop/environments",
         {"slug": slug, "name": slug.upper(), "database": {"connection": "db"},
          "target": {"type": "agent", "pool": "web-pool"}})
    task = call(api_session(pages.host, OPERATOR), pages.host, "POST",
                f"/api/projects/webshop/environments/{slug}/backups", {})
    world.agent.finish_backup(world.agent.next_job(), data=DUMP)
    assert wait_for(world.admin, pages.host, task["id"])["status"] == "succeeded"
    [backup] = call(world.admin, pages.host, "GET",
                    f"/api/projects/webshop/environments/{slug}/backups")["items"]
    BackupOut.model_validate(backup)  # as documented, with who took it
    assert (backup["takenBy"], backup["takenByName"]) == (OPERATOR.id, OPERATOR.name)
    return slug, backup


def _ready(page: Any) -> None:
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def test_an_operator_sees_who_took_a_backup_and_downloads_it_but_may_not_delete_it(
        pages: Pages, world: World) -> None:
    slug, backup = _backed_up_environment(world, pages)
    page = pages.open(OPERATOR, f"/backups/?p=webshop&e={slug}")
    _ready(page)
    row = page.locator(f"#backups tbody tr[data-backup-id='{backup['id']}']")
    expect(page.locator("#backups tbody tr")).to_have_count(1)  # filtered to the environment
    expect(row).to_contain_text(slug.upper())
    expect(row).to_contain_text("3.0 KiB")
    expect(row).to_contain_text(hashlib.sha256(DUMP).hexdigest())
    expect(row).to_contain_text(OPERATOR.name)  # who asked for the backup
    expect(row).to_contain_text("just now")
    delete = row.get_by_role("button", name=f"Delete backup {backup['id'][:8]} of {slug.upper()}")
    expect(delete).to_be_disabled()
    expect(page.locator("#delete-why-not")).to_have_text(
        "Deleting a backup needs the admin role on this project; yours is operator.")

    row.get_by_role("button", name=f"Download backup {backup['id'][:8]} of {slug.upper()}").click()
    link = page.locator("#download-link")
    expect(link).to_have_text(f"Download {slug}-{backup['id']}.dump")
    expect(link).to_be_focused()
    href = link.get_attribute("href") or ""
    url = href if href.startswith("http") else pages.host.base_url + href
    assert requests.get(url, timeout=30).content == DUMP  # the signed link serves the dump
    check_page(page, "backups-operator")


def test_an_admin_deletes_a_backup_after_typing_the_environment_name(
        pages: Pages, world: World) -> None:
    slug, backup = _backed_up_environment(world, pages)
    page = pages.open(ADMIN, f"/backups/?p=webshop&e={slug}")
    _ready(page)
    short = backup["id"][:8]
    page.get_by_role("button", name=f"Delete backup {short} of {slug.upper()}").click()
    body = page.locator("#confirm-body")
    expect(body).to_contain_text("The 3.0 KiB dump taken")
    expect(body).to_contain_text("It can no longer be restored, downloaded or used to seed "
                                 "a sandbox.")
    expect(page.locator("#confirm-ok")).to_be_disabled()
    page.fill("#confirm-type", slug)
    page.click("#confirm-ok")
    expect(page.locator("#backup-message")).to_have_text(
        f"Deleted backup {short} of {slug.upper()}.")
    expect(page.locator("#no-backups")).to_be_visible()
    assert call(world.admin, pages.host, "GET",
                f"/api/projects/webshop/environments/{slug}/backups")["items"] == []


def test_a_reader_sees_the_backups_but_may_neither_download_nor_delete(
        pages: Pages, world: World) -> None:
    slug, backup = _backed_up_environment(world, pages)
    page = pages.open(READER, "/backups/?p=webshop")
    _ready(page)
    row = page.locator(f"#backups tbody tr[data-backup-id='{backup['id']}']")
    download = row.get_by_role("button", name=f"Download backup {backup['id'][:8]} "
                                              f"of {slug.upper()}")
    expect(download).to_be_disabled()
    expect(download).to_have_attribute("aria-describedby", "download-why-not")
    expect(page.locator("#download-why-not")).to_have_text(
        "Downloading a backup needs the operator role on this project; yours is reader.")
    check_page(page, "backups-reader")
