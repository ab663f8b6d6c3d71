"""A local stand-in of Discord's REST API, for driving the real discord.py client.

No machine here reaches Discord. discord.py sends every REST call (interaction callbacks
and webhooks too) to `discord.http.Route.BASE`, so pointing that at this aiohttp server
runs the real client end to end: its rate-limit buckets, its 429 handling, its payloads.
Gateway events (guilds, interactions) are fed through the client's connection state, which
is where its gateway would deliver them. The server keeps Discord's limits: a global
requests-per-second cap and 5 messages per 5 s per channel, with 429 and `retry_after`
beyond them, and the X-RateLimit headers discord.py reads to stay inside them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import discord
import discord.http
from aiohttp import web

EPOCH = "2026-11-25T08:00:00+00:00"
MANAGE_GUILD = 1 << 5
EVERYONE = (1 << 10) | (1 << 11) | (1 << 14)  # view channel, send messages, embed links


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with exactly Discord's content type: discord.py parses a body as JSON only when
    the header is `application/json` with no charset, and reads anything else as text."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@dataclass
class Recorded:
    method: str
    path: str
    json: Any
    at: float
    status: int = 200


class DiscordStandIn:
    def __init__(
        self,
        *,
        global_per_second: int = 50,
        channel_messages: int = 5,
        channel_window: float = 5.0,
        bot_user_id: int = 900,
        application_id: int = 901,
    ) -> None:
        self.global_per_second = global_per_second
        self.channel_messages = channel_messages
        self.channel_window = channel_window
        self.bot_user = {
            "id": str(bot_user_id),
            "username": "paperboy",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
        }
        self.application_id = application_id
        self.guilds: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, int] = {}  # channel -> guild (0 for DMs)
        self.denied: set[int] = set()
        self.closed_dms: set[int] = set()
        self._dm_of: dict[int, int] = {}  # DM channel -> user
        self.requests: list[Recorded] = []
        self.messages: dict[int, list[dict[str, Any]]] = {}
        self.interaction_responses: list[dict[str, Any]] = []
        self.followups: list[dict[str, Any]] = []
        self.answered: list[dict[str, Any]] = []  # messages interaction callbacks created
        self.commands: list[dict[str, Any]] = []
        self.rate_limited = 0
        self._failures: list[list[Any]] = []
        self._recent: deque[float] = deque()
        self._channel_sent: dict[int, deque[float]] = {}
        self._ids = itertools.count(10_000)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/api/v10"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def add_guild(
        self,
        guild_id: int,
        *,
        name: str = "Lab",
        owner_id: int = 1,
        channels: dict[int, str] | None = None,
        everyone: int = EVERYONE,
    ) -> dict[str, Any]:
        channels = channels or {}
        for channel in channels:
            self.channels[channel] = guild_id
        self.guilds[guild_id] = {
            "id": str(guild_id),
            "name": name,
            "owner_id": str(owner_id),
            "unavailable": False,
            "member_count": 2,
            "roles": [
                {
                    "id": str(guild_id),
                    "name": "@everyone",
                    "permissions": str(everyone),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "channels": [self._channel(c, guild_id, n) for c, n in channels.items()],
            "members": [
                {
                    "user": self.bot_user,
                    "roles": [],
                    "joined_at": EPOCH,
                    "deaf": False,
                    "mute": False,
                    "flags": 0,
                }
            ],
            "features": [],
            "emojis": [],
            "stickers": [],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "joined_at": EPOCH,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
        }
        return self.guilds[guild_id]

    @staticmethod
    def _channel(channel_id: int, guild_id: int, name: str) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
        }

    def delete_channel(self, channel_id: int) -> None:
        self.channels.pop(channel_id, None)

    def deny_send(self, channel_id: int) -> None:
        self.denied.add(channel_id)

    def close_dms(self, user_id: int) -> None:
        """The user accepts no DMs from the bot: messages answer 403, code 50007."""
        self.closed_dms.add(user_id)

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        *,
        status: int,
        times: int = 1,
        retry_after: float = 0.05,
        after: int = 0,
    ) -> None:
        """Answer the next `times` matching requests (after letting `after` through) with
        `status`: 429 with `retry_after`, or a server error."""
        self._failures.append([method, path_prefix, status, times, retry_after, after])

    # -- payloads a test feeds to the client as its gateway would ----------------------------

    def command_interaction(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        user_id: int,
        guild_id: int | None = None,
        channel_id: int | None = None,
        permissions: int = 0,
        kind: int = 2,
        resolved: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(next(self._ids)),
            "name": name,
            "type": 1,
            "options": options or [],
        }
        if resolved:
            data["resolved"] = resolved
        return self._interaction(kind, data, user_id, guild_id, channel_id, permissions)

    def component_interaction(
        self,
        custom_id: str,
        *,
        message: dict[str, Any],
        user_id: int,
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        payload = self._interaction(
            3, {"custom_id": custom_id, "component_type": 2}, user_id, guild_id, channel_id, 0
        )
        payload["message"] = message
        return payload

    def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        user_id: int,
        guild_id: int | None,
        channel_id: int | None,
        permissions: int,
    ) -> dict[str, Any]:
        user = {
            "id": str(user_id),
            "username": f"user{user_id}",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
        }
        payload: dict[str, Any] = {
            "id": str(next(self._ids)),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": f"token-{next(self._ids)}",
            "version": 1,
            "locale": "en-US",
            "app_permissions": str(EVERYONE),
            "entitlements": [],
            "attachment_size_limit": 10 * 2**20,
            "authorizing_integration_owners": {"0": str(guild_id or 0)},
            "context": 0 if guild_id else 1,
        }
        channel = channel_id or next(iter(self.channels), 1)
        payload["channel_id"] = str(channel)
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = "en-US"
            payload["channel"] = self._channel(channel, guild_id, "general")
            payload["member"] = {
                "user": user,
                "roles": [],
                "joined_at": EPOCH,
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": str(permissions),
            }
        else:
            payload["user"] = user
            payload["channel"] = {"id": str(channel), "type": 1}
        return payload

    # -- the REST API ------------------------------------------------------------------------

    def _limited(self, request: web.Request) -> web.Response | None:
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1:
            self._recent.popleft()
        if len(self._recent) >= self.global_per_second:
            return self._too_many(1 - (now - self._recent[0]), scope="global")
        self._recent.append(now)
        return None

    def _too_many(self, retry_after: float, scope: str = "user") -> web.Response:
        self.rate_limited += 1
        body = {
            "message": "You are being rate limited.",
            "retry_after": round(retry_after, 3),
            "global": scope == "global",
            "code": 0,
        }
        # discord.py takes a 429 without Discord's `Via` header for a Cloudflare ban and
        # gives up instead of waiting: real Discord always sends it.
        headers = {
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Scope": scope,
            "Via": "1.1 google",
        }
        if scope == "global":
            headers["X-RateLimit-Global"] = "true"
        return _json(body, status=429, headers=headers)

    def _injected(self, method: str, path: str) -> web.Response | None:
        for failure in self._failures:
            want, prefix, status, times, retry_after, after = failure
            if times <= 0 or want != method or not path.startswith(prefix):
                continue
            if after > 0:
                failure[5] -= 1
                return None
            failure[3] -= 1
            if status == 429:
                return self._too_many(retry_after)
            return _json({"message": "Server Error", "code": 0}, status=status)
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body = (
            await request.json()
            if request.can_read_body and request.content_type == ("application/json")
            else None
        )
        record = Recorded(request.method, path, body, time.monotonic())
        self.requests.append(record)
        response = self._limited(request) or self._injected(request.method, path)
        if response is None:
            response = await self._route(request.method, path, body)
        record.status = response.status
        return response

    async def _route(self, method: str, path: str, body: Any) -> web.Response:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return _json(self.bot_user)
        if path in ("/oauth2/applications/@me", "/applications/@me"):
            return _json(self._application())
        if method == "POST" and path == "/users/@me/channels":
            channel = next(self._ids)
            self.channels[channel] = 0
            self._dm_of[channel] = int(body["recipient_id"])
            return _json(
                {
                    "id": str(channel),
                    "type": 1,
                    "recipients": [
                        {
                            "id": str(body["recipient_id"]),
                            "username": "someone",
                            "discriminator": "0",
                            "avatar": None,
                        }
                    ],
                }
            )
        if parts[0] == "channels" and parts[-1] == "messages" and method == "POST":
            return self._create_message(int(parts[1]), body)
        if parts[0] == "interactions" and parts[-1] == "callback":
            self.interaction_responses.append(
                {"interaction_id": int(parts[1]), "token": parts[2], **body}
            )
            message = self._message(0, body.get("data") or {})
            self.answered.append(message)
            return _json(
                {
                    "interaction": {
                        "id": parts[1],
                        "type": 2,
                        "response_message_id": message["id"],
                        "response_message_ephemeral": True,
                    },
                    "resource": {"type": body["type"], "message": message},
                }
            )
        if parts[0] == "webhooks":
            self.followups.append({"method": method, "path": path, **(body or {})})
            return _json(self._message(0, body or {}))
        if parts[0] == "applications" and parts[-1] == "commands" and method == "PUT":
            self.commands = [
                {
                    **c,
                    "id": str(next(self._ids)),
                    "application_id": str(self.application_id),
                    "version": "1",
                    "default_member_permissions": c.get("default_member_permissions"),
                }
                for c in body
            ]
            return _json(self.commands)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _application(self) -> dict[str, Any]:
        return {
            "id": str(self.application_id),
            "name": "paperboy",
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": self.bot_user,
            "team": None,
            "summary": "",
            "rpc_origins": [],
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "approximate_guild_count": len(self.guilds),
        }

    def _create_message(self, channel: int, body: dict[str, Any]) -> web.Response:
        if channel not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        if channel in self.denied:
            return _json({"message": "Missing Permissions", "code": 50013}, status=403)
        if self._dm_of.get(channel) in self.closed_dms:
            return _json(
                {"message": "Cannot send messages to this user", "code": 50007}, status=403
            )
        now = time.monotonic()
        sent = self._channel_sent.setdefault(channel, deque())
        while sent and now - sent[0] >= self.channel_window:
            sent.popleft()
        if len(sent) >= self.channel_messages:
            return self._too_many(self.channel_window - (now - sent[0]))
        sent.append(now)
        self.messages.setdefault(channel, []).append(body)
        reset_after = self.channel_window - (now - sent[0])
        headers = {
            "X-RateLimit-Limit": str(self.channel_messages),
            "X-RateLimit-Remaining": str(self.channel_messages - len(sent)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"channel-{channel}",
        }
        return _json(self._message(channel, body), headers=headers)

    def _message(self, channel: int, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(next(self._ids)),
            "channel_id": str(channel),
            "type": 0,
            "author": self.bot_user,
            "content": body.get("content", ""),
            "embeds": body.get("embeds", []),
            "components": body.get("components", []),
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": EPOCH,
            "edited_timestamp": None,
            "flags": body.get("flags", 0),
        }


@asynccontextmanager
async def running(bot: discord.Client, standin: DiscordStandIn) -> AsyncIterator[discord.Client]:
    """The bot logged in against the stand-in, its guilds delivered as the gateway would."""
    original = discord.http.Route.BASE
    discord.http.Route.BASE = standin.base_url
    try:
        async with bot:
            await bot.login("test-token")
            for guild in standin.guilds.values():
                bot._connection.parse_guild_create(guild)
            yield bot
    finally:
        discord.http.Route.BASE = original


async def deliver(bot: discord.Client, payload: dict[str, Any], settle: float = 0.2) -> None:
    """An INTERACTION_CREATE as the gateway delivers it; waits for the command to finish."""
    before = len(asyncio.all_tasks())
    bot._connection.parse_interaction_create(payload)
    deadline = time.monotonic() + 5
    await asyncio.sleep(0)
    while len(asyncio.all_tasks()) > before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(settle / 10)
