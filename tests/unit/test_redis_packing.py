"""Commands packed by hiredis are byte for byte what redis-py's own Python packer sends."""

from __future__ import annotations

import pytest
from redis.asyncio import Connection
from redis.exceptions import DataError

from core.redis import HiredisPackingConnection

COMMANDS = [
    ("MGET", *(f"live:rec:89{i:013x}" for i in range(150))),
    ("CONFIG GET", "maxmemory"),
    (b"SCRIPT LOAD", "return 1"),
    ("EVALSHA", "ab" * 20, 1, "live:who", b"\x00\xffbinary", bytearray(b"ba"), memoryview(b"mv")),
    ("GEOADD", "geo", 114.05, 22.54, "responder"),
    ("SET", "k", "深圳", "PX", 1500, "NX"),
    ("ZADD", "z", 1e-07, "a", -0.0, "b", 12345678901234567890, "c"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_hiredis_packing_matches_redis_py(command: tuple) -> None:
    ours, theirs = HiredisPackingConnection(), Connection()
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))


@pytest.mark.parametrize("bad", [True, None, object()])
def test_values_redis_cannot_hold_are_refused(bad: object) -> None:
    with pytest.raises(DataError):
        HiredisPackingConnection().pack_command("SET", "k", bad)
