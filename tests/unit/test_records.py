"""Record ids for a gateway batch's UUIDs, formatted by numpy: exactly `str(uuid)`."""

from __future__ import annotations

import random
import uuid

from responders.records import ID_BYTES, decode_ids, padded_id, uuid_ids


def test_uuid_ids_are_the_text_of_each_uuid() -> None:
    rng = random.Random(5)
    uuids = [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID("0123456789ABCDEFfedcba9876543210")]
    uuids += [uuid.UUID(int=rng.getrandbits(128)) for _ in range(2000)]
    ids = uuid_ids(uuids)
    assert ids.dtype.itemsize == ID_BYTES
    assert decode_ids(ids) == [str(u) for u in uuids]
    assert [padded_id(str(u)) for u in uuids[:50]] == ids[:50].tolist()
    assert len(uuid_ids([])) == 0
