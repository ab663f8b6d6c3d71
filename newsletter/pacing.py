"""Spacing sends out to a rate a server allows, shared by concurrent senders."""

from __future__ import annotations

import asyncio
import heapq
import itertools


class Pace:
    """At most `rate` starts per second (0: no limit), evenly spaced rather than in bursts,
    so a server that counts per second never sees more than it allows.

    Slots are handed out one at a time, when they come, to the waiter with the lowest
    `order` (first come first among equals): a sender that matters more for finishing soon
    goes first, however many wait. A slot missed while the event loop was busy is lost, not
    made up with a burst afterwards; a slot late by less than half an interval keeps the
    grid, so small delays do not slow the rate down.
    """

    def __init__(self, rate: float) -> None:
        self._interval = 1 / rate if rate > 0 else 0.0
        self._next_slot = 0.0
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self, order: float = 0.0) -> None:
        if not self._interval:
            return
        loop = asyncio.get_running_loop()
        if not self._waiting and loop.time() >= self._next_slot:
            self._take(loop.time())
            return
        future = loop.create_future()
        heapq.heappush(self._waiting, (order, next(self._arrivals), future))
        self._arm(loop)
        await future

    def _take(self, now: float) -> None:
        self._next_slot = max(self._next_slot, now - self._interval / 2) + self._interval

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None and self._waiting:
            self._timer = loop.call_at(self._next_slot, self._release, loop)

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():  # a cancelled waiter gives up its place
                future.set_result(None)
                self._take(loop.time())
                break
        self._arm(loop)
