"""Checking a Teams webhook message and its Adaptive Card against the card schema of the
version the card declares (a local subset schema: the official one is not available
offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMAS = {"1.5": Path(__file__).with_name("adaptive_card_1_5.schema.json")}


def validate_teams_message(message: dict[str, Any]) -> dict[str, Any]:
    """The card inside a webhook message, after validating envelope and card."""
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    schema_file = SCHEMAS.get(card.get("version"))
    assert schema_file is not None, f"no schema for declared version {card.get('version')}"
    validator = jsonschema_rs.Draft7Validator(json.loads(schema_file.read_text()),
                                              validate_formats=True)
    errors = [e.message for e in validator.iter_errors(card)]
    assert not errors, errors
    return card


def facts_of(card: dict[str, Any]) -> dict[str, str]:
    for element in card["body"]:
        if element["type"] == "FactSet":
            return {f["title"]: f["value"] for f in element["facts"]}
    return {}
