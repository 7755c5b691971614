"""NYSE market hours: sessions, half days, holidays, DST, extended hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import exchange_calendars as xcals
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.calendar import NEW_YORK, MarketCalendar, xnys_calendar
from engine.clock import ClockError
from engine.errors import Rejected


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return xnys_calendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type, misc]


def test_half_day_closes_at_one_pm(cal: MarketCalendar) -> None:
    d = date(2015, 12, 24)
    assert cal.session_open(d) == utc(2015, 12, 24, 14, 30)
    assert cal.session_close(d) == utc(2015, 12, 24, 18, 0)  # 13:00 EST
    assert cal.is_open(utc(2015, 12, 24, 17, 59, 59))
    assert not cal.is_open(utc(2015, 12, 24, 18, 0))
    assert cal.session_close(date(2013, 11, 29)) == utc(2013, 11, 29, 18, 0)


def test_regular_day_in_daylight_saving_time(cal: MarketCalendar) -> None:
    d = date(2013, 10, 4)
    assert cal.session_open(d) == utc(2013, 10, 4, 13, 30)  # 09:30 EDT
    assert cal.session_close(d) == utc(2013, 10, 4, 20, 0)  # 16:00 EDT
    assert not cal.is_open(utc(2013, 10, 4, 13, 29, 59))
    assert cal.is_open(utc(2013, 10, 4, 13, 30))
    assert cal.is_open(utc(2013, 10, 4, 19, 59, 59, 999999))
    assert not cal.is_open(utc(2013, 10, 4, 20, 0))


def test_session_times_are_returned_in_utc(cal: MarketCalendar) -> None:
    opened = cal.session_open(date(2013, 10, 4))
    assert opened.tzinfo is UTC
    assert opened.astimezone(NEW_YORK).hour == 9


@pytest.mark.parametrize(
    ("d", "open_utc_hour"),
    [
        (date(2013, 11, 1), 13),  # last EDT Friday
        (date(2013, 11, 4), 14),  # first EST Monday (clocks fell back on the Sunday)
        (date(2014, 3, 7), 14),  # last EST Friday
        (date(2014, 3, 10), 13),  # first EDT Monday (clocks sprang forward on the Sunday)
    ],
)
def test_dst_transitions_move_the_utc_open(
    cal: MarketCalendar, d: date, open_utc_hour: int
) -> None:
    opened = utc(d.year, d.month, d.day, open_utc_hour, 30)
    assert cal.session_open(d) == opened
    assert cal.session_close(d) == opened + timedelta(hours=6, minutes=30)


@pytest.mark.parametrize(
    "d",
    [
        date(2013, 10, 5),  # Saturday
        date(2013, 10, 6),  # Sunday
        date(2013, 11, 28),  # Thanksgiving
        date(2001, 9, 11),
        date(2001, 9, 12),
        date(2001, 9, 13),
        date(2001, 9, 14),
        date(2012, 10, 29),  # Hurricane Sandy
        date(2015, 12, 25),
        date(1998, 1, 1),
    ],
)
def test_closed_days(cal: MarketCalendar, d: date) -> None:
    assert not cal.is_session(d)
    noon_et = datetime(d.year, d.month, d.day, 12, tzinfo=NEW_YORK)
    assert not cal.is_open(noon_et)
    assert not cal.is_open(noon_et, extended=True)
    with pytest.raises(Rejected) as info:
        cal.session_open(d)
    assert info.value.code == "not_a_session"


def test_history_back_to_1998(cal: MarketCalendar) -> None:
    assert cal.is_session(date(1998, 1, 2))
    assert cal.session_open(date(1998, 1, 2)) == utc(1998, 1, 2, 14, 30)
    assert cal.is_session(date(2001, 9, 17))  # reopened after 9/11
    assert cal.sessions_between(date(2001, 9, 10), date(2001, 9, 18)) == [
        date(2001, 9, 10),
        date(2001, 9, 17),
        date(2001, 9, 18),
    ]


def test_sessions_between(cal: MarketCalendar) -> None:
    got = cal.sessions_between(date(2013, 10, 4), date(2013, 10, 14))
    assert got == [date(2013, 10, d) for d in (4, 7, 8, 9, 10, 11, 14)]  # Columbus Day trades
    assert cal.sessions_between(date(2013, 10, 5), date(2013, 10, 6)) == []
    assert cal.sessions_between(date(2013, 10, 14), date(2013, 10, 4)) == []
    assert len(cal.sessions_between(date(2023, 1, 1), date(2023, 12, 31))) == 250


def test_extended_hours(cal: MarketCalendar) -> None:
    # 2013-10-04 is EDT: 04:00 ET is 08:00 UTC, 20:00 ET is 00:00 UTC the next day.
    assert not cal.is_open(utc(2013, 10, 4, 7, 59), extended=True)
    assert cal.is_open(utc(2013, 10, 4, 8, 0), extended=True)
    assert not cal.is_open(utc(2013, 10, 4, 8, 0))
    assert cal.is_open(utc(2013, 10, 4, 23, 59), extended=True)
    assert not cal.is_open(utc(2013, 10, 5, 0, 0), extended=True)
    # Half day: the after-hours session ends at 17:00 ET (22:00 UTC in winter).
    assert cal.is_open(utc(2015, 12, 24, 21, 59), extended=True)
    assert not cal.is_open(utc(2015, 12, 24, 22, 0), extended=True)
    assert cal.extended_hours(date(2015, 12, 24)) == (
        utc(2015, 12, 24, 9, 0),
        utc(2015, 12, 24, 22, 0),
    )


def test_next_open_and_previous_close(cal: MarketCalendar) -> None:
    friday_evening = utc(2013, 10, 4, 22, 0)
    assert cal.next_open(friday_evening) == utc(2013, 10, 7, 13, 30)  # Monday 09:30 EDT
    assert cal.previous_close(friday_evening) == utc(2013, 10, 4, 20, 0)
    # During a session the next open is the next session's; at an open, too.
    assert cal.next_open(utc(2013, 10, 7, 15, 0)) == utc(2013, 10, 8, 13, 30)
    assert cal.next_open(utc(2013, 10, 7, 13, 30)) == utc(2013, 10, 8, 13, 30)
    assert cal.next_open(utc(2013, 10, 7, 13, 29)) == utc(2013, 10, 7, 13, 30)
    # At a close instant, that close is the previous one.
    assert cal.previous_close(utc(2013, 10, 7, 20, 0)) == utc(2013, 10, 7, 20, 0)
    assert cal.previous_close(utc(2013, 10, 7, 19, 59)) == utc(2013, 10, 4, 20, 0)
    # Over Thanksgiving to the half day.
    assert cal.next_open(utc(2013, 11, 27, 21, 0)) == utc(2013, 11, 29, 14, 30)
    assert cal.previous_close(utc(2013, 11, 30, 12, 0)) == utc(2013, 11, 29, 18, 0)


def test_session_date_is_the_new_york_date(cal: MarketCalendar) -> None:
    assert cal.session_date(utc(2013, 10, 5, 2, 0)) == date(2013, 10, 4)  # 22:00 EDT Friday
    assert cal.session_date(utc(2015, 12, 24, 4, 59)) == date(2015, 12, 23)
    assert cal.session_date(utc(2015, 12, 24, 5, 0)) == date(2015, 12, 24)


def test_naive_datetimes_are_refused(cal: MarketCalendar) -> None:
    naive = datetime(2013, 10, 4, 14, 0)
    for call in (cal.is_open, cal.next_open, cal.previous_close, cal.session_date):
        with pytest.raises(ClockError):
            call(naive)


def test_outside_the_calendar_range_is_rejected(cal: MarketCalendar) -> None:
    with pytest.raises(Rejected) as info:
        cal.is_session(date(1997, 12, 31))
    assert info.value.code == "outside_calendar"
    with pytest.raises(Rejected):
        cal.is_open(utc(2040, 1, 2, 15, 0))
    with pytest.raises(Rejected) as info:
        cal.next_open(utc(2035, 12, 31, 22, 0))
    assert info.value.code == "outside_calendar"
    with pytest.raises(Rejected) as info:
        cal.is_session(datetime(2013, 10, 4, tzinfo=UTC))  # a datetime is not a date
    assert info.value.code == "invalid_date"


def test_calendar_is_built_once() -> None:
    assert xnys_calendar() is xnys_calendar()


def test_custom_range() -> None:
    small = MarketCalendar(date(2013, 10, 1), date(2013, 10, 31))
    assert small.sessions_between(date(2013, 10, 1), date(2013, 10, 31))[0] == date(2013, 10, 1)
    with pytest.raises(Rejected):
        small.is_session(date(2013, 11, 1))


# --- properties -------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(1998, 1, 3), max_value=datetime(2035, 12, 1), timezones=st.just(UTC)
)
_REFERENCE = xcals.get_calendar("XNYS", start="1998-01-01", end="2035-12-31")


@given(instants)
def test_next_open_is_later_and_open(t: datetime) -> None:
    cal = xnys_calendar()
    nxt = cal.next_open(t)
    assert nxt > t
    assert cal.is_open(nxt)
    assert not cal.is_open(nxt - timedelta(microseconds=1))


@given(instants)
def test_previous_close_is_not_later_and_closed(t: datetime) -> None:
    cal = xnys_calendar()
    prev = cal.previous_close(t)
    assert prev <= t
    assert not cal.is_open(prev)
    assert cal.is_open(prev - timedelta(microseconds=1))


@given(instants)
def test_is_open_agrees_with_exchange_calendars(t: datetime) -> None:
    cal = xnys_calendar()
    # side="left": open at the open instant, closed at the close instant.
    want = _REFERENCE.is_open_at_time(pd.Timestamp(t), side="left")
    assert cal.is_open(t) == want
    if want:
        assert cal.is_open(t, extended=True)
        assert cal.is_session(cal.session_date(t))


@given(st.dates(min_value=date(1998, 1, 2), max_value=date(2035, 12, 31)))
def test_sessions_open_at_half_past_nine_and_close_at_four_or_one(d: date) -> None:
    cal = xnys_calendar()
    assert cal.is_session(d) == _REFERENCE.is_session(pd.Timestamp(d))
    if not cal.is_session(d):
        return
    opened = cal.session_open(d).astimezone(NEW_YORK)
    closed = cal.session_close(d).astimezone(NEW_YORK)
    assert (opened.date(), opened.hour, opened.minute) == (d, 9, 30)
    assert (closed.date(), closed.hour, closed.minute) in {(d, 16, 0), (d, 13, 0)}
    assert d.weekday() < 5
