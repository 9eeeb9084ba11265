"""perturb: add uniform noise to numbers (ages, DS/IS text, binary numbers)."""

from __future__ import annotations

import math
import random
from decimal import Decimal

from dcmanon.config.settings import PerturbSettings, RangeType
from dcmanon.dicomdates import Age, DateFormatError, format_age, parse_age
from dcmanon.methods.base import ElementData, FileContext, MethodError, unsupported

INTEGER_LIMITS = {
    "IS": (-(2**31), 2**31 - 1), "SS": (-(2**15), 2**15 - 1), "SL": (-(2**31), 2**31 - 1),
    "SV": (-(2**63), 2**63 - 1), "US": (0, 2**16 - 1), "UL": (0, 2**32 - 1),
    "UV": (0, 2**64 - 1), "OW": (0, 2**16 - 1), "OL": (0, 2**32 - 1), "OV": (0, 2**64 - 1),
}
FLOAT_VRS = frozenset({"FL", "FD", "OF", "OD"})
SUPPORTED = frozenset({"AS", "DS", *INTEGER_LIMITS, *FLOAT_VRS})
_random = random.SystemRandom()


def noisy(value: float, settings: PerturbSettings) -> float:
    """``round(value + U[-s/2, s/2], roundTo)``, s = span or |value·span|."""
    span = settings.span if settings.range_type is RangeType.FIXED else abs(value * settings.span)
    return round(value + _random.uniform(-span / 2, span / 2), settings.round_to)


def _integer(value: float, vr: str) -> int:
    low, high = INTEGER_LIMITS[vr]
    # Unsigned targets clamp negatives to 0; every target is clamped to its range.
    return max(low, min(high, math.trunc(value)))


def format_ds(value: float) -> str:
    """DS text of a number: 15 significant digits, no exponent, no trailing zeros, ≤ 16 chars."""
    text = format(Decimal(format(value, ".15g")).normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if len(text) > 16:
        text = format(value, ".10g")
    return "0" if text in ("-0", "") else text


def _number(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise MethodError("value is not a number") from None


def perturb(data: ElementData, settings: PerturbSettings, context: FileContext) -> ElementData:
    """Perturb each value independently; an empty element is left as it is."""
    if data.vr not in SUPPORTED or data.fragments is not None:
        raise unsupported("perturb", data.vr)
    if data.is_empty:
        return data
    if data.vr == "AS":
        ages: list[str] = []
        for text in data.texts or ():
            try:
                age = parse_age(text)
                number = abs(math.trunc(noisy(float(age.number), settings)))
                ages.append(format_age(Age(number, age.unit)))
            except DateFormatError as exc:
                raise MethodError(str(exc)) from None
        return data.with_texts(ages)
    if data.vr == "DS":
        return data.with_texts([format_ds(noisy(_number(t), settings))
                                for t in data.texts or ()])
    if data.vr == "IS":
        return data.with_texts([str(_integer(noisy(_number(t), settings), "IS"))
                                for t in data.texts or ()])
    results: list[int | float] = []
    for value in data.numbers or ():
        result = noisy(float(value), settings)
        results.append(result if data.vr in FLOAT_VRS else _integer(result, data.vr))
    return data.with_numbers(results)
