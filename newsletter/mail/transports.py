"""How a mail travels: written to a folder, or sent over SMTP. The sender sees only `send`.

A transport raises `TemporaryFailure` for what may work later for this mail (a 4xx reply to
its recipient or its data, a connection dropped mid-mail), `PermanentFailure` for what will
not (a 5xx reply), and `SessionRefused` for a refusal of the session rather than of the mail:
the greeting, EHLO, TLS, the login, MAIL FROM, or a reply at RCPT that is about the client
(a relay's "Relay access denied", a rejected HELO name, client host or sender). Those are
paperboy's side: sending pauses, and no reader's address is blamed. Of a 5xx, only one that is
about the recipient (at RCPT, or a 5.1.x/5.2.x status) counts against the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import socket
import ssl
from pathlib import Path
from typing import Protocol

import aiosmtplib

from newsletter.config import Settings
from newsletter.mail.compose import Mail
from newsletter.pacing import Pace

log = logging.getLogger(__name__)


class TemporaryFailure(Exception):
    """Try again later."""


class SessionRefused(TemporaryFailure):
    """The server refused paperboy's session, not this mail: pause, then try again."""


class PermanentFailure(Exception):
    """Do not try this message again; `blames_reader` when the recipient itself was refused."""

    def __init__(self, message: str, *, blames_reader: bool = True) -> None:
        super().__init__(message)
        self.blames_reader = blames_reader


# A reply at RCPT that is about the client, not the mailbox: Postfix delays its client, HELO
# and sender restrictions to RCPT, and a relay refuses to relay there.
_ABOUT_THE_SESSION = re.compile(
    r"relay access|relaying|relay not permitted|unable to relay|helo|ehlo|client host"
    r"|sender address|authenticat|\b5\.7\.0\b|\b[45]\.5\.\d",
    re.IGNORECASE,
)
# A 5xx after DATA is about this recipient only with an RFC 3463 mailbox status (a full or
# disabled mailbox); content or policy refusals are not the reader's doing.
_ABOUT_THE_MAILBOX = re.compile(r"\b5\.2\.\d{1,3}\b")


def helo_name(settings: Settings) -> str:
    """The name paperboy greets with: the setting, else the machine's fully qualified name,
    else the From address's domain; never `localhost`, which strict servers refuse."""
    if settings.smtp_helo:
        return settings.smtp_helo
    candidates = [socket.getfqdn(), settings.mail_from.rpartition("@")[2].strip(" >")]
    for name in candidates:
        if "." in name and not name.lower().startswith("localhost"):
            return name
    return socket.gethostname()


class Transport(Protocol):
    description: str
    # How many sends may run at once: the sender keeps no more mails than this unsettled.
    concurrency: int

    async def send(self, mail: Mail) -> None: ...

    async def close(self) -> None: ...


