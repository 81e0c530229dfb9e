"""Request bodies of the schedule and sandbox-lifetime endpoints (also in the OpenAPI)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.schedules.cron import Cron, CronError, zone


class ScheduleInput(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    cron: str = Field(min_length=9, max_length=200)
    time_zone: str = Field(default="UTC", alias="timeZone", min_length=1, max_length=64)
    retain_count: int | None = Field(default=None, alias="retainCount", ge=1, le=1000)
    retain_days: int | None = Field(default=None, alias="retainDays", ge=1, le=3650)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            cron = Cron.parse(value)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return cron.expression


class ScheduleUpdate(ScheduleInput):
    """A schedule's settings replaced as a whole (``enabled`` false pauses it)."""

    enabled: bool = True


class ExtendInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hours: int = Field(ge=1, le=168)
