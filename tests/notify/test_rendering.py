"""Rendering: e-mail from templates (HTML autoescaped), Teams cards built from data and
valid against the Adaptive Card schema they declare; user input stays inert everywhere."""

from __future__ import annotations

import json
import uuid
from html.parser import HTMLParser

from shared.notify import render
from shared.notify.events import Event
from tests.notify.cards import facts_of, validate_teams_message

HOSTILE_NAME = '<script>alert("x")</script>"}, {"type": "Action.OpenUrl", "url": "https://evil"'
HOSTILE_VERSION = '1.0"}]} <img src=x onerror=alert(1)> [click](https://evil) **bold**'


def hostile_event() -> Event:
    return Event(event="task.failed", event_id="task:1:failed", project_id=uuid.uuid4(),
                 project=HOSTILE_NAME, environment="dev", operation="deploy",
                 who="alice@example.com", outcome="failed", duration="3s",
                 title=f"deploy on {HOSTILE_NAME} failed\r\nBcc: victim@example.com",
                 detail="exit 1 & <b>", facts={"version": HOSTILE_VERSION},
                 task_id=uuid.uuid4(), link="https://ops.example.com/task/?id=1")


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text += data


def test_html_mail_shows_hostile_names_as_text_not_markup() -> None:
    parsed = _Elements()
    parsed.feed(render.email_html(hostile_event()))
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert "onerror" not in parsed.attributes
    assert HOSTILE_NAME in parsed.text and HOSTILE_VERSION in parsed.text


def test_text_mail_carries_values_verbatim_and_subject_cannot_add_headers() -> None:
    event = hostile_event()
    text = render.email_text(event)
    assert f"Project: {HOSTILE_NAME}" in text and f"version: {HOSTILE_VERSION}" in text
    subject = render.email_subject(event)
    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith("[CloudOps] deploy on")


def test_card_is_valid_for_its_declared_version_with_every_field_shown() -> None:
    event = hostile_event()
    message = render.teams_message(event)
    card = validate_teams_message(json.loads(json.dumps(message)))
    assert card["version"] == "1.5"
    facts = facts_of(card)
    assert facts["Operation"] == "deploy" and facts["Environment"] == "dev"
    assert facts["Requested by"] == "alice@example.com" and facts["Outcome"] == "failed"
    assert facts["Duration"] == "3s"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open task",
                                "url": "https://ops.example.com/task/?id=1"}]


def test_card_json_cannot_be_broken_out_of_and_markdown_is_escaped() -> None:
    card = validate_teams_message(render.teams_message(hostile_event()))
    # the hostile strings are one JSON string each: no injected action, no extra element
    assert len(card["actions"]) == 1 and len(card["body"]) == 2
    facts = facts_of(card)
    assert facts["Project"] == render.card_text(HOSTILE_NAME)
    assert facts["version"].replace("\\", "") == HOSTILE_VERSION.replace("\\", "")
    assert "\\[click\\](https://evil)" in facts["version"]
    assert "\\*\\*bold\\*\\*" in facts["version"]


def test_card_without_a_public_url_has_no_button() -> None:
    event = Event(event="agent.offline", event_id="agent:1", project_id=uuid.uuid4(),
                  project="Shop", title="agent a1 is offline", outcome="offline")
    card = validate_teams_message(render.teams_message(event))
    assert "actions" not in card
