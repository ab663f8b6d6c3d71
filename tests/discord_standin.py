"""A local stand-in of Discord (REST API v10 and gateway), for driving the real discord.py client.

No machine here reaches Discord. discord.py sends every REST call (interaction callbacks and
webhooks too) to `discord.http.Route.BASE`, and a plain `Client` opens its gateway at
`DiscordWebSocket.DEFAULT_GATEWAY` (only the auto-sharded client asks `GET /gateway/bot`), so
pointing both at this aiohttp server runs the real client end to end: login, IDENTIFY, READY
and GUILD_CREATE, `on_ready`, slash commands arriving as INTERACTION_CREATE, its answers, its
rate-limit buckets and its 429 handling. `running(bot, standin)` does the pointing.

Every request body is checked against Discord's own OpenAPI schema and the documented limits
it leaves out (`tests/discord_spec.py`): what Discord would refuse gets its 400, code 50035,
with the schema's complaint in Discord's error shape, so a payload bug fails a test here.
Interactions keep Discord's clock (`clock`, injectable): the first answer within 3 s, the
token's follow-ups and edits within 15 minutes. `enforce_nonce` is honoured, and a test can
make the stand-in lose its answer to a message it created (`drop_answers`), to test that a
retry does not post twice. The gateway wants the bot's token and regular heartbeats.

The server keeps Discord's limits: a global requests-per-second cap (interaction callbacks and
their webhooks are exempt, as on Discord) and a fixed window of 5 messages per 5 s per channel,
with the X-RateLimit headers discord.py reads to stay inside them and a 429 with `retry_after`
beyond them. Errors carry Discord's JSON codes (10003 Unknown Channel, 50013 Missing
Permissions, ...), so the client raises the same exceptions it would in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import discord
import discord.http
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket

from tests import discord_spec as spec

log = logging.getLogger(__name__)

# The tasks serving the stand-ins' connections, which `deliver` must not wait for.
_SERVING: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

JSON = dict[str, Any]
ClientT = TypeVar("ClientT", bound=discord.Client)

EPOCH = "2026-11-25T08:00:00+00:00"
DISCORD_EPOCH_MS = 1_420_070_400_000
MANAGE_GUILD = 1 << 5
EVERYONE = (1 << 10) | (1 << 11) | (1 << 14)  # view channel, send messages, embed links
# Intents a bot must switch on in the developer portal: members, presences, message content.
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)
GUILD_MEMBERS_INTENT = 1 << 1
FIRST_ANSWER = 3.0  # seconds Discord waits for an interaction's first answer
TOKEN_LIFE = 15 * 60.0  # seconds an interaction token takes follow-ups and edits
NONCE_WINDOW = 5 * 60.0  # seconds Discord remembers an enforced nonce
HEARTBEAT_GRACE = 0.5  # of an interval: how late a heartbeat may come before the close
EPHEMERAL, LOADING = 1 << 6, 1 << 7
MESSAGE_BUCKET = "80c17d2f203122d936070c88c8d10f33"  # one hash, told apart by channel id

# Gateway opcodes.
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION = 6, 7, 8, 9
HELLO, HEARTBEAT_ACK = 10, 11


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with exactly Discord's content type: discord.py parses a body as JSON only when
    the header is `application/json` with no charset, and reads anything else as text."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Discord's error body: discord.py copies `code` and `message` onto the exception."""
    return _json({"message": message, "code": code}, status=status, headers=headers)


def _invalid(problem: spec.Problem, headers: dict[str, str] | None = None) -> web.Response:
    """Discord's 400 for a body its schema or its limits refuse (code 50035)."""
    return _json(spec.errors_body(problem), status=400, headers=headers)


def _no_content() -> web.Response:
    return web.Response(status=204)


def _serving() -> None:
    task = asyncio.current_task()
    if task is not None:
        _SERVING.add(task)


def _serves(task: asyncio.Task[Any]) -> bool:
    """A task of the stand-in's server: a request handler, or the task aiohttp keeps per
    keep-alive connection (its coroutine is `RequestHandler.start`)."""
    qualname = getattr(task.get_coro(), "__qualname__", "")
    return task in _SERVING or qualname.startswith("RequestHandler.")


def _waits(task: asyncio.Task[Any]) -> bool:
    """A view's timeout timer, which discord.py starts for every message sent with a view:
    it sleeps for minutes and is no part of the command."""
    return "timeout_task_impl" in getattr(task.get_coro(), "__qualname__", "")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


class _Refused(Exception):
    """Raised by a route handler deep in a check: the answer to send instead."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class Recorded:
    """One REST request as the stand-in saw it, for tests to assert on what the client sent."""

    method: str
    path: str
    json: Any  # the JSON body (the `payload_json` part of a multipart body), or None
    at: float  # time.monotonic() on arrival
    status: int = 200  # what the stand-in answered
    query: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # file names of a multipart upload


@dataclass
class _Call:
    """What a route handler needs: the request's parts and the route's captured ids."""

    method: str
    path: str
    body: Any
    query: dict[str, str]
    args: tuple[str, ...]
    files: list[str]


@dataclass
class _Window:
    """A channel's fixed rate-limit window: Discord refills the whole bucket at its end."""

    ends: float
    used: int = 0


@dataclass
class _Issued:
    """An interaction the stand-in built, so its callback and webhooks can be checked."""

    payload: JSON
    at: float  # the stand-in's clock when it was created
    responded: int | None = None  # the callback type, once acknowledged
    original: JSON | None = None  # the message the callback created
    followups: dict[int, JSON] = field(default_factory=dict)
    answered: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Session:
    """A gateway session: survives its connection so the client can RESUME it."""

    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    sent: list[JSON] = field(default_factory=list)  # every dispatch, to replay on RESUME
    ws: web.WebSocketResponse | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


Handler = Callable[[_Call], web.Response]
Check = Callable[[Any], spec.Problem | None]

# Where each checked route's body schema lives in Discord's document.
OPERATIONS = {
    "create_message": ("/channels/{channel_id}/messages", "post"),
    "update_message": ("/channels/{channel_id}/messages/{message_id}", "patch"),
}


def _schema_check(path: str, method: str) -> Check:
    validator = spec.validator(path, method)
    return lambda body: spec.schema_problem(validator, body)


def _message_check(name: str) -> Check:
    """A message body: the schema (an operation's, or a named component), then the limits."""
    operation = OPERATIONS.get(name)
    validator = spec.validator(*operation) if operation else spec.component(name)

    def check(body: Any) -> spec.Problem | None:
        return spec.schema_problem(validator, body) or spec.message_problem(body)

    return check


