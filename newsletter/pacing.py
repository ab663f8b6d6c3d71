"""Spacing sends out to a rate a server allows, shared by concurrent senders."""

from __future__ import annotations

import asyncio
import time


class Pace:
    """At most `rate` starts per second (0: no limit), evenly spaced rather than in bursts,
    so a server that counts per second never sees more than it allows."""

    def __init__(self, rate: float) -> None:
        self._interval = 1 / rate if rate > 0 else 0.0
        self._next_slot = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = time.monotonic()
            wait, self._next_slot = (
                self._next_slot - now,
                max(now, self._next_slot) + self._interval,
            )
        if wait > 0:
            await asyncio.sleep(wait)
