"""The pieces a running paperboy is made of, and how the bot package adds its own.

A `Sender` sends what the outbox holds for one way of delivering (mail, Discord) and a `Part`
is something that keeps running beside the scheduler (the web app, the Discord gateway). The
newsletter package brings the mail sender and the web app; the Discord sender and the bot
come from packages registered under the `paperboy.plugins` entry point, so nothing here
imports discord and the scheduler does not care how a delivery travels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

from aiohttp import web
from sqlalchemy import Engine

from newsletter.mail.compose import Composer
from newsletter.mail.send import send_due
from newsletter.mail.transports import Transport
from newsletter.models import utcnow
from newsletter.outbox import Summary
from newsletter.web import make_app

log = logging.getLogger(__name__)


class Unavailable(RuntimeError):
    """A sender or part cannot work at all (a refused token, a port in use); the message
    says which and why, for the person starting paperboy."""


class Sender(Protocol):
    name: str
    description: str
    """Where its messages go, for the person running paperboy."""

    async def send_due(self) -> Summary: ...

    async def close(self) -> None: ...


class Part(Protocol):
    name: str

    async def start(self) -> asyncio.Task[None] | None:
        """Start; a part that runs as a task returns it, so its death stops the service."""

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Wiring:
    """What a plugin needs to build its senders and parts."""

    engine: Engine
    outbox_dir: Path
    discord_token: str | None
    """None: write what would be sent into `outbox_dir` instead."""
    gateway: bool = False
    """Also stay connected to take commands (`paperboy run`), not only send (`deliver`)."""
    clock: Callable[[], datetime] = utcnow


@dataclass
class Plugin:
    senders: list[Sender] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)


def plugins(wiring: Wiring) -> list[Plugin]:
    """Every registered plugin's senders and parts; call it with the event loop running, as
    clients such as discord.py's bind to the loop they are made in."""
    return [point.load()(wiring) for point in entry_points(group="paperboy.plugins")]


class MailSender:
    """The daily and confirmation mails, through SMTP or into `.eml` files."""

    name = "mail"

    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        composer: Composer,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine, self.transport, self.composer, self.clock = engine, transport, composer, clock
        self.description = transport.description

    async def send_due(self) -> Summary:
        return await send_due(self.engine, self.transport, self.composer, clock=self.clock)

    async def close(self) -> None:
        await self.transport.close()


class WebPart:
    """The pages links in mails lead to, and /healthz, served from the service's process."""

    name = "web"

    def __init__(self, engine: Engine, composer: Composer, host: str, port: int) -> None:
        self.runner = web.AppRunner(make_app(engine, composer), access_log=None)
        self.host, self.port = host, port

    async def start(self) -> None:
        await self.runner.setup()
        try:
            await web.TCPSite(self.runner, self.host, self.port).start()
        except OSError as problem:
            await self.runner.cleanup()
            raise Unavailable(
                f"cannot serve the web pages on {self.host}:{self.port}: {problem.strerror} "
                "(PAPERBOY_WEB_HOST / PAPERBOY_WEB_PORT, or `paperboy run --no-web`)"
            ) from None
        log.info("web: serving on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self.runner.cleanup()


def assemble(wiring: Wiring, transport: Transport, composer: Composer) -> Plugin:
    """Every sender and part: the mail sender over `transport`, then the plugins' own."""
    found = plugins(wiring)
    return Plugin(
        senders=[
            MailSender(wiring.engine, transport, composer, wiring.clock),
            *(sender for plugin in found for sender in plugin.senders),
        ],
        parts=[part for plugin in found for part in plugin.parts],
    )
