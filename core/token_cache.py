"""This worker's memory of tokens PostgreSQL found valid, so a request does not look its token up.

Every HTTP request used to ask PostgreSQL who its token belongs to: a phone posting its position
every 10 s, a console polling, each a round trip to the record for an answer that almost never
changes. The answer changes only when a token is revoked, and every revocation is announced over
Redis (`core.revocation`): each worker drops the revoked ids from this cache the moment the
announcement arrives, and clears the whole cache when its subscription was down (announcements
made meanwhile never arrive). The TTL is only the safety net for a revocation nobody announced
(written straight into the database, or announced while Redis was unreachable).

Keyed by the token's SHA-256 (never the plain token), bounded in entries (least recently used go
first), pure: no I/O, the clock is injected so tests can move time.

A lookup that raced a revocation must not put the old answer back after the drop: `epoch()` is
read before the lookup and given to `put`, which keeps nothing when any drop or clear happened
in between (revocations are rare, so the lost caching is negligible).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.auth import Principal


@dataclass(slots=True)
class _Entry:
    principal: Principal
    until: float  # monotonic seconds


class TokenCache:
    """Resolved principals by token hash, with a TTL and a bound; dropped by token id on revocation."""

    def __init__(self, capacity: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.ttl_s, self.clock = capacity, ttl_s, clock
        self._by_digest: OrderedDict[str, _Entry] = OrderedDict()
        self._digests_of: dict[uuid.UUID, set[str]] = {}  # token id -> its cached hashes (one, really)
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._by_digest)

    def epoch(self) -> int:
        """Read before a database lookup; hand it to `put` with the lookup's answer."""
        return self._epoch

    def get(self, digest: str) -> Principal | None:
        """The principal cached for this token hash, unless absent or older than the TTL."""
        entry = self._by_digest.get(digest)
        if entry is None:
            return None
        if entry.until <= self.clock():
            self._forget(digest)
            return None
        self._by_digest.move_to_end(digest)
        return entry.principal

    def put(self, digest: str, principal: Principal, epoch: int) -> bool:
        """Remember a principal PostgreSQL just returned; False (nothing kept) when a revocation
        was applied since `epoch` was read, or the token has no id (the settings' admin token is
        never looked up)."""
        if epoch != self._epoch or principal.token_id is None or self.capacity <= 0 or self.ttl_s <= 0:
            return False
        self._forget(digest)
        self._by_digest[digest] = _Entry(principal, self.clock() + self.ttl_s)
        self._digests_of.setdefault(principal.token_id, set()).add(digest)
        while len(self._by_digest) > self.capacity:
            self._forget(next(iter(self._by_digest)))
        return True

    def drop(self, token_ids: Iterable[uuid.UUID]) -> int:
        """Forget these tokens (revoked); returns how many entries went."""
        self._epoch += 1
        dropped = 0
        for token_id in token_ids:
            for digest in self._digests_of.pop(token_id, ()):
                dropped += self._by_digest.pop(digest, None) is not None
        return dropped

    def clear(self) -> int:
        """Forget everything (announcements may have been missed); returns how many entries went."""
        self._epoch += 1
        count = len(self._by_digest)
        self._by_digest.clear()
        self._digests_of.clear()
        return count

    def _forget(self, digest: str) -> None:
        entry = self._by_digest.pop(digest, None)
        if entry is None or entry.principal.token_id is None:
            return
        digests = self._digests_of.get(entry.principal.token_id)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._digests_of[entry.principal.token_id]
