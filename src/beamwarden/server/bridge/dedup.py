"""Room: server/bridge (no I/O, no clock: times are arguments). One advertisement, stored once.

Several gateways hear the same advertisement, and a thermometer repeats an unchanged one every
few seconds. :class:`RecentReadings` admits the first copy of a *measurement* — the device and what
it measured (not the RSSI, the gateway or the receive time, which differ between copies) — and
refuses copies arriving within ``window`` of it. The admitted copy gets an idempotent
``reading_id`` made of the device, the measurement and the window the first copy fell in, so even
a copy that slips past this cache (a restart, a second bridge) is a duplicate in the store.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Hashable

#: ids look like ``mq.<24 hex>``: opaque, never ``<stream>:<seq>`` (PROTOCOL.md "Delivery")
ID_PREFIX = "mq."


def reading_id(device_id: str, measurement: Hashable, bucket: int) -> str:
    """The idempotent id of one measurement of one device in one time window."""
    digest = hashlib.blake2b(
        f"{device_id}\x00{measurement!r}\x00{bucket}".encode(), digest_size=12
    ).hexdigest()
    return ID_PREFIX + digest


class RecentReadings:
    """Measurements seen within the last ``window_us`` (receive time), each with its id."""

    def __init__(self, window_us: int, max_entries: int = 500_000):
        if window_us <= 0:
            raise ValueError("the window is positive")
        self.window_us = window_us
        self._max = max_entries
        self._first: dict[tuple[str, Hashable], int] = {}
        self._order: deque[tuple[int, tuple[str, Hashable]]] = deque()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._first)

    def admit(
        self, device_id: str, measurement: Hashable, received_us: int, ts_us: int
    ) -> str | None:
        """The reading id if this is the first copy within the window, else ``None``.

        ``received_us`` (when the bridge got it) decides the window; ``ts_us`` (the reading's
        time: the device's, else the receive time) names the bucket of its id.
        """
        self._expire(received_us)
        key = (device_id, measurement)
        first = self._first.get(key)
        if first is not None and received_us - first < self.window_us:
            self.duplicates += 1
            return None
        self._first[key] = received_us
        self._order.append((received_us, key))
        return reading_id(device_id, measurement, ts_us // self.window_us)

    def _expire(self, now_us: int) -> None:
        order = self._order
        first = self._first
        horizon = now_us - self.window_us
        while order and (order[0][0] <= horizon or len(order) > self._max):
            at, key = order.popleft()
            if first.get(key) == at:
                del first[key]
