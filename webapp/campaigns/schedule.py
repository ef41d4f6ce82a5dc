"""When a campaign runs: dates, days of the week and an hour range (no Django models).

Days are ISO-like weekday numbers 0 (Monday) .. 6 (Sunday); the hour range is
[hour_from, hour_to) in the CAMPAIGNS_TIMEZONE, with 0 <= hour_from < hour_to <= 24
(0-24 = all day). Dates are aware datetimes; a missing start or end is open.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

ALL_DAYS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class Schedule:
    """The window a campaign may be shown in."""

    starts_at: datetime | None
    ends_at: datetime | None
    days: frozenset[int]
    hour_from: int
    hour_to: int

    def contains(self, now: datetime, *, zone: ZoneInfo) -> bool:
        """`now` is inside the dates, on one of the days and inside the hours (local time)."""
        if self.starts_at is not None and now < self.starts_at:
            return False
        if self.ends_at is not None and now >= self.ends_at:
            return False
        local = now.astimezone(zone)
        return local.weekday() in self.days and self.hour_from <= local.hour < self.hour_to

    def overlaps(self, other: "Schedule") -> bool:
        """Some moment could be inside both windows (dates, days and hours all intersect)."""
        starts = [s for s in (self.starts_at, other.starts_at) if s is not None]
        ends = [e for e in (self.ends_at, other.ends_at) if e is not None]
        if starts and ends and max(starts) >= min(ends):
            return False
        if not self.days & other.days:
            return False
        return max(self.hour_from, other.hour_from) < min(self.hour_to, other.hour_to)


def schedule_errors(
    *,
    starts_at: datetime | None,
    ends_at: datetime | None,
    days: Collection[int] | None,
    hour_from: int | None,
    hour_to: int | None,
) -> dict[str, str]:
    """Field name -> what is wrong with a schedule (empty when it is valid)."""
    errors: dict[str, str] = {}
    if starts_at and ends_at and ends_at <= starts_at:
        errors["ends_at"] = "The end must be after the start."
    if not isinstance(days, list | tuple | set | frozenset) or not days:
        errors["days"] = "Pick at least one day of the week."
    elif any(not isinstance(day, int) or day not in ALL_DAYS for day in days):
        errors["days"] = "Days must be numbers from 0 (Monday) to 6 (Sunday)."
    if hour_from is None or not 0 <= hour_from <= 23:
        errors["hour_from"] = "The first hour must be between 0 and 23."
    if hour_to is None or not 1 <= hour_to <= 24:
        errors["hour_to"] = "The end hour must be between 1 and 24."
    elif hour_from is not None and 0 <= hour_from <= 23 and hour_to <= hour_from:
        errors["hour_to"] = (
            f"The end hour ({hour_to}) must be after the first hour ({hour_from}); "
            "0-24 means all day."
        )
    return errors
