"""Change freezes and business hours, as Azure DevOps environment checks do.

An environment's windows say, in a time zone, when chosen operations may not run: a
*freeze* blocks them from ``start`` to ``end`` (local wall times); *business hours* block
them outside ``opens`` to ``closes`` on ``days``. A blocked operation is either held — its task
waits, re-checked on a durable timer, and runs when the window ends — or refused when it
is requested (``mode``). Back-to-back windows chain: a task is held until none blocks.
An admin override lifts every window of the environment for a while, with a reason that
is recorded (activity log, and the log of each task it lets through).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import Connection
from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from shared.domain.models import Environment
from shared.store import activity
from shared.store import freezes as store
from shared.tasks.requests import Body, Name

Operation = Literal["deploy", "backup", "restore", "refresh", "restart", "sandbox_create",
                    "script_run"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LocalTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$"),
                      Field(json_schema_extra={"x-rule": "a local time, HH:MM (24 hours)"})]
LocalDateTime = Annotated[
    str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"),
    Field(json_schema_extra={"x-rule": "a local date and time, YYYY-MM-DDTHH:MM[:SS]"})]
Reason = Annotated[str, StringConstraints(min_length=3, max_length=500,
                                          pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$")]
MAX_CHAIN = 50  # windows chained back to back before a hold gives up computing further


class Window(Body):
    """One freeze or business-hours window of an environment."""

    name: Name
    type: Literal["freeze", "business_hours"]
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="an IANA time zone, e.g. Europe/Amsterdam")
    operations: list[Operation] = Field(min_length=1, max_length=7)
    mode: Literal["hold", "refuse"] = Field(
        default="hold", description="hold: the task waits until the window ends; refuse: "
                                    "the request is refused (409)")
    start: LocalDateTime | None = Field(default=None, description="freeze: its first minute")
    end: LocalDateTime | None = Field(default=None, validate_default=True,
                                      description="freeze: when it ends (exclusive)")
    days: list[Day] = Field(default_factory=list, max_length=7,
                            description="business hours: the days they apply")
    opens: LocalTime | None = Field(default=None, description="business hours: opening")
    closes: LocalTime | None = Field(default=None, validate_default=True,
                                     description="business hours: closing (exclusive)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like "
                             "Europe/Amsterdam)") from None
        return value

    @field_validator("end")
    @classmethod
    def _freeze_span(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") != "freeze":
            if value is not None or info.data.get("start") is not None:
                raise ValueError("start and end belong to a freeze; business hours take "
                                 "days, opens and closes")
            return value
        start = info.data.get("start")
        if start is None or value is None:
            raise ValueError("a freeze needs start and end (local YYYY-MM-DDTHH:MM)")
        if datetime.fromisoformat(value) <= datetime.fromisoformat(start):
            raise ValueError(f"a freeze must end after it starts ({start})")
        return value

    @field_validator("closes")
    @classmethod
    def _business_hours(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") != "business_hours":
            if value is not None or info.data.get("opens") is not None or info.data.get("days"):
                raise ValueError("days, opens and closes belong to business hours")
            return value
        opens = info.data.get("opens")
        if not info.data.get("days") or opens is None or value is None:
            raise ValueError("business hours need days, opens and closes (HH:MM)")
        if value <= opens:
            raise ValueError(f"business hours must close after they open ({opens})")
        return value

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def blocks_until(self, operation: str, at: datetime) -> datetime | None:
        """When this window stops blocking ``operation`` at ``at`` (UTC); None if it does
        not block it then."""
        if operation not in self.operations:
            return None
        tz = self.zone()
        if self.type == "freeze":
            start = _local(self.start, tz)  # type: ignore[arg-type]  # a freeze has both (validated)
            end = _local(self.end, tz)  # type: ignore[arg-type]  # a freeze has both (validated)
            return end if start <= at < end else None
        local = at.astimezone(tz)
        opens, closes = time.fromisoformat(self.opens), time.fromisoformat(self.closes)  # type: ignore[arg-type]  # hours have both (validated)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if DAYS[day.weekday()] not in self.days:
                continue
            opening, closing = _at(day, opens, tz), _at(day, closes, tz)
            if opening <= at < closing:
                return None
            if opening > at:
                return opening
        return None  # unreachable: days is never empty

    def what(self) -> str:
        return (f"change freeze {self.name!r}" if self.type == "freeze"
                else f"outside business hours {self.name!r}")


def _local(text: str, tz: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)


def _at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


class Freezes(Body):
    windows: list[Window] = Field(default_factory=list, max_length=20)


class OverrideRequest(Body):
    reason: Reason = Field(description="why the freeze is lifted (recorded)")
    minutes: int = Field(default=60, ge=1, le=1440,
                         description="how long every window of the environment is lifted")


@dataclass(frozen=True)
class Override:
    until: datetime
    by: str
    reason: str


@dataclass(frozen=True)
class Setting:
    windows: list[Window]
    override: Override | None
    updated_by: str | None = None
    updated_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        o = self.override
        return {"windows": [w.model_dump(mode="json", by_alias=True, exclude_none=True)
                            for w in self.windows],
                "override": None if o is None else {
                    "until": _iso(o.until), "by": o.by, "reason": o.reason},
                "updatedBy": self.updated_by,
                "updatedAt": _iso(self.updated_at) if self.updated_at else None}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Frozen:
    """Why an operation may not run now, until when, and whether it waits or is refused."""

    mode: str  # hold | refuse
    until: datetime
    window: Window
    reason: str
    overridden: Override | None = None  # set when a window blocks but an override lifts it


def describe_until(until: datetime, tz: ZoneInfo, now: datetime) -> str:
    """"Monday 06:00 Europe/Amsterdam" (a date as well when it is a week or more away)."""
    local = until.astimezone(tz)
    when = (f"{local:%A %H:%M}" if until - now < timedelta(days=6)
            else f"{local:%A} {local.day} {local:%B %Y %H:%M}")
    return f"{when} {tz.key}"


def evaluate(windows: list[Window], operation: str, now: datetime,
             override: Override | None = None) -> Frozen | None:
    """Whether ``operation`` is blocked at ``now``: held until the last of back-to-back
    windows ends, refused if any of them refuses. None when nothing blocks it."""
    first: Window | None = None
    mode = "hold"
    at = now
    for _ in range(MAX_CHAIN):
        blocking = [(w, u) for w in windows if (u := w.blocks_until(operation, at)) is not None]
        if not blocking:
            break
        window, until = max(blocking, key=lambda pair: pair[1])
        first = first or window
        if any(w.mode == "refuse" for w, _ in blocking):
            mode = "refuse"
        at = until
    if first is None:
        return None
    reason = (f"{first.what()}: frozen until {describe_until(at, first.zone(), now)}")
    if override is not None and override.until > now:
        return Frozen(mode, at, first, reason, overridden=override)
    return Frozen(mode, at, first, reason)


# -- storage --------------------------------------------------------------------------
def get_setting(conn: Connection[Any], environment_id: Any) -> Setting:
    row = store.freeze_row(conn, environment_id)
    if row is None:
        return Setting([], None)
    override = (Override(row["override_until"], row["override_by"], row["override_reason"])
                if row["override_until"] is not None else None)
    return Setting([Window.model_validate(w) for w in row["windows"]], override,
                   row["updated_by"], row["updated_at"])


def set_windows(conn: Connection[Any], env: Environment, body: Freezes, *,
                actor: str) -> Setting:
    windows = [w.model_dump(mode="json", by_alias=True, exclude_none=True)
               for w in body.windows]
    store.upsert_windows(conn, env.id, windows, actor=actor)
    activity.record(conn, actor=actor, action="environment.freezes_set",
                    project_id=env.project_id, environment_id=env.id,
                    details={"windows": windows})
    return get_setting(conn, env.id)


def override(conn: Connection[Any], env: Environment, body: OverrideRequest, *, actor: str,
             now: datetime) -> Setting:
    until = now + timedelta(minutes=body.minutes)
    store.upsert_override(conn, env.id, until=until, reason=body.reason, actor=actor)
    activity.record(conn, actor=actor, action="freeze.overridden", project_id=env.project_id,
                    environment_id=env.id,
                    details={"reason": body.reason, "until": _iso(until),
                             "minutes": body.minutes})
    return get_setting(conn, env.id)


def frozen_now(conn: Connection[Any], environment_id: Any, operation: str,
               now: datetime) -> Frozen | None:
    setting = get_setting(conn, environment_id)
    if not setting.windows:
        return None
    return evaluate(setting.windows, operation, now, setting.override)


def refusal(frozen: Frozen, operation: str) -> str:
    """The 409's words: what refuses it, until when, and the way out."""
    return (f"{operation.replace('_', ' ')} is refused: {frozen.reason}. Request it after "
            "that, or an admin may lift the freeze with a reason (POST …/freezes/override)")
