"""Value checks of ``--validateInput`` / ``--validateOutput``.

Reproduces fo-dicom 5.1.1 ``DicomDataset.Validate()`` as the reference anonymizer calls it: a
string check per value for the VRs that have one, then a value-multiplicity check against the
data dictionary. Reasons name the rule that failed, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence, Sized
from datetime import date, datetime, time
from functools import lru_cache

import pydicom
from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_VM
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.tag import BaseTag

from dcmanon.dicom.tags import describe_path
from dcmanon.errors import ValidationError

_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI", "UC"}
) | _SINGLE_VALUED
_NO_VM_CHECK = frozenset({"OB", "OW", "OL", "OD", "OF", "OV", "UN", "UC"})
_UNIT_SIZE = {"AT": 4, "US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "SV": 8, "UV": 8}
_PATIENT_NAME = 0x00100010

# fo-dicom parses digit runs with int.Parse, which rejects non-ASCII digits, hence re.ASCII there.
_AS = re.compile(r"^\d\d\d[DWMY]$")
_CS = re.compile(r"^[A-Z0-9_ ]*$")
_BLANK = re.compile(r"^\s*$")
_DIGITS8 = re.compile(r"^\d{8}$", re.ASCII)
_DIGITS4 = re.compile(r"^\d{4}$", re.ASCII)
_DS = re.compile(r"^[+-]?((0|[1-9][0-9]*)([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$")
_DT_BODY = re.compile(r"^\d{4}$|^\d{6}$|^\d{8}$|^\d{10}$|^\d{12}$|^\d{14}$|^\d{14}\.\d{1,6}$",
                      re.ASCII)
_DT_SIGNS = re.compile(r"[+-]")
_IS = re.compile(r"^[+-]?\d+$", re.ASCII)
_TM = re.compile(r"^\d{2}$|^\d{4}$|^\d{6}$|^\d{6}\.\d{1,6}$", re.ASCII)
_UI_CHARS = re.compile(r"^[0-9\.]*$")
_UI_LEADING_ZERO = re.compile(r"[.]0\d")
_UI_EMPTY_COMPONENT = re.compile(r"^[.]|[.][.]|[.]$")
_INT32 = (-(2**31), 2**31 - 1)


def _length(text: str) -> int:
    # fo-dicom measures .NET string length: UTF-16 code units, so astral characters count twice.
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _has_control(text: str, allow_esc: bool) -> bool:
    return any((ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) and not (allow_esc and c == "\x1b")
               for c in text)


def _field_over(digits: str, fields: tuple[tuple[int, int, str], ...]) -> str | None:
    """Return the first two-digit field (start, maximum, name) that exceeds its maximum."""
    for start, limit, name in fields:
        if len(digits) >= start + 2 and int(digits[start:start + 2]) > limit:
            return f"has {name} above {limit}"
    return None


def _check_range(v: str, pattern: re.Pattern[str], form: str,
                 fields: tuple[tuple[int, int, str], ...]) -> str | None:
    """Check a DA or TM value, or a range of two (``a-b``, either side may be empty)."""
    parts = v.split("-")
    if len(parts) > 2:
        return "has more than one range separator '-'"
    for part in (p.rstrip(" ") for p in parts):
        if not part:
            continue
        if not pattern.search(part):
            return f"does not match the {form}"
        problem = _field_over(part, fields)
        if problem:
            return problem
    return None


def _check_da(v: str) -> str | None:
    return _check_range(v, _DIGITS8, "DA format YYYYMMDD",
                        ((4, 12, "a month"), (6, 31, "a day")))


def _is_negative_offset(part: str) -> bool:
    return bool(_DIGITS4.search(part)) and int(part) <= 1200


def _dt_components(v: str) -> list[str] | str:
    """Split a DT value into its range ends, telling range '-' from negative-offset '-'."""
    parts = v.split("-")
    if len(parts) > 4:
        return "has too many '-' separators"
    if len(parts) == 4:
        return [f"{parts[0]}-{parts[1]}", f"{parts[2]}-{parts[3]}"]
    if len(parts) == 3:
        if _is_negative_offset(parts[1]):
            return [f"{parts[0]}-{parts[1]}", parts[2]]
        if _is_negative_offset(parts[2]):
            return [parts[0], f"{parts[1]}-{parts[2]}"]
        return "is not a valid DT range"
    if len(parts) == 2 and _is_negative_offset(parts[1]):
        return [v]
    return parts


def _check_dt_component(component: str) -> str | None:
    pieces = _DT_SIGNS.split(component)
    if len(pieces) > 2:
        return "has more than one UTC offset sign"
    if len(pieces) == 2:
        offset = pieces[1]
        if not _DIGITS4.search(offset):
            return "has a UTC offset that does not match &ZZXX"
        if "+" in component and int(offset[:2]) > 14:
            return "has a UTC offset above +14 hours"
        if "+" not in component and int(offset[:2]) > 12:
            return "has a UTC offset below -12 hours"
        if int(offset[2:4]) > 59:
            return "has UTC offset minutes above 59"
    body = pieces[0]
    if not _DT_BODY.search(body):
        return "does not match the DT format YYYY[MM[DD[HH[MM[SS[.F{1-6}]]]]]]"
    problem = _field_over(body, ((12, 60, "seconds"), (10, 59, "minutes"), (8, 23, "hours")))
    if problem:
        return problem
    for start, limit, name in ((6, 31, "day"), (4, 12, "month")):
        if len(body) >= start + 2:
            number = int(body[start:start + 2])
            if number > limit:
                return f"has a {name} above {limit}"
            if number == 0:
                return f"has {name} 00"
    return None


def _check_dt(v: str) -> str | None:
    if "-0000" in v:
        return "has the UTC offset -0000"
    if v.strip() == "-":
        return "is a range with both ends empty"
    components = _dt_components(v)
    if isinstance(components, str):
        return components
    for component in (c.rstrip(" ") for c in components):
        if component and (problem := _check_dt_component(component)):
            return problem
    return None


def _check_pn(v: str) -> str | None:
    if not v:
        return None
    groups = v.split("=")
    if len(groups) > 3:
        return "has more than 3 component groups"
    for group in groups:
        if _length(group) > 64:
            return "has a component group longer than 64 characters"
        if _has_control(group, allow_esc=True):
            return "contains a control character other than ESC"
    if any(len(group.split("^")) > 5 for group in groups):
        return "has a component group with more than 5 components"
    return None


def _check_tm(v: str) -> str | None:
    return _check_range(v, _TM, "TM format HH[MM[SS[.F{1-6}]]]",
                        ((0, 23, "hours"), (2, 59, "minutes"), (4, 60, "seconds")))


_Rule = tuple[Callable[[str], object], str]  # (test that is truthy on failure, reason)


def _longer(limit: int) -> _Rule:
    return (lambda v: _length(v) > limit, f"is longer than {limit} characters")


# Each VR's rules in fo-dicom's order, so the reason reported is the one fo-dicom would give.
_RULES: dict[str, tuple[_Rule, ...]] = {
    "AE": (_longer(16), (_BLANK.search, "is empty or only spaces"),
           (lambda v: "\\" in v or _has_control(v, allow_esc=False),
            "contains a backslash or a control character")),
    "AS": ((lambda v: v and not _AS.search(v),
            "does not match the AS format nnnD, nnnW, nnnM or nnnY"),),
    "CS": (_longer(16), (lambda v: not _CS.search(v),
                         "contains characters other than A-Z, 0-9, space and underscore")),
    "DS": (_longer(16), (lambda v: not _DS.search(v.strip()), "is not a decimal string")),
    "IS": ((lambda v: v and not _IS.search(v.strip(" ")), "is not an integer string"),
           (lambda v: v and not _INT32[0] <= int(v.strip(" ")) <= _INT32[1],
            "does not fit a 32-bit signed integer")),
    "LO": (_longer(64), (lambda v: "\\" in v or _has_control(v, allow_esc=True),
                         "contains a backslash or a control character other than ESC")),
    "SH": ((lambda v: "\\" in v or _has_control(v, allow_esc=True),
            "contains a backslash or a control character other than ESC"), _longer(16)),
    "LT": (_longer(10240),),
    "ST": (_longer(1024),),
    "UI": (_longer(64), (lambda v: not _UI_CHARS.search(v),
                         "contains characters other than digits and '.'"),
           (lambda v: v.startswith("0") or _UI_LEADING_ZERO.search(v),
            "has a component with a leading zero"),
           (_UI_EMPTY_COMPONENT.search, "has an empty component")),
}
_FUNCTIONS: dict[str, Callable[[str], str | None]] = {
    "DA": _check_da, "DT": _check_dt, "PN": _check_pn, "TM": _check_tm,
}


def _value_problem(vr: str, value: str) -> str | None:
    function = _FUNCTIONS.get(vr)
    if function is not None:
        return function(value)
    if vr == "UI":
        value = value.rstrip(" ")
    for test, reason in _RULES.get(vr, ()):
        if test(value):
            return reason
    return None


@lru_cache(maxsize=64)
def _vm_bounds(vm: str) -> tuple[int, int | None]:
    # Like fo-dicom, only the minimum and maximum count: the step of '2-2n' / '3-3n' is not checked.
    low, _, high = vm.partition("-")
    if not high:
        return int(low), int(low)
    return int(low), None if "n" in high else int(high)


def _vm_problem(vr: str, tag: int, count: int) -> str | None:
    if vr == "PN":
        if tag == _PATIENT_NAME and count > 3:
            return f"VM {count} is not allowed (PatientName has at most 3 values)"
        return None
    if vr in _NO_VM_CHECK or BaseTag(tag).is_private or count < 1:
        return None
    try:
        vm = dictionary_VM(tag)
        low, high = _vm_bounds(vm)
    except (KeyError, ValueError):
        return None
    if count < low or (high is not None and count > high):
        return f"VM {count} is not allowed (dictionary VM {vm})"
    return None


def element_problem(vr: str, values: list[str] | None, tag: int,
                    value_count: int | None = None) -> str | None:
    """Return why an element's values break the rules of their VR and VM, or None.

    Parameters
    ----------
    vr : str
        The element's value representation (for an ambiguous ``"US or SS"`` the first is used).
    values : list of str or None
        The decoded values of a string VR (multi-valued strings already split on ``\\``),
        or None for VRs that are not checked as strings.
    tag : int
        The element's tag, for the dictionary VM.
    value_count : int, optional
        The number of values for the VM check; defaults to ``len(values)``.

    Returns
    -------
    str or None
        The reason (which never contains the value), or None when the element is valid.
    """
    vr = vr.split(" or ")[0].strip()
    values = values or []
    for index, value in enumerate(values, start=1):
        problem = _value_problem(vr, value)
        if problem:
            which = f"value {index} of {len(values)}" if len(values) > 1 else "value"
            return f"{which} {problem}"
    count = len(values) if value_count is None else value_count
    return _vm_problem(vr, tag, count)


def _as_text(value: object, vr: str, encodings: list[str]) -> str:
    if isinstance(value, bytes):
        return decode_bytes(value, encodings, set()).rstrip("\0" if vr == "UI" else " ")
    original = getattr(value, "original_string", None)
    if isinstance(original, str):
        return original
    # Without an original string, pydicom writes dates and times in these formats.
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d%H%M%S.%f%z" if value.microsecond else "%Y%m%d%H%M%S%z")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if isinstance(value, time):
        return value.strftime("%H%M%S.%f" if value.microsecond else "%H%M%S")
    return str(value)


def _string_values(elem: DataElement, vr: str, ds: pydicom.Dataset) -> list[str]:
    value: object = elem.value
    charset = ds._character_set
    encodings = [charset] if isinstance(charset, str) else list(charset)
    if value is None:
        return []
    if isinstance(value, str | bytes):
        text = _as_text(value, vr, encodings)
        if not text:
            return []
        return [text] if vr in _SINGLE_VALUED else text.split("\\")
    if isinstance(value, Sequence):
        return [_as_text(v, vr, encodings) for v in value]
    return [_as_text(value, vr, encodings)]


def _binary_count(value: object, vr: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bytes | bytearray):
        return len(value) // _UNIT_SIZE.get(vr, 1)
    return len(value) if isinstance(value, Sized) else 1


def _walk(ds: pydicom.Dataset, path: tuple[tuple[int, int], ...], stage: str) -> None:
    for tag in sorted(ds.keys()):
        raw = ds.get_item(tag)
        # Convert a detached copy: converting in place would change what methods later read
        # (PersonName drops trailing "=", DS loses its spelling).
        elem = convert_raw_data_element(raw, ds=ds) if isinstance(raw, RawDataElement) \
            else raw
        if elem.tag >> 16 == 0x0002:
            continue  # file meta lives outside the dataset fo-dicom validates
        vr = elem.VR.split(" or ")[0].strip()
        if vr == "SQ":
            for index, item in enumerate(ds[tag].value):
                _walk(item, (*path, (elem.tag, index)), stage)
            continue
        if vr in _STRING_VRS:
            problem = element_problem(vr, _string_values(elem, vr, ds), elem.tag)
        else:
            problem = element_problem(vr, None, elem.tag, _binary_count(elem.value, vr))
        if problem:
            raise ValidationError(element=describe_path(path, elem.tag), reason=problem,
                                  vr=vr, stage=stage)


def validate_dataset(ds: pydicom.Dataset, stage: str = "output") -> None:
    """Check every element of a dataset the way fo-dicom's ``DicomDataset.Validate()`` does.

    Elements are visited in tag order, recursing into sequence items; file meta (group 0002)
    is not checked. The first failure stops the walk.

    Parameters
    ----------
    ds : pydicom.Dataset
        The dataset to check.
    stage : str, optional
        ``"input"`` or ``"output"``, recorded on the error.

    Raises
    ------
    dcmanon.errors.ValidationError
        On the first element whose values break their VR or VM rules; the message names the
        element (with its sequence path) and the rule, never the value.
    """
    _walk(ds, (), stage)
