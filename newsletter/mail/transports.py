"""How a mail travels: written to a folder, or sent over SMTP. The sender sees only `send`.

A transport raises `TemporaryFailure` for what may work later (4xx replies, refused or
dropped connections, timeouts) and `PermanentFailure` for what will not (5xx replies); the
sender turns those into a retry with backoff or a failed delivery.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from email.message import Message
from email.policy import compat32
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib

from newsletter.config import Settings
from newsletter.pacing import Pace

log = logging.getLogger(__name__)


class TemporaryFailure(Exception):
    """Try again later."""


class PermanentFailure(Exception):
    """Do not try this message again."""


class Transport(Protocol):
    description: str

    async def send(self, message: Message) -> None: ...

    async def close(self) -> None: ...


# CRLF line ends; headers unfolded up to the 998 characters RFC 5322 allows, since folding a
# long List-Unsubscribe URL can break it in some clients.
WIRE = compat32.clone(linesep="\r\n", max_line_length=998)


def wire_bytes(message: Message) -> bytes:
    return message.as_bytes(policy=WIRE)


def envelope(message: Message) -> tuple[str, str]:
    return parseaddr(str(message["From"]))[1], parseaddr(str(message["To"]))[1]


class FileTransport:
    """Writes each mail as an `.eml` file: the default when no SMTP host is set.

    The file name comes from the Message-ID, so sending the same delivery twice rewrites one
    file instead of adding a second; files appear whole (written aside, then renamed).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"files in {folder}"

    async def send(self, message: Message) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        recipient = re.sub(r"[^A-Za-z0-9@._-]", "_", str(message["To"]))[:100]
        name = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:16]
        path = self.folder / f"{recipient}-{name}.eml"
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(wire_bytes(message))
        os.replace(partial, path)

    async def close(self) -> None:
        return None


class SmtpTransport:
    """A few persistent SMTP connections shared by concurrent sends, at a bounded rate."""

    def __init__(self, settings: Settings) -> None:
        if settings.smtp_host is None:
            raise ValueError("SmtpTransport needs PAPERBOY_SMTP_HOST")
        self._settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._spare = max(1, settings.smtp_connections)
        self._pace = Pace(settings.smtp_rate)
        self.description = f"SMTP {settings.smtp_host}:{settings.smtp_port}"

    def _connection(self) -> aiosmtplib.SMTP:
        s = self._settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            username=s.smtp_username,
            password=password,
            timeout=30,
        )

    async def _take(self) -> aiosmtplib.SMTP:
        if self._idle.empty() and self._spare > 0:
            self._spare -= 1
            return self._connection()
        return await self._idle.get()

    async def send(self, message: Message) -> None:
        await self._pace.wait()
        smtp = await self._take()
        # After any failure the session state is unknown: reconnect rather than RSET.
        broken = True
        try:
            if not smtp.is_connected:
                await smtp.connect()
            sender, recipient = envelope(message)
            await smtp.sendmail(sender, [recipient], wire_bytes(message))
            broken = False
        except aiosmtplib.SMTPRecipientsRefused as err:
            codes = [r.code for r in err.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in err.recipients)
            if all(500 <= c < 600 for c in codes):
                raise PermanentFailure(f"recipient refused: {detail}") from None
            raise TemporaryFailure(f"recipient deferred: {detail}") from None
        except aiosmtplib.SMTPResponseException as err:
            if 500 <= err.code < 600:
                raise PermanentFailure(f"{err.code} {err.message}") from None
            raise TemporaryFailure(f"{err.code} {err.message}") from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as err:
            raise TemporaryFailure(f"{type(err).__name__}: {err}") from None
        finally:
            if broken:
                smtp.close()
            self._idle.put_nowait(smtp)

    async def close(self) -> None:
        while not self._idle.empty():
            smtp = self._idle.get_nowait()
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()


def transport_from(settings: Settings) -> Transport:
    if settings.smtp_host:
        return SmtpTransport(settings)
    return FileTransport(settings.outbox_dir / "mail")
