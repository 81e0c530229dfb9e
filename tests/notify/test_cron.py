"""Cron expressions: both dialects, time zones, and the latest due slot."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.schedules.cron import Cron, CronError, latest_slot, next_slot, zone


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_six_field_ncrontab_has_seconds_first() -> None:
    cron = Cron.parse("30 */15 * * * *")
    assert latest_slot(cron, zone("UTC"), at(2026, 5, 1, 10, 7)) == at(2026, 5, 1, 10, 0, 30)
    assert next_slot(cron, zone("UTC"), at(2026, 5, 1, 10, 7)) == at(2026, 5, 1, 10, 15, 30)


def test_five_field_cron_fires_on_the_minute() -> None:
    cron = Cron.parse("0 2 * * MON-FRI")
    # Saturday 2026-05-02 → the last slot was Friday 02:00
    assert latest_slot(cron, zone("UTC"), at(2026, 5, 2, 12, 0)) == at(2026, 5, 1, 2, 0)


def test_slots_follow_the_schedules_time_zone_across_dst() -> None:
    cron = Cron.parse("0 0 2 * * *")
    amsterdam = zone("Europe/Amsterdam")
    assert next_slot(cron, amsterdam, at(2026, 1, 10, 12)) == at(2026, 1, 11, 1)  # CET
    assert next_slot(cron, amsterdam, at(2026, 7, 10, 12)) == at(2026, 7, 11, 0)  # CEST


def test_five_field_day_and_weekday_match_either_ncrontab_needs_both() -> None:
    # the 13th, or any Friday
    vixie = Cron.parse("0 0 13 * FRI")
    ncrontab = Cron.parse("0 0 0 13 * FRI")
    after = at(2026, 2, 1)
    assert next_slot(vixie, zone("UTC"), after) == at(2026, 2, 6)   # a Friday
    assert next_slot(ncrontab, zone("UTC"), after) == at(2026, 2, 13)  # Friday the 13th


@pytest.mark.parametrize("expression, field", [
    ("* * *", "six fields"), ("0 61 * * * *", "minute"), ("0 0 25 * * *", "hour"),
    ("0 0 0 1 13 *", "month"), ("0 */0 * * * *", "step"), ("0 0 x * * *", "hour"),
    # croniter's own extensions are not part of either dialect
    ("0 0 0 L * *", "day"), ("0 0 0 * * 5#2", "weekday"), ("H 0 0 * * *", "second"),
    ("0 0 0 20-10 * *", "day")])
def test_bad_expressions_are_rejected_naming_the_field(expression: str, field: str) -> None:
    with pytest.raises(CronError, match=field):
        Cron.parse(expression)


def test_unknown_time_zone_is_rejected() -> None:
    with pytest.raises(CronError, match="time zone"):
        zone("Mars/Olympus_Mons")


def test_question_mark_means_any_in_every_field() -> None:
    cron = Cron.parse("0 0 12 ? * ?")
    assert next_slot(cron, zone("UTC"), at(2026, 5, 1)) == at(2026, 5, 1, 12)


def test_impossible_date_never_fires() -> None:
    assert next_slot(Cron.parse("0 0 0 31 2 *"), zone("UTC"), at(2026, 1, 1)) is None