class FileTransport:
    """Writes each mail as an `.eml` file: the default when no SMTP host is set.

    The file name comes from the Message-ID, so sending the same delivery twice rewrites one
    file instead of adding a second; files appear whole (written aside, then renamed).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"files in {folder}"
        self.concurrency = 1

    async def send(self, mail: Mail) -> None:
        """A folder that cannot be written (missing rights, a file in its place, a full disk)
        holds every mail like a refused session: back to the queue, no attempt used."""
        recipient = re.sub(r"[^A-Za-z0-9@._-]", "_", mail.recipient)[:100]
        name = hashlib.sha256(mail.message_id.encode()).hexdigest()[:16]
        path = self.folder / f"{recipient}-{name}.eml"
        partial = path.with_suffix(".eml.part")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(mail.data)
            os.replace(partial, path)
        except OSError as err:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise SessionRefused(
                f"outbox folder {self.folder} (PAPERBOY_OUTBOX_DIR) unusable: {err.strerror}"
            ) from None

    async def close(self) -> None:
        return None


class SmtpTransport:
    """A few persistent SMTP connections shared by concurrent sends, at a bounded rate."""

    def __init__(self, settings: Settings) -> None:
        if settings.smtp_host is None:
            raise ValueError("SmtpTransport needs PAPERBOY_SMTP_HOST")
        self._settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._spare = self.concurrency = max(1, settings.smtp_connections)
        self._pace = Pace(settings.smtp_rate)
        self._helo = helo_name(settings)
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
            cert_bundle=str(s.smtp_ca_file) if s.smtp_ca_file else None,
            local_hostname=self._helo,
            timeout=30,
        )

    async def _take(self) -> aiosmtplib.SMTP:
        if self._idle.empty() and self._spare > 0:
            self._spare -= 1
            return self._connection()
        return await self._idle.get()

    async def send(self, mail: Mail) -> None:
        smtp = await self._take()
        # After any failure the session state is unknown: reconnect rather than RSET.
        broken = True
        try:
            await self._ready(smtp)
            # Paced once the connection is up, so the server sees mails at the rate however
            # long a connection took to set up (a TLS handshake, a login).
            await self._pace.wait()
            await _transfer(smtp, mail)
            broken = False
        except aiosmtplib.SMTPSenderRefused as err:
            raise SessionRefused(f"sender refused: {err.code} {err.message}") from None
        except aiosmtplib.SMTPRecipientRefused as err:
            reply = f"{err.code} {err.message}"
            if _ABOUT_THE_SESSION.search(err.message):
                raise SessionRefused(f"refused at RCPT, not for the recipient: {reply}") from None
            if 500 <= err.code < 600:
                raise PermanentFailure(f"recipient refused: {reply}") from None
            raise TemporaryFailure(f"recipient deferred: {reply}") from None
        except aiosmtplib.SMTPResponseException as err:
            reply = f"{err.code} {err.message}"
            if 500 <= err.code < 600:
                blames = bool(_ABOUT_THE_MAILBOX.search(err.message))
                raise PermanentFailure(reply, blames_reader=blames) from None
            raise TemporaryFailure(reply) from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as err:
            raise TemporaryFailure(f"{type(err).__name__}: {err}") from None
        finally:
            if broken:
                smtp.close()
            self._idle.put_nowait(smtp)

    async def _ready(self, smtp: aiosmtplib.SMTP) -> None:
        """Connected (TLS and login included) and greeted, if it was not yet; any failure
        here is the session's (`SessionRefused`), whatever the reply code."""
        try:
            await _ready(smtp)
        except aiosmtplib.SMTPAuthenticationError as err:
            raise SessionRefused(
                f"login as {self._settings.smtp_username!r} refused: {err.code} {err.message}"
                " (check PAPERBOY_SMTP_USERNAME and PAPERBOY_SMTP_PASSWORD)"
            ) from None
        except aiosmtplib.SMTPResponseException as err:
            raise SessionRefused(f"session refused: {err.code} {err.message}") from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as err:
            untrusted = _certificate_error(err)
            if untrusted is not None:
                raise SessionRefused(
                    f"the TLS certificate of {self._settings.smtp_host} is not trusted"
                    f" ({untrusted.verify_message}); if a private CA signed it,"
                    " set PAPERBOY_SMTP_CA_FILE to that CA's certificate"
                ) from None
            raise SessionRefused(f"cannot connect: {type(err).__name__}: {err}") from None

    async def close(self) -> None:
        while not self._idle.empty():
            smtp = self._idle.get_nowait()
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()


def _certificate_error(err: BaseException) -> ssl.SSLCertVerificationError | None:
    """The failed certificate check behind `err`: aiosmtplib raises it bare from STARTTLS but
    wraps it in a connect error for implicit TLS, where only the cause says what went wrong."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause
        cause = cause.__cause__
    return None


async def _ready(smtp: aiosmtplib.SMTP) -> None:
    """Connected (TLS and login included) and greeted, if it was not yet."""
    if not smtp.is_connected:
        await smtp.connect()
    if smtp.is_ehlo_or_helo_needed:
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPHeloError:
            await smtp.helo()


async def _transfer(smtp: aiosmtplib.SMTP, mail: Mail) -> None:
    """One mail over a ready connection: MAIL, RCPT, DATA.

    Not `sendmail`: it rewrites the whole message with a regular expression to work out the
    SIZE it announces, and the composer's bytes are already CRLF-terminated, so their length
    is the size. An internationalised address needs the server's SMTPUTF8.
    """
    options = [f"SIZE={len(mail.data)}"] if smtp.supports_extension("size") else []
    encoding = "ascii"
    if not (mail.sender.isascii() and mail.recipient.isascii()):
        if not smtp.supports_extension("smtputf8"):
            raise PermanentFailure(
                f"{mail.recipient}: the server does not offer SMTPUTF8", blames_reader=False
            )
        options.append("SMTPUTF8")
        encoding = "utf-8"
    await smtp.mail(mail.sender, options=options, encoding=encoding)
    await smtp.rcpt(mail.recipient, encoding=encoding)
    await _data(smtp, mail.data)


async def _data(smtp: aiosmtplib.SMTP, data: bytes) -> None:
    """DATA with the mail's bytes as they are. `smtp.data` first rewrites every line end and
    doubles every leading dot, two regular-expression passes over the whole message that
    cost more than the rest of the SMTP exchange (about 200 us of a 33 kB mail); a `Mail`'s
    data already has CRLF line ends and no line starting with a dot, so only the end marker
    is added. A failure leaves the connection to be closed by `send`, as after `smtp.data`."""
    started = await smtp.execute_command(b"DATA")
    if started.code != aiosmtplib.SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(started.code, started.message)
    if smtp.protocol is None:  # execute_command closed it: the server went away
        raise aiosmtplib.SMTPServerDisconnected("connection lost after DATA")
    smtp.protocol.write(data + b".\r\n")
    done = await smtp.protocol.read_response(timeout=smtp.timeout)
    if done.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(done.code, done.message)


def transport_from(settings: Settings) -> Transport:
    if settings.smtp_host:
        return SmtpTransport(settings)
    return FileTransport(settings.outbox_dir / "mail")
