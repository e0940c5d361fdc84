"""The two sums of chances the dispatch policy rests on, exact and small.

* `at_least`: the chance that at least `k` of several people accept, each with their own
  probability (a Poisson-binomial tail). The expected count (the old rule: alert until
  count × p ≥ target) says nothing about the 27 % of incidents where all three AED runners
  decline; this does.
* `expected_first`: when help comes, on average, if it comes from whoever accepts first among
  people who each may or may not accept: the expected minimum of uncertain arrival times.
"""

from __future__ import annotations

from collections.abc import Iterable


def at_least(probabilities: Iterable[float], k: int) -> float:
    """P(at least `k` of independent events happen), event i with probability `probabilities[i]`."""
    if k <= 0:
        return 1.0
    # below[j]: P(exactly j happened so far), for j < k; mass that reaches k is done
    below = [1.0] + [0.0] * (k - 1)
    done = 0.0
    for p in probabilities:
        p = min(max(p, 0.0), 1.0)
        done += below[k - 1] * p
        for j in range(k - 1, 0, -1):
            below[j] = below[j] * (1 - p) + below[j - 1] * p
        below[0] *= 1 - p
    return min(1.0, done)


def expected_first(fallback_s: float, arrivals: Iterable[tuple[float, float]]) -> float:
    """E[min(fallback, X₁, …)] where Xᵢ = tᵢ with probability pᵢ, else never (independently).

    `arrivals` are (tᵢ, pᵢ). The fallback is certain (help that is already on its way, or the
    ambulance); an arrival later than it cannot matter and is ignored.
    """
    expected, still_waiting = 0.0, 1.0
    for t, p in sorted(arrivals):
        if t >= fallback_s:
            break
        p = min(max(p, 0.0), 1.0)
        expected += still_waiting * p * t
        still_waiting *= 1 - p
    return expected + still_waiting * fallback_s
