"""Lowercase hexadecimal text for many binary values at once.

Python formats one value at a time (`f"{x:x}"`, `str(uuid)`) at about a microsecond each; a gateway
batch has 5,000 responder ids and a 2 km query names ~150 cell keys, so these are done with numpy.
"""

from __future__ import annotations

import numpy as np

# Both digits of every byte value as one little-endian uint16, so a whole array is one gather.
_DIGIT_PAIRS = np.frombuffer("".join(f"{b:02x}" for b in range(256)).encode(), dtype="<u2")


def hex_digits(raw: np.ndarray) -> np.ndarray:
    """Rows of bytes, shape (n, w) uint8 → their ASCII hex digits, shape (n, 2w) uint8."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    return _DIGIT_PAIRS[raw].view(np.uint8).reshape(len(raw), 2 * raw.shape[1])
