"""The token cache on its own: TTL, bound, drops by token id, and no stale answer after a race."""

from __future__ import annotations

import uuid

from core.auth import Principal, Role
from core.token_cache import TokenCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def principal(role: Role = Role.dispatcher) -> Principal:
    return Principal(role=role, token_id=uuid.uuid4(), label="desk")


def test_an_entry_is_served_until_its_ttl_then_forgotten() -> None:
    clock = Clock()
    cache = TokenCache(capacity=10, ttl_s=60, clock=clock)
    desk = principal()
    assert cache.put("h1", desk, cache.epoch())
    clock.now += 59.9
    assert cache.get("h1") == desk
    clock.now += 0.2
    assert cache.get("h1") is None
    assert len(cache) == 0


def test_the_least_recently_used_go_first_past_the_bound() -> None:
    cache = TokenCache(capacity=2, ttl_s=60, clock=Clock())
    a, b, c = principal(), principal(), principal()
    cache.put("a", a, cache.epoch())
    cache.put("b", b, cache.epoch())
    assert cache.get("a") == a  # a is now the most recent
    cache.put("c", c, cache.epoch())
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (a, None, c)
    assert len(cache) == 2


def test_a_revoked_token_is_dropped_and_the_others_stay() -> None:
    cache = TokenCache(capacity=10, ttl_s=60, clock=Clock())
    lost_phone, desk = principal(Role.responder), principal()
    cache.put("phone", lost_phone, cache.epoch())
    cache.put("desk", desk, cache.epoch())
    assert cache.drop([lost_phone.token_id, uuid.uuid4()]) == 1  # type: ignore[list-item]
    assert cache.get("phone") is None
    assert cache.get("desk") == desk


def test_a_lookup_that_raced_a_revocation_is_not_cached() -> None:
    """Read the row (still valid), the revocation is announced and applied, then the answer comes
    back: caching it would serve the revoked token until the TTL."""
    cache = TokenCache(capacity=10, ttl_s=60, clock=Clock())
    phone = principal(Role.responder)
    before_lookup = cache.epoch()
    cache.drop([phone.token_id])  # type: ignore[list-item]
    assert not cache.put("phone", phone, before_lookup)
    assert cache.get("phone") is None
    before_lookup = cache.epoch()
    cache.clear()  # a gap in the subscription counts the same
    assert not cache.put("phone", phone, before_lookup)
    assert cache.put("phone", phone, cache.epoch())


def test_clear_forgets_everything_and_the_admin_token_is_never_kept() -> None:
    cache = TokenCache(capacity=10, ttl_s=60, clock=Clock())
    for n in range(5):
        cache.put(f"h{n}", principal(), cache.epoch())
    assert cache.clear() == 5 and len(cache) == 0
    assert not cache.put("admin", Principal(role=Role.admin, token_id=None), cache.epoch())
    assert not TokenCache(capacity=0, ttl_s=60).put("h", principal(), 0)  # size 0: caching off


def test_a_token_put_again_replaces_its_entry_and_its_id_index() -> None:
    clock = Clock()
    cache = TokenCache(capacity=10, ttl_s=60, clock=clock)
    desk = principal()
    cache.put("h", desk, cache.epoch())
    clock.now += 50
    cache.put("h", desk, cache.epoch())  # looked up again: a fresh TTL
    clock.now += 50
    assert cache.get("h") == desk
    assert cache.drop([desk.token_id]) == 1  # type: ignore[list-item]
    assert len(cache) == 0
