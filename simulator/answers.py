"""How simulated workers answer alerts: who accepts, who declines, who stays silent, and how fast.

Each worker has a true propensity to accept, drawn once from a Beta distribution whose mean is the
study's acceptance level (people differ: some answer almost every alert, some almost none), lower at
night. An answer to one alert is decided by hashed draws of (seed, incident, worker)
(`simulator.incidents.uniform_draws`), so every policy that alerts the same person to the same
incident gets the same answer after the same delay: the comparison stays paired.

The policy under test never sees these propensities. It learns them the way the service does, from
answers: `simulated_history` plays earlier weeks of alerts to the same workers and tallies what
they did (`responders.acceptance.history_of`); `learned_acceptance` turns the tallies into the
Beta-Binomial estimates the service would hold.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from responders.acceptance import Band, History, Outcome, history_of
from simulator.incidents import uniform_draws
from simulator.population import SimResponder

ACCEPT_STREAM, SILENCE_STREAM, DELAY_STREAM = 0, 1, 2


@dataclass(frozen=True, slots=True)
class AnswerModel:
    """The behaviour the simulation assumes (stated on the report page).

    `concentration`: α + β of each worker's Beta propensity (4: wide spread around the mean).
    `night_factor`: propensity multiplier on the night shift. `silent_share`: share of those who do
    not accept who never answer (the alert expires). Delays are lognormal with median
    `delay_median_s` and log-spread `delay_sigma` (0.6: a quarter of answers take over 30 s).
    """

    concentration: float = 4.0
    night_factor: float = 0.7
    silent_share: float = 0.4
    delay_median_s: float = 20.0
    delay_sigma: float = 0.6

    def share_slower_than(self, seconds: float) -> float:
        """The share of answers that take longer than `seconds`."""
        return float(1 - ndtr(math.log(seconds / self.delay_median_s) / self.delay_sigma))


@dataclass(frozen=True, slots=True)
class Answer:
    """What one alerted worker does, `delay_s` after the alert: accept, decline, or nothing."""

    accepts: bool
    answers: bool
    delay_s: float

    @property
    def outcome(self) -> Outcome:
        return "accepted" if self.accepts else "declined" if self.answers else "unanswered"


def propensities(n: int, mean: float, model: AnswerModel, seed: int) -> NDArray[np.float64]:
    """Each worker's true day-time acceptance probability, Beta(mean·c, (1-mean)·c)."""
    rng = np.random.default_rng([seed, 11])
    mean = min(max(mean, 1e-6), 1 - 1e-6)
    return rng.beta(mean * model.concentration, (1 - mean) * model.concentration, n)


def true_acceptance(propensity: NDArray[np.float64], band: Band, model: AnswerModel) -> NDArray[np.float64]:
    """The chance of accepting in a band: the propensity, lowered on the night shift."""
    return propensity * (model.night_factor if band == "night" else 1.0)


def _delays(u: NDArray[np.float64], model: AnswerModel) -> NDArray[np.float64]:
    """Lognormal delays from uniforms (inverse CDF, so a draw maps to one delay whatever else happens)."""
    return model.delay_median_s * np.exp(model.delay_sigma * ndtri(np.clip(u, 1e-12, 1 - 1e-12)))


def answers_to(
    seed: int,
    incident_id: int,
    keys: NDArray[np.int64],
    acceptance: NDArray[np.float64],
    model: AnswerModel,
) -> list[Answer]:
    """The answers of the workers `keys` (indices into the population) to one incident, given each
    one's true acceptance at that moment. Pure in (seed, incident, key, acceptance)."""
    accept = uniform_draws(seed, incident_id, keys, ACCEPT_STREAM) < acceptance
    silent = uniform_draws(seed, incident_id, keys, SILENCE_STREAM) < model.silent_share
    delay = _delays(uniform_draws(seed, incident_id, keys, DELAY_STREAM), model)
    return [
        Answer(bool(a), bool(a or not s), float(d)) for a, s, d in zip(accept, silent, delay, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Crew:
    """Who a worker is to the acceptance estimate: their id, team (district) and category."""

    responder_id: str
    team: str | None
    category: str


def simulated_history(
    crew: Sequence[Crew],
    people: Sequence[SimResponder],
    propensity: NDArray[np.float64],
    model: AnswerModel,
    *,
    weeks: int,
    alerts_per_week: float,
    seed: int,
) -> History:
    """Earlier weeks of alerts to the same workers (in their own shift's band), answered from their
    true propensities, tallied as the service tallies them. Its own random stream: it is the past,
    not the incidents under study."""
    rng = np.random.default_rng([seed, 13])

    def answers() -> Iterator[tuple[str, str | None, str | None, Band, Outcome]]:
        counts = rng.poisson(alerts_per_week * weeks, len(people))
        for who, person, p, n in zip(crew, people, propensity, counts, strict=True):
            band: Band = person.shift
            accept = rng.random(n) < true_acceptance(p, band, model)
            silent = rng.random(n) < model.silent_share
            for a, s in zip(accept, silent, strict=True):
                outcome: Outcome = "accepted" if a else "unanswered" if s else "declined"
                yield who.responder_id, who.team, who.category, band, outcome

    return history_of(answers())


def learned_acceptance(
    history: History, crew: Sequence[Crew], people: Sequence[SimResponder], *, prior: float, strength: float
) -> NDArray[np.float64]:
    """Each worker's estimated acceptance in their own shift's band, from the history alone."""
    return np.array(
        [
            history.estimate(w.responder_id, w.team, w.category, p.shift, prior=prior, strength=strength)
            for w, p in zip(crew, people, strict=True)
        ]
    )
