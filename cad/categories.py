"""A centre's incident-type codes → our incident categories, by the configured table.

Centres code incidents their own way (MPDS determinants like `09-E-01`, local texts, NENA registry
texts). The table (`Settings.cad_incident_types`) is matched case-insensitively, a key matching a
code equal to it or beginning with it (`09` catches `09-E-01`; the longest key wins), so a centre's
whole family of determinants needs one row. Unknown codes dispatch as `other_medical`, and the
caller says so: a call-taker must know when we guessed. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FALLBACK = "other_medical"


@dataclass(frozen=True)
class Category:
    """Our category and the centre's code it came from; `mapped_from` None: no code was known."""

    category: str
    mapped_from: str | None


def category_for(codes: Sequence[str], table: Mapping[str, str]) -> Category:
    """The category of the first code the table knows (codes are in the EIDO's order, most
    specific first), or the fallback."""
    keys = sorted(((k.casefold(), v) for k, v in table.items()), key=lambda kv: -len(kv[0]))
    for code in codes:
        folded = code.casefold()
        for key, category in keys:
            if folded == key or folded.startswith(key):
                return Category(category, code)
    return Category(FALLBACK, None)
