"""Discord fan-out: a 1,000-paper digest posted to 1,000 channel feeds under Discord's limits.

Generates a digest with the seed's shape, gives each of `--feeds` channels a feed on a
keyword query (words 0.2-2% of papers use, so each feed gets a few papers, as a real
topic would), matches and queues the posts, then sends them with the real discord.py
HTTP client to the local stand-in of Discord (tests/discord_standin.py), which enforces
50 requests a second globally and 5 messages per 5 seconds per channel, answering 429
with `retry_after` beyond that. Prints, for each post format (compact, the default, and
full), messages a post, requests, 429s, the time taken and the least time the limits
allow. Run by hand:

    python bench/discord.py [--papers 1000] [--feeds 1000] [--rate 45] [--format both]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

# This file's name shadows the discord package when its folder comes first on the path:
# move the folder to the end (it is still needed there for `ingest` and `match`).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import discord.http  # noqa: E402
from ingest import capture, generate  # noqa: E402
from match import keyword_queries  # noqa: E402
from paperboy_bot.posting import post_due  # noqa: E402
from paperboy_bot.transports import POSTS_PER_SECOND, RestPosts  # noqa: E402

from newsletter.db import open_database  # noqa: E402
from newsletter.feeds import POST_FORMATS, add_feed, queue_posts  # noqa: E402
from newsletter.ingest import ingest_bytes  # noqa: E402
from newsletter.pipeline import match_digest  # noqa: E402
from tests.discord_standin import DiscordStandIn  # noqa: E402
from tests.timing import most_in_one_second  # noqa: E402

NOW = datetime(2026, 11, 25, tzinfo=UTC)
GUILD = 1


async def send_all(engine: object, rate: float) -> float:
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    await http.static_login("bench-token")
    try:
        began = time.perf_counter()
        summary = await post_due(engine, RestPosts(http, rate))  # type: ignore[arg-type]
        spent = time.perf_counter() - began
    finally:
        await http.close()
    print(f"posts: {summary.sent} sent, {summary.retried} retried, {summary.failed} failed")
    return spent


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1_000)
    parser.add_argument("--feeds", type=int, default=1_000)
    parser.add_argument(
        "--rate", type=float, default=POSTS_PER_SECOND, help="paperboy's pace, requests/s"
    )
    parser.add_argument(
        "--format", choices=[*POST_FORMATS, "both"], default="both", help="the feeds' format"
    )
    args = parser.parse_args()
    for post_format in POST_FORMATS if args.format == "both" else [args.format]:
        print(f"-- {post_format} format")
        await run(args, post_format)


async def run(args: argparse.Namespace, post_format: str) -> None:
    rng = random.Random(7)
    pairs = generate(args.papers, rng)
    papers = [(p.split("\n\n")[0], p.split("\n\n")[1]) for p in pairs]
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_database(f"sqlite:///{Path(tmp) / 'discord.db'}")
        digest = ingest_bytes(engine, capture(pairs), "bench", NOW)
        queries = keyword_queries(papers, args.feeds, rng)
        standin = DiscordStandIn()
        await standin.start()
        channels = {1000 + n: f"feed-{n}" for n in range(args.feeds)}
        standin.add_guild(GUILD, channels=channels)
        for channel, query in zip(channels, queries, strict=True):
            add_feed(engine, GUILD, channel, query, post_format=post_format)
        match_digest(engine, digest.digest_id)
        queued = queue_posts(engine, digest.digest_id, NOW.replace(tzinfo=None))
        original = discord.http.Route.BASE
        discord.http.Route.BASE = standin.base_url
        try:
            spent = await send_all(engine, args.rate)
        finally:
            discord.http.Route.BASE = original
            await standin.close()
        # Messages that went in: a request answered 429 is counted as a request only.
        posted = Counter(
            r.path
            for r in standin.requests
            if r.method == "POST" and r.path.endswith("/messages") and r.status < 300
        )
        requests = len(standin.requests)
        busiest = max(posted.values(), default=0)
        # The least time the limits allow: the global rate over every request, or the
        # busiest channel's windows (its first five messages go at once).
        by_global = requests / 50
        by_channel = math.ceil(busiest / 5 - 1) * 5 if busiest else 0
        bound = max(by_global, by_channel)
        paced = requests / args.rate
        # Messages a post: one channel gets one post here (one digest, a feed a channel).
        most = max(posted.values(), default=0)
        print(
            f"setup: {args.papers:,} papers, {args.feeds:,} feeds, {queued:,} posts queued, "
            f"{sum(posted.values()):,} messages (busiest channel {busiest}); "
            f"messages a post: {sum(posted.values()) / max(queued, 1):.2f} on average, "
            f"{most} at most"
        )
        print(f"requests sent: {requests:,}; 429s received: {standin.rate_limited} (target 0)")
        print(
            f"total time: {spent:.1f} s; bound the limits allow: {bound:.1f} s "
            f"(global 50/s: {by_global:.1f} s, per channel: {by_channel:.1f} s); "
            f"paperboy's pace of {args.rate:g}/s allows {paced:.1f} s; "
            f"time / bound: {spent / bound if bound else 0:.2f}x (target <= 1.1x)"
        )
        busiest = most_in_one_second(r.at for r in standin.requests)
        print(
            f"achieved: {requests / spent:.1f} requests/s; "
            f"busiest second: {busiest} requests (Discord allows 50)"
        )
        engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
