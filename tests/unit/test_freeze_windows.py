"""Change freezes and business hours, evaluated in their time zone: what holds or refuses
an operation, until when (said as a person reads it), across DST changes and back-to-back
windows; an override lifts them; bad windows are refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.tasks.freezes import Freezes, Override, Window, evaluate

AMS = "Europe/Amsterdam"


def window(**fields: Any) -> Window:
    return Window.model_validate({"name": "release", "timezone": AMS,
                                  "operations": ["deploy"], **fields})


CHRISTMAS = window(name="christmas", type="freeze", start="2026-12-24T18:00",
                   end="2026-12-28T06:00")
OFFICE = window(name="office", type="business_hours", days=["mon", "tue", "wed", "thu", "fri"],
                opens="08:00", closes="18:00")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_freeze_holds_its_operations_until_it_ends_in_its_time_zone() -> None:
    frozen = evaluate([CHRISTMAS], "deploy", utc("2026-12-25T12:00"))
    assert frozen is not None and frozen.mode == "hold"
    assert frozen.until == utc("2026-12-28T05:00")  # 06:00 CET
    assert frozen.reason == ("change freeze 'christmas': frozen until Monday 06:00 "
                             "Europe/Amsterdam")
    assert evaluate([CHRISTMAS], "backup", utc("2026-12-25T12:00")) is None  # not chosen
    assert evaluate([CHRISTMAS], "deploy", utc("2026-12-24T16:59")) is None  # 17:59 CET
    assert evaluate([CHRISTMAS], "deploy", utc("2026-12-28T05:00")) is None  # end exclusive


def test_outside_business_hours_waits_for_the_next_opening() -> None:
    friday_evening = utc("2026-12-04T18:30")  # 19:30 in Amsterdam
    frozen = evaluate([OFFICE], "deploy", friday_evening)
    assert frozen is not None and frozen.until == utc("2026-12-07T07:00")  # Monday 08:00
    assert frozen.reason == ("outside business hours 'office': frozen until Monday 08:00 "
                             "Europe/Amsterdam")
    assert evaluate([OFFICE], "deploy", utc("2026-12-07T07:00")) is None
    early = evaluate([OFFICE], "deploy", utc("2026-12-08T06:00"))  # Tuesday 07:00
    assert early is not None and early.until == utc("2026-12-08T07:00")


def test_the_opening_after_a_dst_change_is_local_wall_time() -> None:
    # summer time starts on Sunday 29 March 2026: Monday 08:00 is 06:00 UTC, not 07:00
    frozen = evaluate([OFFICE], "deploy", utc("2026-03-28T12:00"))
    assert frozen is not None and frozen.until == utc("2026-03-30T06:00")


def test_back_to_back_windows_hold_until_the_last_ends_and_any_refusal_refuses() -> None:
    monday_freeze = window(name="maintenance", type="freeze", start="2026-12-06T20:00",
                           end="2026-12-07T06:00")
    frozen = evaluate([monday_freeze, OFFICE], "deploy", utc("2026-12-06T21:00"))
    assert frozen is not None and frozen.mode == "hold"
    assert frozen.until == utc("2026-12-07T07:00")  # the freeze, then business hours
    refusing = monday_freeze.model_copy(update={"mode": "refuse"})
    assert evaluate([refusing, OFFICE], "deploy", utc("2026-12-06T21:00")).mode == "refuse"  # type: ignore[union-attr]


def test_a_far_end_is_said_with_its_date() -> None:
    long = window(name="year-end", type="freeze", start="2026-12-01T00:00",
                  end="2027-01-11T06:00")
    frozen = evaluate([long], "deploy", utc("2026-12-02T00:00"))
    assert frozen is not None
    assert frozen.reason.endswith("frozen until Monday 11 January 2027 06:00 Europe/Amsterdam")


def test_an_override_lifts_the_windows_until_it_expires() -> None:
    now = utc("2026-12-25T12:00")
    lifted = evaluate([CHRISTMAS], "deploy", now,
                      Override(now + timedelta(minutes=30), "alice", "hotfix INC-42"))
    assert lifted is not None and lifted.overridden is not None
    expired = evaluate([CHRISTMAS], "deploy", now,
                       Override(now - timedelta(minutes=1), "alice", "hotfix INC-42"))
    assert expired is not None and expired.overridden is None


@pytest.mark.parametrize(("fields", "where"), [
    ({"type": "freeze", "timezone": "Mars/Olympus", "start": "2026-12-01T00:00",
      "end": "2026-12-02T00:00"}, "timezone"),
    ({"type": "freeze", "start": "2026-12-01T00:00"}, "end"),
    ({"type": "freeze", "start": "2026-12-02T00:00", "end": "2026-12-01T00:00"}, "end"),
    ({"type": "business_hours", "days": ["mon"], "opens": "18:00", "closes": "08:00"},
     "closes"),
    ({"type": "business_hours", "opens": "08:00", "closes": "18:00"}, "closes"),
    ({"type": "business_hours", "days": ["mon"], "opens": "8:00", "closes": "18:00"},
     "opens"),
    ({"type": "freeze", "start": "2026-12-01T00:00", "end": "2026-12-02T00:00",
      "operations": ["dance"]}, "operations"),
])
def test_a_window_that_cannot_work_is_refused_naming_the_field(fields: dict[str, Any],
                                                               where: str) -> None:
    body = {"windows": [{"name": "w", "timezone": AMS, "operations": ["deploy"], **fields}]}
    with pytest.raises(ValidationError) as refused:
        Freezes.model_validate(body)
    assert refused.value.errors()[0]["loc"][:3] == ("windows", 0, where)
