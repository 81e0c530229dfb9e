"""Notification rules in Postgres: which events, which environments, which channel.

Secrets (the Teams webhook URL) go in and never come back out: the API shows a masked
form (scheme and host only), enough to tell rules apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.db._database import register_constraint_fields
from shared.errors import ConstraintViolation
from shared.notify.events import EVENTS

register_constraint_fields({"notification_rules_project_name_key": "name"})
_EMAIL = r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$"


@dataclass(frozen=True)
class Rule:
    id: UUID
    project_id: UUID
    name: str
    events: list[str]
    environment_ids: list[UUID]
    channel: str
    webhook_url: str | None
    recipients: list[str]
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Rule:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    def matches(self, names: tuple[str, ...], environment_id: UUID | None) -> bool:
        if not self.enabled or not set(names) & set(self.events):
            return False
        return not self.environment_ids or environment_id in self.environment_ids


# plain http only to loopback, and delivery refuses even that unless the setting
# CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK is on (local tests)
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class RuleInput(BaseModel):
    """The API body of a rule; environments are slugs or ids of the project."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(min_length=1, max_length=100)
    events: list[Literal[EVENTS]] = Field(min_length=1)  # type: ignore[valid-type]  # pydantic expands the tuple
    environments: list[str] = Field(default_factory=list, max_length=100)
    channel: Literal["teams", "email"]
    webhook_url: str | None = Field(default=None, alias="webhookUrl", max_length=2000)
    recipients: list[str] = Field(default_factory=list, max_length=50)
    enabled: bool = True

    @field_validator("webhook_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if not parts.netloc or not (parts.scheme == "https" or (
                parts.scheme == "http" and parts.hostname in _LOOPBACK_NAMES)):
            raise ValueError("must be an https URL")
        return value

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(_EMAIL, address) or len(address) > 254:
                raise ValueError(f"{address[:80]!r} is not an e-mail address")
        return value

    def check_channel(self) -> None:
        """The channel's own field must be there (raised naming that field)."""
        if self.channel == "teams" and not self.webhook_url:
            raise ConstraintViolation("a teams rule needs webhookUrl", field="webhookUrl")
        if self.channel == "email" and not self.recipients:
            raise ConstraintViolation("an email rule needs recipients", field="recipients")


def mask_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


def rule_json(rule: Rule, environments: dict[UUID, str]) -> dict[str, Any]:
    """The API view: the webhook URL masked, environments as slugs."""
    return {"id": str(rule.id), "projectId": str(rule.project_id), "name": rule.name,
            "events": rule.events,
            "environments": [environments.get(e, str(e)) for e in rule.environment_ids],
            "channel": rule.channel, "webhookUrl": mask_url(rule.webhook_url),
            "hasWebhookUrl": rule.webhook_url is not None, "recipients": rule.recipients,
            "enabled": rule.enabled, "createdBy": rule.created_by,
            "createdAt": rule.created_at.isoformat(), "updatedAt": rule.updated_at.isoformat()}
