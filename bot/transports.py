"""How a Discord message travels: to Discord over its REST API, or into a folder as JSON.

Like the mail transports, a transport raises `TemporaryFailure` for what may work later
(5xx after discord.py's own retries, a lost connection) and `PermanentFailure` for what
will not; `Gone` says the channel or the person will never take a message (deleted channel,
missing permission, closed DMs), so the poster stops sending there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import discord
from discord.http import HTTPClient, Route

from newsletter.mail.transports import PermanentFailure, TemporaryFailure
from newsletter.pacing import Pace

# Discord allows 50 requests a second per bot. Answers to slash commands do not count, so
# the rest of the bot needs little; the margin is for it and for requests bunching on the
# way (at 45/s the stand-in saw at most 47 in one second, at 48/s it saw 50).
POSTS_PER_SECOND = 45


class Gone(PermanentFailure):
    """The channel or person will not take messages from the bot any more."""


@dataclass(frozen=True)
class Target:
    channel_id: int | None = None
    user_id: int | None = None

    def __str__(self) -> str:
        return f"channel {self.channel_id}" if self.channel_id else f"user {self.user_id}"


class PostTransport(Protocol):
    description: str

    async def send(self, target: Target, payload: dict[str, Any], name: str, left: int = 1) -> None:
        """Send one message; `name` is unique per message and the same when it is retried.

        `left` counts the post's messages still to go, this one included: a transport that
        paces posts against each other lets the longest go first, since a channel takes
        only 5 messages per 5 seconds and a long post started late would finish last.
        """
        ...

    async def close(self) -> None: ...


class FilePosts:
    """Writes each message as a JSON file: what would have been sent, for a bot with no token.

    Named from the message's `name`, so sending it again rewrites the file; files appear
    whole (written aside, then renamed).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"files in {folder}"

    async def send(self, target: Target, payload: dict[str, Any], name: str, left: int = 1) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{re.sub(r'[^A-Za-z0-9.-]', '-', name)}.json"
        partial = path.with_suffix(".json.part")
        record = {"channel_id": target.channel_id, "user_id": target.user_id, "message": payload}
        partial.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, path)

    async def close(self) -> None:
        return None


# Codes for a target that will never work: unknown channel, missing access, missing
# permissions, cannot send messages to this user.
GONE_CODES = {10003, 50001, 50013, 50007}


class RestPosts:
    """Messages through discord.py's HTTP client, which keeps to Discord's per-channel
    buckets and retries 429s and 5xx itself; this adds a global pace and a nonce that
    Discord enforces, so a retried message is not posted twice. The pace serves the post
    with the most messages left first: its channel's windows are what the whole fan-out
    waits for at the end, while short posts fit in anywhere."""

    def __init__(self, http: HTTPClient, rate: float = POSTS_PER_SECOND) -> None:
        self._http = http
        self._pace = Pace(rate)
        self._dm_channels: dict[int, int] = {}
        self.description = "Discord"

    async def _channel(self, target: Target, left: int) -> int:
        if target.channel_id is not None:
            return target.channel_id
        assert target.user_id is not None
        if target.user_id not in self._dm_channels:
            await self._pace.wait(-left)
            channel = await self._http.start_private_message(target.user_id)
            self._dm_channels[target.user_id] = int(channel["id"])
        return self._dm_channels[target.user_id]

    async def send(self, target: Target, payload: dict[str, Any], name: str, left: int = 1) -> None:
        nonce = hashlib.sha256(name.encode()).hexdigest()[:25]
        try:
            channel_id = await self._channel(target, left)
            await self._pace.wait(-left)
            route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
            await self._http.request(route, json=payload | {"nonce": nonce, "enforce_nonce": True})
        except (discord.NotFound, discord.Forbidden) as err:
            if err.code in GONE_CODES or err.status == 404:
                raise Gone(f"{target}: {err.status} {err.text or err}") from None
            raise PermanentFailure(f"{target}: {err.status} {err.text}") from None
        except discord.HTTPException as err:
            if err.status == 429 or err.status >= 500:
                raise TemporaryFailure(f"{target}: {err.status} {err.text}") from None
            raise PermanentFailure(f"{target}: {err.status} {err.text}") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise TemporaryFailure(f"{target}: {type(err).__name__}: {err}") from None

    async def close(self) -> None:
        return None
