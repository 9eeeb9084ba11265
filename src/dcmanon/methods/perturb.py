"""perturb: add uniform noise to numbers (ages, DS/IS text, binary numbers)."""

from __future__ import annotations

import math
import random
import re
from decimal import Decimal

from dcmanon.config.settings import PerturbSettings, RangeType
from dcmanon.dicom.dates import Age, DateFormatError, format_age, parse_age
from dcmanon.dicom.values import ElementData
from dcmanon.methods.base import FileContext, MethodError, unsupported

INTEGER_LIMITS = {
    "IS": (-(2**31), 2**31 - 1), "SS": (-(2**15), 2**15 - 1), "SL": (-(2**31), 2**31 - 1),
    "SV": (-(2**63), 2**63 - 1), "US": (0, 2**16 - 1), "UL": (0, 2**32 - 1),
    "UV": (0, 2**64 - 1), "OW": (0, 2**16 - 1), "OL": (0, 2**32 - 1), "OV": (0, 2**64 - 1),
}
FLOAT_LIMITS = {"FL": 3.4028234663852886e38, "OF": 3.4028234663852886e38,
                "FD": 1.7976931348623157e308, "OD": 1.7976931348623157e308}
FLOAT_VRS = frozenset(FLOAT_LIMITS)
SUPPORTED = frozenset({"AS", "DS", *INTEGER_LIMITS, *FLOAT_VRS})
DS_MAX_LENGTH = 16
# DS and IS text (PS3.5 6.2): a decimal number, optionally with an exponent. Python's float()
# would also take "nan", "inf" and "1_000", which are not numbers in DICOM.
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_random = random.SystemRandom()


def noisy(value: float, settings: PerturbSettings) -> float:
    """``round(value + U[-s/2, s/2], roundTo)``, s = span or |value·span|."""
    span = settings.span if settings.range_type is RangeType.FIXED else abs(value * settings.span)
    return round(value + _random.uniform(-span / 2, span / 2), settings.round_to)


def _integer(value: float, vr: str) -> int:
    if math.isnan(value):
        raise MethodError("perturbed value is not a number")
    low, high = INTEGER_LIMITS[vr]
    # Unsigned targets clamp negatives to 0; every target is clamped to its range (before
    # truncation, so that an infinite value cannot overflow).
    return math.trunc(max(low, min(high, value)))


def _float(value: float, vr: str) -> float:
    # A float target holds no more than its type's largest finite value (no overflow to inf).
    limit = FLOAT_LIMITS[vr]
    return value if math.isnan(value) else max(-limit, min(limit, value))


def format_ds(value: float) -> str:
    """DS text of a number: 15 significant digits, no exponent, no trailing zeros, ≤ 16 chars.

    Like the reference (.NET decimal, then ``G10`` when too long); where even ``G10`` is too
    long for DS (``-1.234567891e-100``), fewer significant digits are used.
    """
    text = format(Decimal(format(value, ".15g")).normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    digits = 10
    while len(text) > DS_MAX_LENGTH and digits > 0:
        text = format(value, f".{digits}g")
        digits -= 1
    return "0" if text in ("-0", "") else text


def _number(text: str) -> float:
    value = float(text.strip()) if _NUMBER.match(text.strip()) else math.nan
    if not math.isfinite(value):
        raise MethodError("value is not a finite decimal number")
    return value


def perturb(data: ElementData, settings: PerturbSettings, context: FileContext) -> ElementData:
    """Perturb each value independently; an empty element is left as it is.

    Integer targets truncate toward zero and are clamped to their type (unsigned: negatives
    become 0, as in the reference); an AS number is unsigned the same way, its unit kept.
    """
    if data.vr not in SUPPORTED or data.fragments is not None:
        raise unsupported("perturb", data.vr)
    if data.is_empty:
        return data
    if data.vr == "AS":
        ages: list[str] = []
        for text in data.texts or ():
            try:
                age = parse_age(text)
                number = max(0, math.trunc(noisy(float(age.number), settings)))
                ages.append(format_age(Age(number, age.unit)))
            except DateFormatError as exc:
                raise MethodError(str(exc)) from None
        return data.with_texts(ages)
    if data.vr == "DS":
        results = [noisy(_number(t), settings) for t in data.texts or ()]
        if not all(math.isfinite(r) for r in results):
            raise MethodError("perturbed value is too large for DS")
        return data.with_texts([format_ds(r) for r in results])
    if data.vr == "IS":
        return data.with_texts([str(_integer(noisy(_number(t), settings), "IS"))
                                for t in data.texts or ()])
    numbers: list[int | float] = []
    for value in data.numbers or ():
        if data.vr in FLOAT_VRS:
            # NaN and infinities carry nothing to hide and have no neighbourhood: kept.
            numbers.append(_float(noisy(float(value), settings), data.vr)
                           if math.isfinite(value) else value)
        else:
            numbers.append(_integer(noisy(float(value), settings), data.vr))
    return data.with_numbers(numbers)
