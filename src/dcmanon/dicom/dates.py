"""Parsing and formatting of DICOM DA, DT and AS values, as the reference anonymizer reads them.

Differences from the reference (see README, deviations): a DT of any valid precision is accepted
(the reference requires seconds), and hours are written on a 24-hour clock.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
# Every precision PS3.5 allows: YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX], trailing spaces allowed.
_DT = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,6}))?(?P<offset>[+-]\d{4})?\s*$"
)
_AS = re.compile(r"^(\d{3})([DWMY])$")

AGE_UNIT_DAYS = {"D": 365, "W": 52, "M": 12, "Y": 1}
"""How many of each unit make a year (the reference's integer conversion)."""

HIPAA_MAX_YEARS = 89


class DateFormatError(ValueError):
    """A DA, DT or AS value does not parse. The message never contains the value."""


def parse_da(text: str) -> dt.date:
    """Parse a DA value ``YYYYMMDD`` strictly.

    Raises
    ------
    DateFormatError
        If the text is not a valid calendar date in DA format.
    """
    match = _DA.match(text)
    if not match:
        raise DateFormatError("not a valid DA value (YYYYMMDD)")
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise DateFormatError("not a valid calendar date (YYYYMMDD)") from None


def format_da(value: dt.date) -> str:
    """Format a date as ``YYYYMMDD``."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


@dataclass(frozen=True)
class DicomDateTime:
    """A parsed DT value that remembers its precision and whether it had a UTC offset.

    ``components`` counts the date/time fields present: 1 year, 2 month, 3 day, 4 hour,
    5 minute, 6 second (fraction included with seconds).
    """

    value: dt.datetime
    components: int
    has_fraction: bool
    offset: str | None

    def with_date(self, date: dt.date) -> DicomDateTime:
        """Return a copy at midnight of ``date``, same precision and offset."""
        midnight = dt.datetime(date.year, date.month, date.day)
        return DicomDateTime(midnight, self.components, self.has_fraction, self.offset)


def parse_dt(text: str) -> DicomDateTime:
    """Parse a DT value of any valid precision.

    Raises
    ------
    DateFormatError
        If the text is not a valid DT value.
    """
    match = _DT.match(text)
    if not match:
        raise DateFormatError("not a valid DT value (YYYYMMDDHHMMSS.FFFFFF&ZZXX)")
    parts = [match["year"], match["month"], match["day"], match["hour"], match["minute"],
             match["second"]]
    # Components must be contiguous: no hour without a day, no fraction without seconds.
    present = [p is not None for p in parts]
    components = present.index(False) if False in present else 6
    if any(present[components:]) or (match["fraction"] and components < 6):
        raise DateFormatError("not a valid DT value (YYYYMMDDHHMMSS.FFFFFF&ZZXX)")
    defaults = [1, 1, 1, 0, 0, 0]
    numbers = [int(p) if p is not None else d for p, d in zip(parts, defaults, strict=True)]
    micro = int((match["fraction"] or "0").ljust(6, "0"))
    offset = match["offset"]
    if offset is not None and (int(offset[1:3]) > 14 or int(offset[3:5]) > 59):
        raise DateFormatError("not a valid DT offset (&ZZXX)")
    try:
        # Second 60 (a leap second) is valid DICOM; datetime cannot hold it.
        value = dt.datetime(numbers[0], numbers[1], numbers[2], numbers[3], numbers[4],
                            min(numbers[5], 59), micro)
    except ValueError:
        raise DateFormatError("not a valid calendar date and time in DT") from None
    return DicomDateTime(value, components, match["fraction"] is not None, offset)


def format_dt(value: DicomDateTime) -> str:
    """Format a DT at the precision it was read with.

    A value read with seconds is written with six fraction digits, as the reference does.
    """
    v = value.value
    fields = [f"{v.year:04d}", f"{v.month:02d}", f"{v.day:02d}", f"{v.hour:02d}",
              f"{v.minute:02d}", f"{v.second:02d}"]
    text = "".join(fields[: value.components])
    if value.components == 6:
        text += f".{v.microsecond:06d}"
    return text + (value.offset or "")


@dataclass(frozen=True)
class Age:
    """An AS value: a number and its unit (D, W, M or Y)."""

    number: int
    unit: str

    @property
    def years(self) -> int:
        """Whole years, by the reference's integer division (n/365, n/52, n/12)."""
        return self.number // AGE_UNIT_DAYS[self.unit]


def parse_age(text: str) -> Age:
    """Parse an AS value ``nnnD|W|M|Y`` strictly.

    Raises
    ------
    DateFormatError
        If the text is not a valid AS value.
    """
    match = _AS.match(text)
    if not match:
        raise DateFormatError("not a valid AS value (nnnD, nnnW, nnnM or nnnY)")
    return Age(int(match[1]), match[2])


def format_age(age: Age) -> str:
    """Format an age; numbers over 999 are converted to whole years.

    Raises
    ------
    DateFormatError
        If the age is over 999 years.
    """
    if age.number > 999:
        age = Age(age.years, "Y")
        if age.number > 999:
            raise DateFormatError("age too large for AS (over 999 years)")
    return f"{age.number:03d}{age.unit}"


def older_than_hipaa_limit(date: dt.date, today: dt.date) -> bool:
    """Whether ``date`` is 89 years old or more on ``today`` (HIPAA: such dates are removed).

    The reference drops a value when ``value (00:00) + 89 years < now``; ``now`` is past
    midnight, so on the 89th anniversary the value is already dropped: hence ``<=`` on dates.
    """
    try:
        limit = date.replace(year=date.year + HIPAA_MAX_YEARS)
    except ValueError:  # 29 February in a year that is not a leap year (.NET: 28 February)
        limit = date.replace(year=date.year + HIPAA_MAX_YEARS, day=28)
    return limit <= today
