"""Deploy window gate: timezone-aware days and hours, overnight spans, DST, freezes, holidays."""

from datetime import UTC, datetime

import pytest

from bot.config import Window
from bot.domain import GateStatus
from checks.window import WindowError, parse_days, window_gate, window_state

UTC = UTC
OFFICE = Window(timezone="America/Toronto", days="mon-fri", hours="09:00-17:00")
NIGHTS = Window(timezone="America/Toronto", days="mon-fri", hours="22:00-02:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_no_window_passes():
    assert window_gate(None, at("2026-03-07T03:00"), None).status is GateStatus.PASS


def test_inside_office_hours_passes():
    # 10:00 EST on Monday 2026-03-02.
    assert window_gate(OFFICE, at("2026-03-02T15:00"), None).status is GateStatus.PASS


def test_before_opening_waits_with_the_opening_time():
    result = window_gate(OFFICE, at("2026-03-02T12:00"), None)  # 07:00 EST
    assert result.status is GateStatus.WAIT
    assert result.reason == (
        "outside the deploy window (mon-fri 09:00-17:00 America/Toronto); opens Mon 2026-03-02 09:00 EST"
    )


def test_closing_time_is_exclusive():
    assert window_gate(OFFICE, at("2026-03-02T22:00"), None).status is GateStatus.WAIT  # 17:00 EST


def test_friday_evening_waits_until_monday_and_monday_opens_in_summer_time():
    # DST starts Sunday 2026-03-08: Monday's 09:00 is 13:00 UTC, not 14:00.
    state = window_state(OFFICE, at("2026-03-06T23:00"))
    assert not state.open
    assert state.opens_at.astimezone(UTC) == at("2026-03-09T13:00")
    assert "opens Mon 2026-03-09 09:00 EDT" in window_gate(OFFICE, at("2026-03-06T23:00"), None).reason


def test_same_utc_time_is_open_after_dst_starts_and_closed_before():
    assert window_gate(OFFICE, at("2026-03-09T13:30"), None).status is GateStatus.PASS  # 09:30 EDT
    assert window_gate(OFFICE, at("2026-03-02T13:30"), None).status is GateStatus.WAIT  # 08:30 EST


def test_overnight_window_is_open_on_both_sides_of_midnight():
    assert window_gate(NIGHTS, at("2026-03-07T04:30"), None).status is GateStatus.PASS  # Fri 23:30 EST
    assert window_gate(NIGHTS, at("2026-03-07T06:30"), None).status is GateStatus.PASS  # Sat 01:30, Friday's span


def test_overnight_window_belongs_to_the_day_it_starts():
    # Monday 01:00 would be Sunday's span, and Sunday is not a deploy day.
    result = window_gate(NIGHTS, at("2026-03-02T06:00"), None)
    assert result.status is GateStatus.WAIT and "opens Mon 2026-03-02 22:00 EST" in result.reason


def test_overnight_window_after_it_closes_waits_for_the_next_night():
    result = window_gate(NIGHTS, at("2026-03-07T08:00"), None)  # Sat 03:00 EST
    assert result.status is GateStatus.WAIT and "opens Mon 2026-03-09 22:00 EDT" in result.reason


def test_overnight_window_across_dst_fall_back_lasts_an_extra_hour():
    # Saturday 2026-10-31 22:00 EDT to Sunday 02:00 EST is five real hours (02:00 to 07:00 UTC).
    saturday_nights = Window(timezone="America/Toronto", days="sat", hours="22:00-02:00")
    assert window_gate(saturday_nights, at("2026-11-01T06:30"), None).status is GateStatus.PASS  # the second 01:30
    assert window_gate(saturday_nights, at("2026-11-01T07:00"), None).status is GateStatus.WAIT


def test_holiday_is_closed_all_day_and_says_so():
    window = OFFICE.model_copy(update={"holidays": ["2026-12-25"]})
    result = window_gate(window, at("2026-12-25T15:00"), None)  # Friday, 10:00 EST
    assert result.status is GateStatus.WAIT
    assert result.reason == "2026-12-25 is a holiday; opens Mon 2026-12-28 09:00 EST"


def test_freeze_range_waits_until_after_it_ends():
    window = OFFICE.model_copy(update={"freeze": ["2026-12-20..2027-01-03"]})
    result = window_gate(window, at("2026-12-22T15:00"), None)
    assert result.status is GateStatus.WAIT
    assert result.reason == "2026-12-22 is in a freeze (2026-12-20..2027-01-03); opens Mon 2027-01-04 09:00 EST"


def test_freeze_closes_the_part_of_an_overnight_span_past_midnight():
    window = NIGHTS.model_copy(update={"freeze": ["2026-03-07"]})
    assert window_gate(window, at("2026-03-07T04:30"), None).status is GateStatus.PASS  # Fri 23:30
    result = window_gate(window, at("2026-03-07T06:30"), None)  # Sat 01:30, frozen date
    assert result.status is GateStatus.WAIT and "2026-03-07 is in a freeze" in result.reason


def test_listed_days_skip_the_others():
    window = OFFICE.model_copy(update={"days": "mon,wed,fri"})
    result = window_gate(window, at("2026-03-03T15:00"), None)  # Tuesday
    assert result.status is GateStatus.WAIT and "opens Wed 2026-03-04 09:00 EST" in result.reason


def test_weekend_only_window():
    window = Window(timezone="Europe/Paris", days="sat-sun", hours="08:00-12:00")
    assert window_gate(window, at("2026-03-07T08:00"), None).status is GateStatus.PASS  # Sat 09:00 CET
    assert "opens Sat 2026-03-07 08:00 CET" in window_gate(window, at("2026-03-05T08:00"), None).reason


def test_day_ranges_wrap_around_the_week():
    assert parse_days("fri-mon") == {4, 5, 6, 0}
    assert parse_days("mon-wed,fri") == {0, 1, 2, 4}


def test_override_with_a_reason_passes_and_without_one_blocks():
    outside = at("2026-03-07T15:00")  # Saturday
    passed = window_gate(OFFICE, outside, "security fix for CVE-2026-1234")
    assert passed.status is GateStatus.PASS and "overridden: security fix for CVE-2026-1234" in passed.reason
    blocked = window_gate(OFFICE, outside, "  ")
    assert blocked.status is GateStatus.BLOCK and "needs a reason" in blocked.reason


def test_invalid_window_blocks_naming_the_problem():
    result = window_gate(OFFICE.model_copy(update={"days": "mon-fry"}), at("2026-03-02T15:00"), None)
    assert result.status is GateStatus.BLOCK and "'mon-fry'" in result.reason
    result = window_gate(OFFICE.model_copy(update={"timezone": "Mars/Olympus"}), at("2026-03-02T15:00"), None)
    assert result.status is GateStatus.BLOCK and "Mars/Olympus" in result.reason
    with pytest.raises(WindowError, match="ends before it starts"):
        window_state(OFFICE.model_copy(update={"freeze": ["2026-12-31..2026-12-01"]}), at("2026-03-02T15:00"))


def test_naive_now_is_taken_as_utc():
    assert window_gate(OFFICE, datetime(2026, 3, 2, 15, 0), None).status is GateStatus.PASS


def test_window_that_never_opens_says_so():
    window = OFFICE.model_copy(update={"freeze": ["2026-01-01..2028-12-31"]})
    result = window_gate(window, at("2026-03-02T15:00"), None)
    assert result.status is GateStatus.WAIT and "does not open in the next 400 days" in result.reason
