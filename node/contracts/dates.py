"""Calendar arithmetic on "YYYY-MM-DD" strings in the consortium's fixed UTC offset.

Only integer arithmetic and `datetime.date` (a proleptic Gregorian calendar with
no time zone) are used, so every node gets the same dates on any machine.
"""

from __future__ import annotations

import calendar
import datetime as dt

from node.contracts.errors import fail

MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def parse_date(text: str) -> dt.date:
    """Parse a strict YYYY-MM-DD date; raise invalid_date otherwise."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        fail("invalid_date", value=text)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail("invalid_date", value=text)


def local_day_number(time_ms: int, utc_offset_minutes: int) -> int:
    """Days since 1970-01-01 in local time (floor division, so times before 1970 work too)."""
    return (time_ms + utc_offset_minutes * MS_PER_MINUTE) // MS_PER_DAY


def local_date(time_ms: int, utc_offset_minutes: int) -> str:
    return dt.date.fromordinal(_EPOCH_ORDINAL + local_day_number(time_ms, utc_offset_minutes)).isoformat()


def local_minute_of_day(time_ms: int, utc_offset_minutes: int) -> int:
    local_ms = time_ms + utc_offset_minutes * MS_PER_MINUTE
    return (local_ms % MS_PER_DAY) // MS_PER_MINUTE


def add_days(date_text: str, days: int) -> str:
    return (parse_date(date_text) + dt.timedelta(days=days)).isoformat()


def days_between(earlier: str, later: str) -> int:
    """Return later - earlier in days (negative when `later` is before `earlier`)."""
    return (parse_date(later) - parse_date(earlier)).days


def add_months(date_text: str, months: int, anchor_day: int | None = None) -> str:
    """Add calendar months keeping the anchor day, clamped to month end (31 Jan -> 28/29 Feb -> 31 Mar)."""
    start = parse_date(date_text)
    day = anchor_day if anchor_day is not None else start.day
    month_index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    last_day = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day, last_day)).isoformat()


def add_years(date_text: str, years: int) -> str:
    """Add calendar years; 29 Feb clamps to 28 Feb in a common year."""
    return add_months(date_text, 12 * years)


def year_of(date_text: str) -> int:
    return int(date_text[:4])
