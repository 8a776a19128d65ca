"""Written forms rewritten as they are read aloud, for the ones the engines' front ends get wrong.

The engines' front ends (a lexicon G2P, espeak-ng) already read plain numbers, money, percentages,
ordinals, years and most abbreviations ("Dr.", "e.g."). Measured on the default voice, its G2P drops clock times and ratios ("3:30" and "16:9" became ":"), degrees ("20°C" became
"C"), en-dash and money ranges ("12–15", "$5-$10") entirely; it reads "5-10" as "five ten", a phone
number as one large number, an ISO date as "twenty twenty four zero one fifteen", and "Jan.", "St."
and "km" as if they were words. These rules fix exactly those, in English, and leave everything else
to the front end: digits stay digits so each engine reads them its own way.
"""

from __future__ import annotations

import re

_MONTHS = {
    "Jan": "January",
    "Feb": "February",
    "Mar": "March",
    "Apr": "April",
    "Jun": "June",
    "Jul": "July",
    "Aug": "August",
    "Sep": "September",
    "Sept": "September",
    "Oct": "October",
    "Nov": "November",
    "Dec": "December",
}
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# unit -> (singular, plural); only after a number, where the letters cannot be a word.
_UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "ml": ("milliliter", "milliliters"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "kW": ("kilowatt", "kilowatts"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
}
_SCALES = {"C": "Celsius", "F": "Fahrenheit", "K": "Kelvin"}
_STREETS = {"St": "Street", "Ave": "Avenue", "Rd": "Road", "Blvd": "Boulevard"}
_BEFORE_NAMES = {"St": "Saint", "Mt": "Mount"}

_DIGITS = r"\d+(?:[.,]\d+)*"
# A number, signed where the sign cannot be a hyphen: "-5°C", but in "5-10 km" the 10 is unsigned.
_NUMBER = rf"(?<![\w.,])[-−]?{_DIGITS}"
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?!:?\d)(?:\s*([AaPp])\.?\s?[Mm]\b(\.)?)?")
_RATIO = re.compile(r"(?<![\d:])(\d+):(\d+)(?![\d:])")  # a score or an aspect ratio: what a time is not
_DEGREES = re.compile(rf"({_NUMBER})\s*°\s*([CFK]\b)?")
_UNIT = re.compile(rf"({_NUMBER})\s?({'|'.join(sorted(map(re.escape, _UNITS), key=len, reverse=True))})(?![\w/])")
_MONTH = re.compile(rf"\b({'|'.join(_MONTHS)})\.?(?=\s+\d)")
# "Main St." is a street; "St. Louis" and "St Ives" are saints (a capitalised word before decides).
_STREET = re.compile(rf"\b([A-Z][a-z]+) ({'|'.join(_STREETS)})\b(\.)?")
_SAINT = re.compile(rf"\b({'|'.join(_BEFORE_NAMES)})\.?\s+(?=[A-Z])")
# Phone numbers (North American shape, optional country code) are read digit by digit in groups.
_PHONE = re.compile(r"(?<![\w+-])(\+\d{1,3}[ .-]?)?(\(\d{3}\) ?|\d{3}[ .-])(\d{3})[ .-](\d{4})(?![\w-])")
_ISO_DATE = re.compile(r"(?<![\w-])(\d{4})-(\d{2})-(\d{2})(?![\w-])")
# "5-10", "12–15", "$5-$10", "10%-20%": a range, read with "to" ("and" after "between"). Not part of a
# longer dashed code.
_RANGE = re.compile(rf"(\b(?i:between)\s+)?(?<![\w.,-])([$€£]?{_DIGITS}%?) ?[-–—] ?([$€£]?{_DIGITS}%?)(?![\w-]|[.,]\d)")
_SENTENCE_GOES_ON = re.compile(r"\s*(?:$|\n|[A-Z\"'(])")


def _keep_full_stop(match: re.Match[str], dot: str | None) -> str:
    """A full stop swallowed with an abbreviation, given back when it also ended the sentence."""
    return "." if dot and _SENTENCE_GOES_ON.match(match.string, match.end()) else ""


def _number(text: str) -> str:
    return "minus " + text[1:] if text[0] in "-−" else text


def _time(match: re.Match[str]) -> str:
    hours, minutes, meridiem, dot = int(match[1]), int(match[2]), match[3], match[4]
    if hours > 23 or minutes > 59 or (meridiem and not 1 <= hours <= 12):
        return match[0]  # a ratio or a score, not a time
    if minutes == 0:
        spoken = f"{hours}" if meridiem else (f"{hours} hundred" if hours > 12 or hours == 0 else f"{hours} o'clock")
    else:
        spoken = f"{hours} oh {minutes}" if minutes < 10 else f"{hours} {minutes}"
    if meridiem:
        spoken += " AM" if meridiem in "Aa" else " PM"
    return spoken + _keep_full_stop(match, dot)


def _phone(match: re.Match[str]) -> str:
    groups = [re.sub(r"\D", "", g) for g in match.groups() if g]
    spoken = ", ".join(" ".join(group) for group in groups)
    return ("plus " if match[0].startswith("+") else "") + spoken


def _iso_date(match: re.Match[str]) -> str:
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match[0]
    return f"{_MONTH_NAMES[month - 1]} {day}, {year}"


def _range(match: re.Match[str]) -> str:
    between = match[1] or ""
    return f"{between}{match[2]} {'and' if between else 'to'} {match[3]}"


def _degrees(match: re.Match[str]) -> str:
    value, scale = match[1], match[2]
    unit = "degree" if value in ("1", "-1", "−1") else "degrees"
    return f"{_number(value)} {unit}" + (f" {_SCALES[scale]}" if scale else "")


def _unit(match: re.Match[str]) -> str:
    singular, plural = _UNITS[match[2]]
    return f"{_number(match[1])} {singular if match[1] == '1' else plural}"


def _street(match: re.Match[str]) -> str:
    return f"{match[1]} {_STREETS[match[2]]}" + _keep_full_stop(match, match[3])


def read_aloud(text: str) -> str:
    """`text` with times, ratios, phone numbers, dates, ranges, degrees, units, month and street
    abbreviations written out as spoken."""
    text = _TIME.sub(_time, text)
    text = _RATIO.sub(r"\1 to \2", text)
    text = _PHONE.sub(_phone, text)
    text = _ISO_DATE.sub(_iso_date, text)
    text = _RANGE.sub(_range, text)
    text = _DEGREES.sub(_degrees, text)
    text = _UNIT.sub(_unit, text)
    text = _MONTH.sub(lambda m: _MONTHS[m[1]], text)
    text = _STREET.sub(_street, text)
    return _SAINT.sub(lambda m: f"{_BEFORE_NAMES[m[1]]} ", text)