def _commands_check(*, many: bool) -> Check:
    """Command sync: the bulk overwrite's (a list) or one command's schema, then the
    documented command limits, command by command."""
    path = "/applications/{application_id}/commands"
    validator = spec.validator(path, "put" if many else "post")

    def check(body: Any) -> spec.Problem | None:
        found = spec.schema_problem(validator, body)
        if found or not isinstance(body, (list, dict)):
            return found
        listed = body if isinstance(body, list) else [body]
        for index, command in enumerate(listed):
            found = spec.command_problem(command, [index] if many else [])
            if found:
                return found
        return None

    return check


def shown(text: str) -> str:
    """What Discord displays: a backslash before punctuation shows that character alone."""
    return re.sub(r"\\([^A-Za-z0-9\s])", r"\1", text)


class DiscordStandIn:
    """Discord's REST API v10 and gateway on 127.0.0.1, recording what the client does.

    What tests read:
      requests              every REST request (`Recorded`), answered status included
      unknown               the requests no route matched (answered 404); should stay empty
      messages              channel id -> JSON bodies of the messages created, as posted
      interaction_responses {"interaction_id", "token", "type", "data"} per callback
      answered              message objects the callbacks created (or updated, type 7), and
                            the follow-ups (a deferred command's answer)
      followups             {"method", "path", **body} per follow-up (POST /webhooks/{app}/{token})
      edits                 {"method", "path", "message_id", **body} per PATCH of a response
      commands              global application commands, as bulk-overwritten (ids assigned)
      guild_commands        guild id -> that guild's application commands
      rate_limited          how many 429s were answered
      identified            the IDENTIFY payloads received
      gateway_queries       query strings of the gateway connections (v, encoding, compress)
    """

    def __init__(
        self,
        *,
        global_per_second: int = 50,
        channel_messages: int = 5,
        channel_window: float = 5.0,
        bot_user_id: int = 900,
        application_id: int = 901,
        privileged_intents: int = 0,
        heartbeat_interval: int = 41_250,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`privileged_intents`: the privileged intents switched on for the bot in the
        developer portal; asking for others closes the gateway with 4014, as Discord does.
        `clock` (seconds) times interactions and nonces: a test moves it instead of waiting.
        `heartbeat_interval` (ms): a session silent for longer (and a grace) is closed."""
        self.global_per_second = global_per_second
        self.channel_messages = channel_messages
        self.channel_window = channel_window
        self.application_id = application_id
        self.privileged_intents = privileged_intents
        self.heartbeat_interval = heartbeat_interval
        self.clock = clock
        self.bot_user: JSON = {
            "id": str(bot_user_id),
            "username": "paperboy",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
            "email": None,
        }
        self.users: dict[int, JSON] = {bot_user_id: self.bot_user}
        self.guilds: dict[int, JSON] = {}  # guild id -> its GUILD_CREATE payload
        self.channels: dict[int, int] = {}  # channel -> guild (0 for DMs)
        self.denied: set[int] = set()
        self.hidden: set[int] = set()
        self.refused: list[JSON] = []  # the 400 bodies answered for invalid request bodies
        self.heartbeat_closes = 0  # sessions closed for a missed heartbeat
        self.closed_dms: set[int] = set()
        self.reachable: set[int] = set()  # users sharing a server with the bot (DMs go)
        self.requests: list[Recorded] = []
        self.unknown: list[Recorded] = []
        self.messages: dict[int, list[JSON]] = {}
        self.interaction_responses: list[JSON] = []
        self.answered: list[JSON] = []
        self.followups: list[JSON] = []
        self.edits: list[JSON] = []
        self.commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}
        self.rate_limited = 0
        self.identified: list[JSON] = []
        self.token: str | None = None  # the one bot token accepted; None: any
        self.gateway_queries: list[dict[str, str]] = []
        self.base_url = ""
        self.gateway_url = ""
        self._channel_payloads: dict[int, JSON] = {}
        self._dm_of: dict[int, int] = {}  # DM channel -> user
        self._dm_with: dict[int, int] = {}  # user -> DM channel
        self._stored: dict[int, JSON] = {}  # message id -> message object
        self._interactions: dict[int, _Issued] = {}
        self._tokens: dict[str, int] = {}  # interaction token -> interaction id
        self._command_ids: dict[tuple[int, str, int], int] = {}  # (guild or 0, name, type) -> id
        self._failures: list[list[Any]] = []
        self._drops: list[str] = []  # how to lose the next answers to a created message
        self._nonces: dict[tuple[int, str], tuple[float, JSON]] = {}  # (channel, nonce)
        self._recent: list[float] = []
        self._windows: dict[int, _Window] = {}
        self._sessions: dict[str, _Session] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._ready = asyncio.Event()
        self._last_id = 0
        self._runner: web.AppRunner | None = None
        self._routes: list[tuple[str, re.Pattern[str], Handler, Check | None]] = []
        self._add_routes()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1 (tests run in parallel and never clash)."""
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        # A short shutdown: close() ends the websockets itself, nothing is left to wait for.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/api/v10"
        self.gateway_url = f"ws://{host}:{port}/gateway"

    async def close(self) -> None:
        """Close the gateway connections (1001, going away) and stop listening."""
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"stand-in closing")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the world the client sees ------------------------------------------------------------

    def add_guild(
        self,
        guild_id: int,
        *,
        name: str = "Lab",
        owner_id: int = 1,
        channels: dict[int, str] | None = None,
        everyone: int = EVERYONE,
    ) -> JSON:
        """A server the bot is in, with text channels (id -> name); sent to the client as a
        GUILD_CREATE after READY. `everyone` is the @everyone role's permission bits.
        Returns the GUILD_CREATE payload (kept in `guilds`, so tests can change it)."""
        channels = channels or {}
        self.guilds[guild_id] = {
            "id": str(guild_id),
            "name": name,
            "icon": None,
            "owner_id": str(owner_id),
            "unavailable": False,
            "member_count": 1,
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
            "channels": [],
            "members": [self._member(self.bot_user)],
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
            "system_channel_id": None,
        }
        for channel, channel_name in channels.items():
            self.add_channel(guild_id, channel, channel_name)
        return self.guilds[guild_id]

    def add_channel(self, guild_id: int, channel_id: int, name: str) -> JSON:
        """Another text channel in a guild already added (before the client connects)."""
        guild = self.guilds[guild_id]
        payload = {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": name,
            "position": len(guild["channels"]),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        guild["channels"].append(payload)
        self.channels[channel_id] = guild_id
        self._channel_payloads[channel_id] = payload
        return payload

    def add_member(
        self, guild_id: int, user_id: int, *, name: str | None = None, roles: Sequence[int] = ()
    ) -> JSON:
        """A person in a guild: interactions from them carry this member; the client gets
        them in GUILD_CREATE only with the members intent, as on Discord."""
        user = self._user(user_id, name)
        self.reachable.add(user_id)
        member = self._member(user, roles)
        guild = self.guilds[guild_id]
        guild["members"] = [m for m in guild["members"] if m["user"]["id"] != str(user_id)]
        guild["members"].append(member)
        guild["member_count"] = len(guild["members"])
        return member

    def delete_channel(self, channel_id: int) -> None:
        """The channel is gone: later requests on it answer 404, code 10003. The connected
        client is not told; `dispatch("CHANNEL_DELETE", ...)` does that when a test wants it."""
        guild_id = self.channels.pop(channel_id, None)
        self._channel_payloads.pop(channel_id, None)
        if guild_id:
            guild = self.guilds[guild_id]
            guild["channels"] = [c for c in guild["channels"] if c["id"] != str(channel_id)]

    def deny_send(self, channel_id: int) -> None:
        """The bot lost Send Messages there: posting answers 403, code 50013."""
        self.denied.add(channel_id)

    def close_dms(self, user_id: int) -> None:
        """The user accepts no DMs from the bot: messages answer 403, code 50007."""
        self.closed_dms.add(user_id)

    def add_user(self, user_id: int, *, name: str | None = None) -> JSON:
        """A Discord account that shares no server with the bot: a DM channel opens, but
        messages to it answer 403, code 50007, as Discord does. (An id never added at all
        is Unknown User, 10013.)"""
        return self._user(user_id, name)

    def hide_channel(self, channel_id: int) -> None:
        """The bot lost View Channel there: reading or posting answers 403, code 50001."""
        self.hidden.add(channel_id)

    def drop_answers(self, how: str = "close", *, times: int = 1) -> None:
        """Create the next `times` messages (channel posts) but lose the answer: "close"
        drops the connection, "500" answers a server error. The client cannot know the
        message exists; only its nonce keeps a retry from posting it twice."""
        if how not in ("close", "500"):
            raise ValueError(f"drop_answers: how is 'close' or '500', not {how!r}")
        self._drops.extend([how] * times)

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        *,
        status: int,
        times: int = 1,
        retry_after: float = 0.05,
        after: int = 0,
        scope: str = "user",
    ) -> None:
        """Answer the next `times` requests matching `method` ("*" for any) and the path
        prefix (after letting `after` through) with `status`: 429 with `retry_after` and
        `scope` (user, shared or global), or a server error (500/502/503...)."""
        self._failures.append([method, path_prefix, status, times, retry_after, after, scope])

    # -- payloads a test feeds to the client over the gateway -------------------------------

    def command_interaction(
        self,
        name: str,
        options: list[JSON] | None = None,
        *,
        user_id: int,
        guild_id: int | None = None,
        channel_id: int | None = None,
        permissions: int = 0,
        kind: int = 2,
        resolved: JSON | None = None,
    ) -> JSON:
        """An INTERACTION_CREATE payload for a slash command (kind 2) or its autocomplete
        (kind 4). Subcommands are options of type 1 holding their own options, as Discord
        nests them. `permissions` is the member's permission bits in the channel. Channel
        (type 7) and user (type 6) options the stand-in knows get their `resolved` data;
        `resolved` adds to or overrides it. The command's id and `guild_id` are the ones
        the last sync gave it, so a guild command is found in the tree."""
        data: JSON = {"id": "", "name": name, "type": 1}
        command_guild = 0
        if guild_id is not None and any(
            c["name"] == name for c in self.guild_commands.get(guild_id, [])
        ):
            command_guild = guild_id
            data["guild_id"] = str(guild_id)
        data["id"] = str(self._command_id(command_guild, name, 1))
        if options:
            data["options"] = options
        found = self._resolve(options or [], guild_id)
        for key, values in (resolved or {}).items():
            found.setdefault(key, {}).update(values)
        if found:
            data["resolved"] = found
        return self._interaction(kind, data, user_id, guild_id, channel_id, permissions)

    def component_interaction(
        self,
        custom_id: str,
        *,
        message: JSON,
        user_id: int,
        guild_id: int | None = None,
        channel_id: int | None = None,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> JSON:
        """An INTERACTION_CREATE payload for a click on a button (component type 2) of
        `message` (a message object, e.g. from `answered`), or a select (with `values`)."""
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        if channel_id is None:
            channel_id = int(message["channel_id"]) or None
        payload = self._interaction(3, data, user_id, guild_id, channel_id, 0)
        payload["message"] = message
        return payload

    def _interaction(
        self,
        kind: int,
        data: JSON,
        user_id: int,
        guild_id: int | None,
        channel_id: int | None,
        permissions: int,
    ) -> JSON:
        user = self._user(user_id)
        self.reachable.add(user_id)  # they use the bot: in its server, or in their DMs
        interaction_id = self._next_id()
        token = f"aW50ZXJhY3Rpb246{interaction_id}:{secrets.token_urlsafe(24)}"
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 2**20,
            "authorizing_integration_owners": {"0": str(guild_id or 0)},
            "context": 0 if guild_id else 1,
        }
        if guild_id is not None:
            guild = self.guilds.get(guild_id)
            if channel_id is None:
                channels = guild["channels"] if guild else []
                channel_id = int(channels[0]["id"]) if channels else self._next_id()
            channel = self._channel_payloads.get(channel_id) or {
                "id": str(channel_id),
                "type": 0,
                "guild_id": str(guild_id),
                "name": "unknown",
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
            }
            member = next(
                (m for m in (guild or {}).get("members", []) if m["user"]["id"] == str(user_id)),
                None,
            ) or self._member(user)
            everyone = int(guild["roles"][0]["permissions"]) if guild else EVERYONE
            payload |= {
                "guild_id": str(guild_id),
                "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "channel": {**channel, "permissions": str(permissions)},
                "member": {**member, "permissions": str(permissions)},
                "app_permissions": str(everyone),
            }
        else:
            if channel_id is None:
                channel_id = self._open_dm(user_id)
            payload |= {
                "user": user,
                "channel": {"id": str(channel_id), "type": 1, "recipients": [user], "flags": 0},
                "app_permissions": str(EVERYONE),
            }
        payload["channel_id"] = str(channel_id)
        self._interactions[interaction_id] = _Issued(payload, at=self.clock())
        self._tokens[token] = interaction_id
        return payload

    def _resolve(self, options: list[JSON], guild_id: int | None) -> JSON:
        """The `resolved` block Discord adds for channel and user options it knows."""
        found: JSON = {}
        for option in options:
            if option.get("type") in (1, 2):
                for key, values in self._resolve(option.get("options", []), guild_id).items():
                    found.setdefault(key, {}).update(values)
            elif option.get("type") == 7 and int(option["value"]) in self._channel_payloads:
                channel = self._channel_payloads[int(option["value"])]
                permissions = {"permissions": str(EVERYONE)}
                found.setdefault("channels", {})[str(option["value"])] = channel | permissions
            elif option.get("type") == 6 and int(option["value"]) in self.users:
                user_id = int(option["value"])
                found.setdefault("users", {})[str(user_id)] = self.users[user_id]
                member = next(
                    (
                        m
                        for m in self.guilds.get(guild_id or 0, {}).get("members", [])
                        if m["user"]["id"] == str(user_id)
                    ),
                    None,
                )
                if member is not None:
                    partial = {k: v for k, v in member.items() if k != "user"}
                    found.setdefault("members", {})[str(user_id)] = partial
        return found

    # -- the gateway ----------------------------------------------------------------------

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send a gateway DISPATCH (op 0, next sequence number) to every connected session,
        as Discord delivers events; kept for replay if the client RESUMEs."""
        sessions = [s for s in self._sessions.values() if s.ws is not None]
        if not sessions:
            raise RuntimeError(f"no client is connected to receive {event}")
        for session in sessions:
            await self._send_event(session, event, data)

    async def interact(self, payload: JSON, *, timeout: float = 5.0) -> JSON:
        """Deliver an interaction payload over the gateway and wait for the client's callback;
        returns it (an `interaction_responses` entry). Follow-ups may come after it."""
        issued = self._interactions[int(payload["id"])]
        await self.dispatch("INTERACTION_CREATE", payload)
        await asyncio.wait_for(issued.answered.wait(), timeout)
        return next(
            r for r in self.interaction_responses if r["interaction_id"] == int(payload["id"])
        )

    async def request_reconnect(self) -> None:
        """Send RECONNECT (op 7): the client drops the connection and RESUMEs its session."""
        for session in self._sessions.values():
            if session.ws is not None:
                await self._send(session, {"op": RECONNECT, "d": None})

    async def wait_ready(self, timeout: float = 5) -> None:
        """Until a client has IDENTIFYed and been sent READY and its GUILD_CREATEs."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until `condition()` holds (polled every 10 ms): for what the client does after
        answering, e.g. a follow-up sent once a deferred command finishes."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        _serving()
        ws = web.WebSocketResponse(timeout=2.0)  # how long close() waits for the client
        await ws.prepare(request)
        self._sockets.add(ws)
        self.gateway_queries.append(dict(request.query))
        session: _Session | None = None
        lock = asyncio.Lock()
        try:
            # Plain JSON text frames: discord.py asks for zlib-stream but reads text as is.
            await ws.send_str(
                json.dumps(
                    {
                        "op": HELLO,
                        "d": {"heartbeat_interval": self.heartbeat_interval},
                        "s": None,
                        "t": None,
                    }
                )
            )
            # Discord closes a session whose heartbeats stop: none within the interval
            # (and a grace for the network) ends it.
            allowed = self.heartbeat_interval / 1000 * (1 + HEARTBEAT_GRACE)
            loop = asyncio.get_running_loop()
            beat_due = loop.time() + allowed
            while not ws.closed:
                try:
                    message = await ws.receive(timeout=max(0.0, beat_due - loop.time()))
                except TimeoutError:
                    self.heartbeat_closes += 1
                    await ws.close(code=4009, message=b"Session timed out.")
                    break
                if message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    break
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                op, data = frame.get("op"), frame.get("d")
                if op == HEARTBEAT:
                    beat_due = loop.time() + allowed
                    async with lock:
                        await ws.send_str(json.dumps({"op": HEARTBEAT_ACK, "d": None}))
                elif op == IDENTIFY:
                    session = await self._identify(ws, lock, data)
                elif op == RESUME:
                    session = await self._resume(ws, lock, data)
                elif op == REQUEST_MEMBERS and session is not None:
                    await self._send_members(session, data)
                elif op not in (PRESENCE, VOICE_STATE):
                    await ws.close(code=4001, message=b"Unknown opcode.")
        finally:
            self._sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
                # The client closing with 1000/1001 ends its session; any other code (discord.py
                # uses 4000 to reconnect) leaves it resumable.
                if ws.close_code in (1000, 1001):
                    self._sessions.pop(session.id, None)
        return ws

    async def _identify(
        self, ws: web.WebSocketResponse, lock: asyncio.Lock, data: JSON
    ) -> _Session | None:
        self.identified.append(data)
        intents = data.get("intents")
        if not data.get("token") or self.token not in (None, data["token"]):
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        if intents is None:
            await ws.close(code=4013, message=b"Invalid intent(s).")
            return None
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        shard = data.get("shard")
        session = _Session(secrets.token_hex(16), intents, shard, ws=ws, lock=lock)
        self._sessions[session.id] = session
        count = shard[1] if shard else 1
        guilds = [g for g in self.guilds if not shard or (g >> 22) % count == shard[0]]
        ready: JSON = {
            "v": 10,
            "user": self.bot_user,
            "user_settings": {},
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "_trace": ["discord-standin"],
        }
        if shard:
            ready["shard"] = shard
        await self._send_event(session, "READY", ready)
        for guild_id in guilds:
            guild = self.guilds[guild_id]
            if not intents & GUILD_MEMBERS_INTENT:
                bot = [m for m in guild["members"] if m["user"]["id"] == self.bot_user["id"]]
                guild = guild | {"members": bot}
            await self._send_event(session, "GUILD_CREATE", guild)
        self._ready.set()
        return session

    async def _resume(
        self, ws: web.WebSocketResponse, lock: asyncio.Lock, data: JSON
    ) -> _Session | None:
        session = self._sessions.get(data.get("session_id") or "")
        if session is None or not data.get("token") or self.token not in (None, data["token"]):
            async with lock:
                await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
            return None
        session.ws, session.lock = ws, lock
        seen = data.get("seq") or 0
        for frame in session.sent:
            if frame["s"] > seen:
                await self._send(session, frame)
        await self._send_event(session, "RESUMED", {"_trace": ["discord-standin"]})
        return session

    async def _send_members(self, session: _Session, data: JSON) -> None:
        guild = self.guilds.get(int(data["guild_id"]), {})
        members = guild.get("members", [])
        wanted = {str(u) for u in data.get("user_ids") or []}
        query = (data.get("query") or "").lower()
        if wanted:
            members = [m for m in members if m["user"]["id"] in wanted]
        elif query:
            members = [m for m in members if m["user"]["username"].lower().startswith(query)]
        chunk: JSON = {
            "guild_id": str(data["guild_id"]),
            "members": members[: data.get("limit") or None],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": sorted(wanted - {m["user"]["id"] for m in members}),
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self._send_event(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send_event(self, session: _Session, event: str, data: JSON) -> None:
        session.seq += 1
        frame = {"op": DISPATCH, "s": session.seq, "t": event, "d": data}
        session.sent.append(frame)
        await self._send(session, frame)

    async def _send(self, session: _Session, frame: JSON) -> None:
        ws = session.ws
        if ws is None or ws.closed:
            return
        async with session.lock:
            with contextlib.suppress(ConnectionError):
                await ws.send_str(json.dumps(frame))

    # -- the REST API: limits and injected failures -----------------------------------------

    def _limited(self, path: str) -> web.Response | None:
        """The global limit over a rolling second; interaction callbacks and their webhooks
        are exempt on Discord, so they are here."""
        if path.startswith(("/interactions/", "/webhooks/")):
            return None
        now = time.monotonic()
        self._recent = [t for t in self._recent if now - t < 1]
        if len(self._recent) >= self.global_per_second:
            return self._too_many(1 - (now - self._recent[0]), scope="global")
        self._recent.append(now)
        return None

    def _too_many(
        self, retry_after: float, scope: str = "user", headers: dict[str, str] | None = None
    ) -> web.Response:
        self.rate_limited += 1
        body = {
            "message": "You are being rate limited.",
            "retry_after": math.ceil(retry_after * 1000) / 1000,
            "global": scope == "global",
            "code": 0,
        }
        # discord.py takes a 429 without Discord's `Via` header for a Cloudflare ban and
        # gives up instead of waiting: real Discord always sends it.
        extra = {
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Scope": scope,
            "Via": "1.1 google",
            **(headers or {}),
        }
        if scope == "global":
            extra["X-RateLimit-Global"] = "true"
        return _json(body, status=429, headers=extra)

    def _injected(self, method: str, path: str) -> web.Response | None:
        for failure in self._failures:
            want, prefix, status, times, retry_after, after, scope = failure
            if times <= 0 or want not in ("*", method) or not path.startswith(prefix):
                continue
            if after > 0:
                failure[5] -= 1
                return None
            failure[3] -= 1
            if status == 429:
                return self._too_many(retry_after, scope)
            return _error(status, 0, f"{status}: Server Error")
        return None

    def _unauthorized(self, path: str, headers: Any) -> web.Response | None:
        """Bot routes need `Authorization: Bot <token>` (the `token` attribute's, when set);
        interaction callbacks and the webhooks of an interaction token need none (discord.py
        sends none there)."""
        if path.startswith(("/interactions/", "/webhooks/")) or path == "/gateway":
            return None
        given = str(headers.get("Authorization", ""))
        if not given.startswith("Bot ") or self.token not in (None, given.removeprefix("Bot ")):
            return _error(401, 0, "401: Unauthorized")
        return None

    def _bucket(self, channel: int, now: float, *, take: bool) -> tuple[float, dict[str, str]]:
        """A channel's message bucket: seconds to wait (0 when a message may go; it is
        counted when `take`) and the X-RateLimit headers describing the bucket after it."""
        window = self._windows.get(channel)
        if window is None or now >= window.ends:
            window = _Window(ends=now + self.channel_window)
            if take:
                self._windows[channel] = window
        wait = window.ends - now if window.used >= self.channel_messages else 0.0
        if take and not wait:
            window.used += 1
        # Rounded up to the millisecond: the client must never wake before the window ends.
        reset_after = math.ceil((window.ends - now) * 1000) / 1000
        headers = {
            "X-RateLimit-Limit": str(self.channel_messages),
            "X-RateLimit-Remaining": str(max(0, self.channel_messages - window.used)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": MESSAGE_BUCKET,
        }
        return wait, headers

    # -- the REST API: routing --------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        _serving()
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        record = Recorded(
            request.method, path, body, time.monotonic(), query=dict(request.query), files=files
        )
        self.requests.append(record)
        response = (
            self._limited(path)
            or self._injected(request.method, path)
            or self._unauthorized(path, request.headers)
        )
        handler: Handler | None = None
        if response is None:
            for method, pattern, handler, check in self._routes:
                match = pattern.fullmatch(path)
                if match and method == request.method:
                    call = _Call(request.method, path, body, record.query, match.groups(), files)
                    response = self._checked(call, handler, check)
                    break
            else:
                self.unknown.append(record)
                log.warning("discord stand-in: no route for %s %s", request.method, path)
                response = _error(404, 0, "404: Not Found")
        record.status = response.status
        if handler == self._create_message and response.status == 200 and self._drops:
            how = self._drops.pop(0)
            record.status = 0 if how == "close" else 500
            if how == "close" and request.transport is not None:
                request.transport.abort()  # the message exists; its answer never arrives
                raise asyncio.CancelledError
            return _error(500, 0, "500: Internal Server Error")
        return response

    def _checked(self, call: _Call, handler: Handler, check: Check | None) -> web.Response:
        """The route's answer, unless Discord's schema or limits refuse the body first."""
        problem = check(call.body) if check is not None and call.body is not None else None
        if problem is not None:
            refusal = _invalid(problem)
            self.refused.append(spec.errors_body(problem))
            log.warning("discord stand-in: refused %s %s: %s", call.method, call.path, problem)
            return refusal
        try:
            return handler(call)
        except _Refused as refused:
            return refused.response

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[str]]:
        """The JSON body, or for an upload the `payload_json` part and the file names."""
        if not request.can_read_body:
            return None, []
        if request.content_type == "application/json":
            return await request.json(), []
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            payload = form.get("payload_json")
            names = [v.filename for v in form.values() if isinstance(v, web.FileField)]
            return (json.loads(str(payload)) if payload is not None else None), names
        return None, []

    def _add_routes(self) -> None:
        snowflake, token = r"(\d+)", r"([^/]+)"
        channel, app = f"/channels/{snowflake}", f"/applications/{snowflake}"
        webhook = f"/webhooks/{snowflake}/{token}"
        create, update = _message_check("create_message"), _message_check("update_message")
        followup = _message_check("IncomingWebhookRequestPartial")
        edit = _message_check("IncomingWebhookUpdateRequestPartial")
        commands, command = _commands_check(many=True), _commands_check(many=False)
        dm = _schema_check("/users/@me/channels", "post")
        table: list[tuple[str, str, Handler, Check | None]] = [
            ("GET", "/users/@me", lambda c: _json(self.bot_user), None),
            ("GET", "/users/@me/guilds", self._my_guilds, None),
            ("GET", f"/users/{snowflake}", self._get_user, None),
            ("POST", "/users/@me/channels", self._create_dm, dm),
            ("GET", "/gateway", lambda c: _json({"url": self.gateway_url}), None),
            ("GET", "/gateway/bot", self._gateway_bot, None),
            ("GET", "/oauth2/applications/@me", lambda c: _json(self._application()), None),
            ("GET", "/applications/@me", lambda c: _json(self._application()), None),
            ("GET", channel, self._get_channel, None),
            ("POST", f"{channel}/typing", self._typing, None),
            ("POST", f"{channel}/messages", self._create_message, create),
            ("GET", f"{channel}/messages/{snowflake}", self._get_message, None),
            ("PATCH", f"{channel}/messages/{snowflake}", self._edit_message, update),
            ("DELETE", f"{channel}/messages/{snowflake}", self._delete_message, None),
            ("GET", f"/guilds/{snowflake}", self._get_guild, None),
            ("GET", f"/guilds/{snowflake}/channels", self._get_guild_channels, None),
            ("GET", f"/guilds/{snowflake}/members/{snowflake}", self._get_member, None),
            (
                "POST",
                f"/interactions/{snowflake}/{token}/callback",
                self._callback,
                spec.callback_problem,
            ),
            ("POST", webhook, self._followup, followup),
            ("GET", f"{webhook}/messages/(@original|\\d+)", self._get_response, None),
            ("PATCH", f"{webhook}/messages/(@original|\\d+)", self._edit_response, edit),
            ("DELETE", f"{webhook}/messages/(@original|\\d+)", self._delete_response, None),
            ("GET", f"{app}/commands", self._list_commands, None),
            ("PUT", f"{app}/commands", self._overwrite_commands, commands),
            ("POST", f"{app}/commands", self._upsert_command, command),
            ("GET", f"{app}/guilds/{snowflake}/commands", self._list_commands, None),
            ("PUT", f"{app}/guilds/{snowflake}/commands", self._overwrite_commands, commands),
            ("POST", f"{app}/guilds/{snowflake}/commands", self._upsert_command, command),
        ]
        self._routes = [(m, re.compile(p), h, c) for m, p, h, c in table]

    # -- the REST API: users, channels, messages -----------------------------------------------

    def _my_guilds(self, call: _Call) -> web.Response:
        """The servers the bot is in, as partial guilds."""
        partial = ("id", "name", "icon", "features")
        found = [
            {k: g[k] for k in partial} | {"owner": False, "permissions": str(EVERYONE)}
            for g in self.guilds.values()
        ]
        return _json(found)

    def _get_user(self, call: _Call) -> web.Response:
        user = self.users.get(int(call.args[0]))
        return _json(user) if user else _error(404, 10013, "Unknown User")

    def _create_dm(self, call: _Call) -> web.Response:
        """A DM channel with a known user (any, even one sharing no server: the refusal
        comes when a message is sent); an id no account has is Unknown User."""
        user_id = int(call.body["recipient_id"])
        if user_id not in self.users:
            return _error(404, 10013, "Unknown User")
        channel = self._open_dm(user_id)
        return _json(self._channel_payloads[channel])

    def _gateway_bot(self, call: _Call) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    def _get_channel(self, call: _Call) -> web.Response:
        if int(call.args[0]) in self.hidden:
            return _error(403, 50001, "Missing Access")
        channel = self._channel_payloads.get(int(call.args[0]))
        return _json(channel) if channel else _error(404, 10003, "Unknown Channel")

    def _typing(self, call: _Call) -> web.Response:
        if int(call.args[0]) not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        return _no_content()

    def _create_message(self, call: _Call) -> web.Response:
        """Every answer carries the channel's bucket headers, refusals included, as on
        Discord; a refused message does not use up the bucket. With `enforce_nonce`, a
        nonce seen in the channel within minutes answers the message it created then."""
        channel, now = int(call.args[0]), time.monotonic()
        body = call.body or {}
        refused = self._refusal(channel, body, call.files)
        if refused is not None:
            _, headers = self._bucket(channel, now, take=False)
            return _error(*refused, headers=headers)
        key = self._nonce_key(channel, body)
        if key is not None and key in self._nonces:
            _, headers = self._bucket(channel, now, take=False)
            return _json(self._nonces[key][1], headers=headers)
        wait, headers = self._bucket(channel, now, take=True)
        if wait:
            return self._too_many(wait, headers=headers)
        self.messages.setdefault(channel, []).append(body)
        message = self._message(channel, body, files=call.files)
        if key is not None:
            self._nonces[key] = (self.clock(), message)
        return _json(message, headers=headers)

    def _nonce_key(self, channel: int, body: JSON) -> tuple[int, str] | None:
        """The key an enforced nonce is remembered by; forgets those older than the window."""
        if not body.get("enforce_nonce") or body.get("nonce") is None:
            return None
        now = self.clock()
        self._nonces = {k: v for k, v in self._nonces.items() if now - v[0] < NONCE_WINDOW}
        return channel, str(body["nonce"])

    def _refusal(self, channel: int, body: JSON, files: list[str]) -> tuple[int, int, str] | None:
        """Why Discord would refuse this message: status, JSON code and message."""
        if channel not in self.channels:
            return 404, 10003, "Unknown Channel"
        if channel in self.hidden:
            return 403, 50001, "Missing Access"
        if channel in self.denied:
            return 403, 50013, "Missing Permissions"
        user = self._dm_of.get(channel)
        if user is not None and (user in self.closed_dms or user not in self.reachable):
            return 403, 50007, "Cannot send messages to this user"
        keys = ("content", "embeds", "components", "sticker_ids", "poll")
        if not files and not any(body.get(k) for k in keys):
            return 400, 50006, "Cannot send an empty message"
        return None

    def _get_message(self, call: _Call) -> web.Response:
        message = self._stored_message(call)
        return _json(message) if message else _error(404, 10008, "Unknown Message")

    def _edit_message(self, call: _Call) -> web.Response:
        message = self._stored_message(call)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        return _json(self._update(message, call.body or {}))

    def _delete_message(self, call: _Call) -> web.Response:
        message = self._stored_message(call)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        self._stored.pop(int(message["id"]))
        return _no_content()

    def _stored_message(self, call: _Call) -> JSON | None:
        channel, message_id = int(call.args[0]), int(call.args[1])
        if channel not in self.channels:
            return None
        message = self._stored.get(message_id)
        return message if message and message["channel_id"] == str(channel) else None

    def _get_guild(self, call: _Call) -> web.Response:
        guild = self.guilds.get(int(call.args[0]))
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        skip = ("channels", "members", "threads", "presences", "voice_states", "joined_at")
        return _json({k: v for k, v in guild.items() if k not in skip})

    def _get_guild_channels(self, call: _Call) -> web.Response:
        guild = self.guilds.get(int(call.args[0]))
        return _json(guild["channels"]) if guild else _error(404, 10004, "Unknown Guild")

    def _get_member(self, call: _Call) -> web.Response:
        guild = self.guilds.get(int(call.args[0]))
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        for member in guild["members"]:
            if member["user"]["id"] == call.args[1]:
                return _json(member)
        return _error(404, 10007, "Unknown Member")

    # -- the REST API: interactions -------------------------------------------------------------

    def _callback(self, call: _Call) -> web.Response:
        """The initial response. discord.py 2.7 always asks `?with_response=1` and reads the
        answer as an InteractionCallbackResponse (`interaction`, and a `resource` holding the
        message it created), so the 204 Discord sends without it would break the client."""
        interaction_id, token = int(call.args[0]), call.args[1]
        issued = self._interactions.get(interaction_id)
        if issued is None or issued.payload["token"] != token:
            return _error(404, 10062, "Unknown interaction")
        if self.clock() - issued.at > FIRST_ANSWER:  # Discord has already failed it
            return _error(404, 10062, "Unknown interaction")
        if issued.responded is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        body = call.body or {}
        kind, data = int(body["type"]), body.get("data") or {}
        issued.responded = kind
        self.interaction_responses.append(
            {"interaction_id": interaction_id, "token": token, **body}
        )
        channel = int(issued.payload["channel_id"])
        about: JSON = {"id": str(interaction_id), "type": issued.payload["type"]}
        resource: JSON = {"type": kind}
        if kind in (4, 5):  # a message now, or "thinking..." to be edited later
            message = self._message(channel, data, issued=issued, files=call.files)
            if kind == 5:
                message["flags"] |= LOADING
                about["response_message_loading"] = True
            issued.original = message
        elif kind == 7 and "message" in issued.payload:  # the clicked message updated in place
            message = self._update(dict(issued.payload["message"]), data)
            issued.original = message
        elif kind == 6 and "message" in issued.payload:
            message = issued.payload["message"]
        else:  # 1 pong, 8 autocomplete choices, 9 modal: no message
            message = None
        if message is not None:
            resource["message"] = message
            about["response_message_id"] = message["id"]
            about["response_message_ephemeral"] = bool(message["flags"] & EPHEMERAL)
            if kind in (4, 5, 7):
                self.answered.append(message)
        issued.answered.set()
        if not _truthy(call.query.get("with_response")):
            return _no_content()
        return _json({"interaction": about, "resource": resource})

    def _issued(self, call: _Call) -> _Issued | None:
        """The interaction a webhook route's token belongs to (the app id must match)."""
        if int(call.args[0]) != self.application_id:
            return None
        interaction_id = self._tokens.get(call.args[1])
        issued = self._interactions.get(interaction_id) if interaction_id else None
        if issued is not None and self.clock() - issued.at > TOKEN_LIFE:
            raise _Refused(_error(401, 50027, "Invalid Webhook Token"))
        return issued

    def _followup(self, call: _Call) -> web.Response:
        """A follow-up message. Discord knows the webhook only once the interaction was
        acknowledged; it answers the message only with `?wait=true` (204 otherwise)."""
        issued = self._issued(call)
        if issued is None or issued.responded is None:
            return _error(404, 10015, "Unknown Webhook")
        body = call.body or {}
        self.followups.append({"method": call.method, "path": call.path, **body})
        channel = int(issued.payload["channel_id"])
        message = self._message(channel, body, issued=issued, files=call.files)
        issued.followups[int(message["id"])] = message
        self.answered.append(message)
        return _json(message) if _truthy(call.query.get("wait")) else _no_content()

    def _response_message(self, call: _Call) -> tuple[_Issued | None, JSON | None]:
        issued = self._issued(call)
        if issued is None:
            return None, None
        which = call.args[2]
        if which == "@original":
            return issued, issued.original
        return issued, issued.followups.get(int(which))

    def _get_response(self, call: _Call) -> web.Response:
        issued, message = self._response_message(call)
        if issued is None:
            return _error(404, 10015, "Unknown Webhook")
        return _json(message) if message else _error(404, 10008, "Unknown Message")

    def _edit_response(self, call: _Call) -> web.Response:
        issued, message = self._response_message(call)
        if issued is None:
            return _error(404, 10015, "Unknown Webhook")
        if message is None:
            return _error(404, 10008, "Unknown Message")
        body = call.body or {}
        self.edits.append(
            {"method": call.method, "path": call.path, "message_id": call.args[2], **body}
        )
        message["flags"] &= ~LOADING
        return _json(self._update(message, body))

    def _delete_response(self, call: _Call) -> web.Response:
        issued, message = self._response_message(call)
        if issued is None:
            return _error(404, 10015, "Unknown Webhook")
        if message is None:
            return _error(404, 10008, "Unknown Message")
        if call.args[2] == "@original":
            issued.original = None
        else:
            issued.followups.pop(int(call.args[2]))
        self._stored.pop(int(message["id"]), None)
        return _no_content()

    # -- the REST API: application commands -----------------------------------------------------

    def _command_list(self, call: _Call) -> list[JSON] | None:
        if int(call.args[0]) != self.application_id:
            return None
        if len(call.args) > 1:
            return self.guild_commands.setdefault(int(call.args[1]), [])
        return self.commands

    def _list_commands(self, call: _Call) -> web.Response:
        commands = self._command_list(call)
        return _json(commands) if commands is not None else _error(404, 10002, "Unknown App")

    def _overwrite_commands(self, call: _Call) -> web.Response:
        """Bulk overwrite, as `CommandTree.sync()` does: ids stay stable per name and type."""
        commands = self._command_list(call)
        if commands is None:
            return _error(404, 10002, "Unknown App")
        guild_id = int(call.args[1]) if len(call.args) > 1 else None
        commands[:] = [self._command(c, guild_id) for c in call.body or []]
        return _json(commands)

    def _upsert_command(self, call: _Call) -> web.Response:
        commands = self._command_list(call)
        if commands is None:
            return _error(404, 10002, "Unknown App")
        guild_id = int(call.args[1]) if len(call.args) > 1 else None
        command = self._command(call.body or {}, guild_id)
        commands[:] = [c for c in commands if c["id"] != command["id"]] + [command]
        return _json(command, status=201)

    def _command(self, body: JSON, guild_id: int | None) -> JSON:
        kind = body.get("type", 1)
        command: JSON = {
            "type": kind,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            "name_localizations": None,
            "description_localizations": None,
            **body,
            "id": str(self._command_id(guild_id or 0, body["name"], kind)),
            "application_id": str(self.application_id),
            "version": str(self._next_id()),
        }
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        else:
            command.setdefault("contexts", None)
            command.setdefault("integration_types", [0])
        return command

    def _command_id(self, guild_id: int, name: str, kind: int) -> int:
        key = (guild_id, name, kind)
        if key not in self._command_ids:
            self._command_ids[key] = self._next_id()
        return self._command_ids[key]

    # -- payload builders ---------------------------------------------------------------------

    def _next_id(self) -> int:
        """A snowflake of the current time, so the client's `created_at` makes sense."""
        stamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(self._last_id + 1, stamp)
        return self._last_id

    def _user(self, user_id: int, name: str | None = None) -> JSON:
        if user_id not in self.users or name:
            self.users[user_id] = {
                "id": str(user_id),
                "username": name or f"user{user_id}",
                "discriminator": "0",
                "global_name": None,
                "avatar": None,
            }
        return self.users[user_id]

    @staticmethod
    def _member(user: JSON, roles: Sequence[int] = ()) -> JSON:
        return {
            "user": user,
            "nick": None,
            "avatar": None,
            "roles": [str(r) for r in roles],
            "joined_at": EPOCH,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }

    def _open_dm(self, user_id: int) -> int:
        """The DM channel with a user; Discord answers the same one every time."""
        if user_id in self._dm_with:
            return self._dm_with[user_id]
        channel = self._next_id()
        self.channels[channel] = 0
        self._dm_of[channel], self._dm_with[user_id] = user_id, channel
        self._channel_payloads[channel] = {
            "id": str(channel),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self._user(user_id)],
        }
        return channel

    def _application(self) -> JSON:
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
            "bot": self.bot_user,
        }

    def _message(
        self,
        channel: int,
        body: JSON,
        *,
        issued: _Issued | None = None,
        files: list[str] | None = None,
    ) -> JSON:
        """The message object Discord answers (and stores) for a body the client sent."""
        message: JSON = {
            "id": str(self._next_id()),
            "channel_id": str(channel),
            "type": 0,
            "author": self.bot_user,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "attachments": [
                {
                    "id": str(self._next_id()),
                    "filename": name,
                    "size": 0,
                    "url": f"{self.base_url}/attachments/{name}",
                    "proxy_url": f"{self.base_url}/attachments/{name}",
                }
                for name in files or []
            ],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": bool(body.get("tts")),
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "flags": int(body.get("flags") or 0),
        }
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        if issued is not None:
            payload = issued.payload
            user = (payload.get("member") or payload)["user"]
            message["type"] = 20 if issued.original is None else 0  # 20: chat input command
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            message["interaction_metadata"] = {
                "id": payload["id"],
                "type": payload["type"],
                "user": user,
                "authorizing_integration_owners": payload["authorizing_integration_owners"],
            }
        self._stored[int(message["id"])] = message
        return message

    def _update(self, message: JSON, body: JSON) -> JSON:
        """An edit: what the body sets replaces the message's fields."""
        for key, empty in (("content", ""), ("embeds", []), ("components", [])):
            if key in body:
                message[key] = body[key] if body[key] is not None else empty
        if "flags" in body and body["flags"] is not None:
            message["flags"] = int(body["flags"]) | (message["flags"] & EPHEMERAL)
        message["edited_timestamp"] = _now_iso()
        self._stored[int(message["id"])] = message
        return message


