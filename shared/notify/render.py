"""Rendering an Event for each channel.

E-mail bodies come from jinja2 templates kept as files next to this module (HTML with
autoescaping on, text without); the Teams Adaptive Card is built as a Python dict from
the event's values and serialized by ``json``, never by pasting text into JSON. Card
text also escapes the markdown subset Adaptive Cards render, so a project called
``[x](https://evil)`` shows as text, not as a link.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from functools import lru_cache
from typing import Any

import jinja2

from shared.notify.events import Event

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# what Adaptive Card markdown acts on (emphasis, links, code); other characters are text
_MARKDOWN = re.compile(r"([\\`*_\[\]~])")
_COLOURS = {"succeeded": "Good", "failed": "Attention", "cancelled": "Warning",
            "timed out": "Attention"}


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("shared.notify", "templates"),
        # HTML templates escape every value; text templates must not (they are not HTML)
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)


def _context(event: Event) -> dict[str, Any]:
    data = asdict(event)
    data["rows"] = fact_rows(event)
    return data


def fact_rows(event: Event) -> list[tuple[str, str]]:
    rows = [("Project", event.project)]
    for label, value in (("Environment", event.environment),
                         ("Operation", (event.operation or "").replace("_", " ") or None),
                         ("Requested by", event.who), ("Outcome", event.outcome),
                         ("Duration", event.duration)):
        if value:
            rows.append((label, value))
    rows.extend((k, v) for k, v in event.facts.items())
    if event.detail:
        rows.append(("Details", event.detail))
    return rows


def one_line(text: str, limit: int = 200) -> str:
    """Header-safe: no CR/LF (header injection), bounded length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def email_subject(event: Event) -> str:
    return one_line(_environment().get_template("email_subject.txt.j2")
                    .render(_context(event)))


def email_text(event: Event) -> str:
    return _environment().get_template("email.txt.j2").render(_context(event))


def email_html(event: Event) -> str:
    return _environment().get_template("email.html.j2").render(_context(event))


def card_text(value: str) -> str:
    """Escape the markdown Adaptive Card TextBlocks and Facts render."""
    return _MARKDOWN.sub(r"\\\1", value)


def adaptive_card(event: Event) -> dict[str, Any]:
    """The Adaptive Card (1.5) for an event: title, facts, and a button to the task."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": card_text(event.title), "weight": "Bolder",
         "size": "Medium", "wrap": True,
         "color": _COLOURS.get(event.outcome, "Default")},
        {"type": "FactSet", "facts": [{"title": card_text(label), "value": card_text(value)}
                                       for label, value in fact_rows(event)]},
    ]
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": CARD_SCHEMA,
                            "version": CARD_VERSION, "body": body}
    if event.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open task"
                            if event.task_id else "Open", "url": event.link}]
    return card


def teams_message(event: Event) -> dict[str, Any]:
    """What a Teams Workflows incoming webhook accepts: a message with one card."""
    return {"type": "message", "attachments": [
        {"contentType": CARD_CONTENT_TYPE, "contentUrl": None,
         "content": adaptive_card(event)}]}
