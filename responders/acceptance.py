"""How likely one responder is to accept an alert: a Beta-Binomial estimate from their own answers.

Each person's answers (accepted; declined or left unanswered) are a Binomial draw of their own
acceptance probability. With a Beta prior the posterior mean is `(accepted + k·m) / (answers + k)`:
`m` is what we believed before their answers, `k` how many answers that belief is worth. Few
answers leave the estimate near `m`; many let their own rate speak.

The belief `m` is itself learned one level up, shrunk the same way: the global setting (the only
place the old fixed probability survives) is the prior of the category's rate (sanitation workers,
inspectors, …), that is the prior of the team's rate, and that the prior of the person's. All of it
per time-of-day band, because people on a night shift answer less often than in the day.

Pure: tallies in, a probability out. Where tallies are kept and updated is
`responders.acceptance_store`; the matching asks for estimates in one call per incident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Band = Literal["day", "night"]
BANDS: tuple[Band, ...] = ("day", "night")
DAY_STARTS_H, NIGHT_STARTS_H = 7, 19  # the frontline workers' shifts change at these local hours


def band_at(local: datetime) -> Band:
    """The time-of-day band of a local time (the hours of the day and night shifts)."""
    return "day" if DAY_STARTS_H <= local.hour < NIGHT_STARTS_H else "night"


@dataclass(frozen=True, slots=True)
class Tally:
    """Answers to alerts: accepted, declined, and left to expire without an answer."""

    accepted: int = 0
    declined: int = 0
    unanswered: int = 0

    @property
    def answers(self) -> int:
        return self.accepted + self.declined + self.unanswered

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.accepted + other.accepted,
            self.declined + other.declined,
            self.unanswered + other.unanswered,
        )

    def add(self, outcome: Outcome) -> Tally:
        """This tally with one more answer."""
        return self + _ONE[outcome]

    @classmethod
    def total(cls, tallies: Iterable[Tally]) -> Tally:
        out = cls()
        for t in tallies:
            out = out + t
        return out


Outcome = Literal["accepted", "declined", "unanswered"]
_ONE: dict[str, Tally] = {
    "accepted": Tally(1, 0, 0),
    "declined": Tally(0, 1, 0),
    "unanswered": Tally(0, 0, 1),
}


def shrink(tally: Tally, prior: float, strength: float) -> float:
    """Posterior mean of a Beta(strength·prior, strength·(1-prior)) prior after `tally`."""
    return (tally.accepted + strength * prior) / (tally.answers + strength)


def estimate(
    own: Tally,
    *,
    team: Tally | None = None,
    category: Tally | None = None,
    prior: float,
    strength: float,
) -> float:
    """The person's acceptance probability: global prior → category → team → own answers.

    `team` and `category` are the tallies of everyone in them (the person included); a missing
    level passes its prior straight through. Always strictly between 0 and 1 for 0 < prior < 1.
    """
    m = prior
    for level in (category, team):
        if level is not None:
            m = shrink(level, m, strength)
    return shrink(own, m, strength)


@dataclass(frozen=True, slots=True)
class History:
    """Tallies per band at every level, for estimating many people at once (one incident's pool,
    or a simulated city's workers). Keys: responder, team and category names as the caller has them."""

    responders: Mapping[tuple[str, Band], Tally]
    teams: Mapping[tuple[str, Band], Tally]
    categories: Mapping[tuple[str, Band], Tally]

    def estimate(
        self,
        responder: str,
        team: str | None,
        category: str | None,
        band: Band,
        *,
        prior: float,
        strength: float,
    ) -> float:
        return estimate(
            self.responders.get((responder, band), Tally()),
            team=self.teams.get((team, band)) if team is not None else None,
            category=self.categories.get((category, band)) if category is not None else None,
            prior=prior,
            strength=strength,
        )


def history_of(
    answers: Iterable[tuple[str, str | None, str | None, Band, Outcome]],
) -> History:
    """Build the tallies from answers (responder, team, category, band, outcome)."""
    responders: dict[tuple[str, Band], Tally] = {}
    teams: dict[tuple[str, Band], Tally] = {}
    categories: dict[tuple[str, Band], Tally] = {}
    for responder, team, category, band, outcome in answers:
        for table, key in ((responders, responder), (teams, team), (categories, category)):
            if key is not None:
                table[(key, band)] = table.get((key, band), Tally()).add(outcome)
    return History(responders, teams, categories)
