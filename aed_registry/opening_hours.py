"""OpenStreetMap-style `opening_hours`: parse once into rules, then answer "open at this local time?".

Why our own parser: the maintained PyPI library (`opening-hours-py`) evaluates `PH` only from its
embedded per-country calendars, while dispatch must use the operator's configured holiday list
(`Settings.aed_public_holidays`, China's official 2026 days off by default). The AED registries we
import use a small part of the syntax, and this module covers exactly that part:

- `24/7`; rules without a day selector (`08:00-20:00`); `open`; `off` / `closed`;
- weekday ranges and lists, wrapping ranges (`Sa-Mo`), `PH` as a day selector (`Mo-Fr,PH`);
- several time ranges a day (`08:00-12:00,14:00-18:00`), ranges past midnight (`22:00-02:00`,
  `18:00-26:00`), `24:00` as an end;
- `;` rules override earlier rules on the days they select; `, <days> <times>` adds to them.

A range past midnight belongs to the day it starts on: `Fr 22:00-02:00` is open on Saturday at 01:00
even when a later rule redefines Saturday. Anything else (months, week numbers, sunrise, comments,
`||` fallbacks) raises `OpeningHoursError`; the registry keeps the text as written, flags it, and
treats the AED as "unknown".
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

DAY_MINUTES = 24 * 60
WEEKDAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")
# Values real registries use for "always open" that are not OSM syntax.
ALWAYS_OPEN_ALIASES = frozenset({"24/7", "24h", "24 h", "24小时", "24小時", "全天", "全天开放", "24 hours"})
_TOKEN = re.compile(
    r"\s*(?:(?P<time>\d{1,2}:\d{2})|(?P<day>mo|tu|we|th|fr|sa|su)\b|(?P<ph>ph)\b"
    r"|(?P<state>off|closed|open)\b|(?P<punct>[-,]))",
    re.IGNORECASE,
)
_NORMALISE = str.maketrans({"–": "-", "—": "-", "～": "-", "~": "-", "：": ":", "，": ",", "；": ";"})


class OpeningHoursError(ValueError):
    """The text is outside the supported syntax; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: which days it selects and the minute spans it opens on each of them."""

    weekdays: frozenset[int]  # 0 = Monday
    holidays: bool  # the selector includes PH
    every_day: bool  # no day selector at all
    spans: tuple[tuple[int, int], ...]  # minutes from local midnight; the end may pass 24:00
    additional: bool  # joined by ", ": adds to the day's spans instead of replacing them

    def selects(self, weekday: int, is_holiday: bool) -> bool:
        return self.every_day or weekday in self.weekdays or (self.holidays and is_holiday)


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """A compiled `opening_hours` value: rules in the order written."""

    rules: tuple[Rule, ...]

    def spans_on(self, day: date, holidays: Container[date]) -> tuple[tuple[int, int], ...]:
        """The open spans that start on `day`, after later rules override earlier ones."""
        weekday, is_holiday = day.weekday(), day in holidays
        spans: tuple[tuple[int, int], ...] = ()
        for rule in self.rules:
            if rule.selects(weekday, is_holiday):
                spans = spans + rule.spans if rule.additional else rule.spans
        return spans


def is_open(hours: OpeningHours, local: datetime, holidays: Container[date]) -> bool:
    """Whether the place is open at the naive or aware *local* wall-clock time `local`."""
    minute = local.hour * 60 + local.minute + local.second / 60
    today = local.date()
    if any(start <= minute < end for start, end in hours.spans_on(today, holidays)):
        return True
    yesterday = today - timedelta(days=1)
    return any(start <= minute + DAY_MINUTES < end for start, end in hours.spans_on(yesterday, holidays))


def parse_opening_hours(text: str) -> OpeningHours:
    """Compile `text`; raises `OpeningHoursError` naming the unsupported part."""
    cleaned = " ".join(text.translate(_NORMALISE).split())
    if not cleaned:
        raise OpeningHoursError("empty value")
    if cleaned.lower() in ALWAYS_OPEN_ALIASES:
        return OpeningHours((Rule(frozenset(), False, True, ((0, DAY_MINUTES),), False),))
    if "||" in cleaned or '"' in cleaned:
        raise OpeningHoursError("fallback rules ('||') and comments are not supported")
    rules: list[Rule] = []
    for part in cleaned.split(";"):
        if part.strip():
            rules.extend(_parse_rule(part.strip()))
    if not rules:
        raise OpeningHoursError("no rule found")
    return OpeningHours(tuple(rules))


@lru_cache(maxsize=8192)
def compile_cached(text: str) -> OpeningHours | None:
    """The compiled value, or None when unparseable; cached because thousands of AEDs share a few strings."""
    try:
        return parse_opening_hours(text)
    except OpeningHoursError:
        return None


def open_at(text: str | None, local: datetime, holidays: Container[date]) -> bool | None:
    """True/False, or None ("unknown") when there is no value or it cannot be parsed."""
    if text is None:
        return None
    hours = compile_cached(text)
    return None if hours is None else is_open(hours, local, holidays)


def _tokens(rule: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    rule_24_7 = rule.replace("24/7", "00:00-24:00")
    while pos < len(rule_24_7):
        m = _TOKEN.match(rule_24_7, pos)
        if m is None or m.end() == pos:
            rest = rule_24_7[pos:].strip()
            if not rest:
                break
            raise OpeningHoursError(f"unsupported syntax at '{rest[:20]}'")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind).lower()))
        pos = m.end()
    return out


def _minutes(value: str, *, end: bool) -> int:
    hours, minutes = (int(x) for x in value.split(":"))
    if minutes > 59 or hours > (48 if end else 23):
        raise OpeningHoursError(f"time '{value}' out of range")
    return hours * 60 + minutes


def _parse_rule(rule: str) -> list[Rule]:
    """One `;`-separated rule, which may hold `, <days> <times>` additional rules."""
    tokens, i, rules, additional = _tokens(rule), 0, [], False
    while i < len(tokens):
        weekdays, holidays, i = _parse_days(tokens, i)
        spans, i = _parse_spans(tokens, i)
        if i < len(tokens) and tokens[i][0] == "state":
            if tokens[i][1] in ("off", "closed"):
                spans = ()
            elif not spans:
                spans = ((0, DAY_MINUTES),)
            i += 1
        elif spans is None:
            if not (weekdays or holidays):
                raise OpeningHoursError(f"rule '{rule}' has neither days nor times")
            spans = ((0, DAY_MINUTES),)  # a bare day selector means open all day
        rules.append(Rule(frozenset(weekdays), holidays, not (weekdays or holidays), spans or (), additional))
        if i < len(tokens):
            if tokens[i] != ("punct", ",") or i + 1 >= len(tokens) or tokens[i + 1][0] not in ("day", "ph"):
                raise OpeningHoursError(f"unexpected '{tokens[i][1]}' in '{rule}'")
            i, additional = i + 1, True
    return rules


def _parse_days(tokens: list[tuple[str, str]], i: int) -> tuple[set[int], bool, int]:
    weekdays: set[int] = set()
    holidays = False
    while i < len(tokens) and tokens[i][0] in ("day", "ph"):
        kind, value = tokens[i]
        if kind == "ph":
            holidays, i = True, i + 1
        elif i + 2 < len(tokens) and tokens[i + 1] == ("punct", "-") and tokens[i + 2][0] == "day":
            first, last = WEEKDAYS.index(value), WEEKDAYS.index(tokens[i + 2][1])
            weekdays.update((first + k) % 7 for k in range((last - first) % 7 + 1))  # Sa-Mo wraps
            i += 3
        else:
            weekdays.add(WEEKDAYS.index(value))
            i += 1
        if i + 1 < len(tokens) and tokens[i] == ("punct", ",") and tokens[i + 1][0] in ("day", "ph"):
            i += 1
        else:
            break
    return weekdays, holidays, i


def _parse_spans(tokens: list[tuple[str, str]], i: int) -> tuple[tuple[tuple[int, int], ...] | None, int]:
    spans: list[tuple[int, int]] = []
    while i < len(tokens) and tokens[i][0] == "time":
        if i + 2 >= len(tokens) or tokens[i + 1] != ("punct", "-") or tokens[i + 2][0] != "time":
            raise OpeningHoursError(f"time '{tokens[i][1]}' is not followed by '-HH:MM'")
        start, end = _minutes(tokens[i][1], end=False), _minutes(tokens[i + 2][1], end=True)
        if end <= start:
            if end > DAY_MINUTES:
                raise OpeningHoursError(f"range {tokens[i][1]}-{tokens[i + 2][1]} ends before it starts")
            end += DAY_MINUTES  # past midnight: 22:00-02:00
        spans.append((start, end))
        i += 3
        if i + 1 < len(tokens) and tokens[i] == ("punct", ",") and tokens[i + 1][0] == "time":
            i += 1
        else:
            break
    return (tuple(spans) if spans else None), i
