"""What a rate limit promises, checked on the times a server saw things arrive."""

from __future__ import annotations

from collections.abc import Iterable


def most_in_one_second(times: Iterable[float]) -> int:
    """The most arrivals within any one second: how close a sender came to a per-second
    limit, which a count of refusals does not tell until the limit is crossed."""
    arrivals = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(arrivals):
        while at - arrivals[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most
