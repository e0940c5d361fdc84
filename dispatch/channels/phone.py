"""Phone numbers as the SMS and voice providers want them: E.164 (`+8613800138000`).

Responders' numbers are typed by administrators and imported from staff lists, mostly mainland
numbers without a country code (`138 0013 8000`, `0086-138…`, `0755-8888 1234`); Tencent Cloud and
most gateways refuse anything but `+<country><number>`. A number that cannot be made E.164 is
treated as no number: the attempt is `unreachable`, never sent to a wrong destination.
"""

from __future__ import annotations

import re

MAINLAND = "86"
_SEPARATORS = re.compile(r"[\s\-().]")
_MOBILE = re.compile(r"1[3-9]\d{9}")  # mainland mobile: 11 digits from 13x to 19x
_LANDLINE = re.compile(r"0[1-9]\d{8,10}")  # mainland trunk 0, area code, local number: 10-12 digits


def e164(raw: str | None, default_country: str = MAINLAND) -> str | None:
    """`raw` as `+<digits>`, or None when it is not a usable number.

    Without a `+` or `00` prefix a number is a mainland one: an 11-digit mobile, a landline with
    its trunk 0 (dropped), or `86…` followed by either.
    """
    if not raw:
        return None
    s = _SEPARATORS.sub("", raw.strip())
    if s.startswith("+"):
        digits = s[1:]
    elif s.startswith("00"):
        digits = s[2:]
    elif _MOBILE.fullmatch(s):
        digits = default_country + s
    elif _LANDLINE.fullmatch(s):
        digits = default_country + s[1:]
    elif s.startswith(MAINLAND) and (_MOBILE.fullmatch(s[2:]) or _LANDLINE.fullmatch("0" + s[2:])):
        digits = s
    else:
        return None
    if not digits.isdigit() or digits.startswith("0") or not 8 <= len(digits) <= 15:
        return None
    if digits.startswith(MAINLAND + "0"):  # +86 0755…: the trunk 0 never follows a country code
        digits = MAINLAND + digits[3:]
    return "+" + digits