@asynccontextmanager
async def running(
    bot: ClientT,
    standin: DiscordStandIn,
    *,
    token: str = "test-token",
    timeout: float = 5.0,
    guild_ready_timeout: float | None = 0.1,
) -> AsyncIterator[ClientT]:
    """The bot logged in against the stand-in and connected to its gateway, `on_ready` done.

    Points `Route.BASE` (REST, webhooks, callbacks) and `DiscordWebSocket.DEFAULT_GATEWAY` (a
    plain Client never asks for the gateway URL) at the stand-in, restoring both afterwards.
    discord.py waits `guild_ready_timeout` (2 s) after the last GUILD_CREATE before `on_ready`,
    because Discord streams them; the stand-in sends them at once, so 0.1 s keeps tests fast
    (None leaves the client's own setting). On exit the bot is closed and its connect task
    awaited, so no task or session outlives the test.
    """
    original = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = standin.base_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(standin.gateway_url)
    try:
        async with bot:
            await bot.login(token)
            if guild_ready_timeout is not None:
                bot._connection.guild_ready_timeout = guild_ready_timeout
            connecting = asyncio.create_task(bot.connect(), name="discord-standin-connect")
            try:
                ready = asyncio.create_task(bot.wait_until_ready())
                done, _ = await asyncio.wait(
                    {ready, connecting}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if ready not in done:
                    ready.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ready
                    if connecting in done:
                        connecting.result()  # raises why the connection failed
                    raise TimeoutError(f"the bot was not ready within {timeout} s")
                yield bot
            finally:
                await bot.close()
                failure = await _finished(connecting, timeout)
            if failure is not None:  # the connection broke while the test ran
                raise failure
    finally:
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = original


async def _finished(task: asyncio.Task[None], timeout: float) -> BaseException | None:
    """Wait for the closed client's connect task (cancelling it if it hangs); returns what
    it raised, so the error is seen rather than left to "exception never retrieved"."""
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None
    return None if task.cancelled() else task.exception()


async def deliver(bot: discord.Client, payload: JSON, settle: float = 0.2) -> None:
    """An INTERACTION_CREATE handed to the client's state as its gateway would; waits for
    the command to finish: until no task is left beyond those running before, the stand-in's
    own (a new keep-alive connection's handler lives on) and view timeout timers aside.
    (`standin.interact(payload)` sends it over the gateway instead and waits for the answer.)"""
    before = asyncio.all_tasks()
    bot._connection.parse_interaction_create(payload)
    deadline = time.monotonic() + 5

    def busy() -> bool:
        return any(not _serves(t) and not _waits(t) for t in asyncio.all_tasks() - before)

    await asyncio.sleep(0)
    while busy() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(settle / 10)
