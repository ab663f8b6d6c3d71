"""The SMTP transport's security and limits against a real aiosmtpd server on 127.0.0.1.

A real mail service demands STARTTLS or implicit TLS and a login, and counts connections and
messages a second; these tests hold the server to that and prove each promise of
`SmtpTransport` from the server's side: the session was encrypted, the login was the
configured one, a certificate nobody vouched for is refused without losing the mail, a wrong
password never shows up in an error or a log, and neither the connection limit nor the rate
is exceeded. Certificates come from a CA made for each test run (trustme), so nothing here
trusts more than the test says.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as WIRE
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.mail.compose import Mail
from newsletter.mail.daily import queue_daily
from newsletter.mail.send import send_due
from newsletter.mail.transports import SmtpTransport, TemporaryFailure
from newsletter.models import Delivery, Subscriber
from newsletter.outbox import Summary
from tests.mailing import CLOCK, Clock, Handler, SmtpServer, composer, free_port
from tests.mailing import readers_with_papers as readers
from tests.timing import most_in_one_second

USER = "news"
PASSWORD = "pw-Zq8!correct-horse"
WRONG_PASSWORD = "pw-Zq8!wrong-battery"


@dataclass(frozen=True)
class Arrival:
    """One mail as the server saw it: when, over which connection, how protected."""

    at: float
    connection: int
    tls: str | None
    login: bytes | None


@dataclass
class Recorder(Handler):
    """The scripted server of tests/mailing.py, also noting what each mail rode on and how
    many mail transactions were open at once. A connection counts once it sends MAIL, so the
    controller's own start-up probe is left out."""

    arrivals: list[Arrival] = field(default_factory=list)
    mechanisms: list[str] = field(default_factory=list)
    connections: list[SMTP] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    data_delay: float = 0.0

    def authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.mechanisms.append(mechanism)
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if server not in self.connections:
            self.connections.append(server)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.data_delay)
        tls = server.transport.get_extra_info("ssl_object") if server.transport else None
        self.arrivals.append(
            Arrival(
                time.monotonic(),
                self.connections.index(server),
                tls.version() if tls else None,
                session.auth_data.login if session.authenticated else None,
            )
        )
        self.in_flight -= 1
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Server:
    port: int
    recorder: Recorder

    def settings(self, **changes: Any) -> Settings:
        return SmtpServer(self.port, self.recorder).settings(**changes)


@dataclass(frozen=True)
class Certificates:
    """A CA of the test's own, the server's context holding a certificate it signed for
    127.0.0.1, and the CA written where `PAPERBOY_SMTP_CA_FILE` can point."""

    ca: trustme.CA
    server: ssl.SSLContext
    ca_file: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Certificates(ca, context, ca_file)


@contextmanager
def serving(*, login: bool = False, **options: Any) -> Iterator[Server]:
    """An aiosmtpd server on 127.0.0.1 with aiosmtpd's `options`; with `login`, one that
    refuses mail until the client logs in as USER with PASSWORD."""
    recorder = Recorder()
    if login:
        options.update(authenticator=recorder.authenticate, auth_required=True)
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield Server(controller.port, recorder)
    finally:
        controller.stop()


def starttls_server(certs: Certificates, **options: Any) -> AbstractContextManager[Server]:
    """A server that refuses everything but STARTTLS and EHLO/QUIT until the session is
    encrypted, as a submission port (587) should."""
    return serving(tls_context=certs.server, require_starttls=True, **options)


def over_starttls(server: Server, certs: Certificates, **changes: Any) -> Settings:
    """Settings a real submission service asks for: STARTTLS, trusting the test's CA."""
    return server.settings(smtp_security="starttls", smtp_ca_file=certs.ca_file, **changes)


def mail(n: int) -> Mail:
    message = EmailMessage()
    message["From"] = "paperboy <news@paperboy.test>"
    message["To"] = f"reader{n}@example.org"
    message["Subject"] = f"digest {n}"
    message["Message-ID"] = f"<{n}@paperboy.test>"
    message.set_content("today's papers")
    data = message.as_bytes(policy=WIRE)
    return Mail("news@paperboy.test", f"reader{n}@example.org", f"<{n}@paperboy.test>", data)


async def send_all(settings: Settings, count: int) -> None:
    transport = SmtpTransport(settings)
    try:
        await asyncio.gather(*(transport.send(mail(n)) for n in range(count)))
    finally:
        await transport.close()


async def send_due_mail(engine: Engine, settings: Settings, clock: Clock) -> Summary:
    transport = SmtpTransport(settings)
    try:
        return await send_due(engine, transport, composer(), clock=clock)
    finally:
        await transport.close()


def the_delivery_and_reader(engine: Engine) -> tuple[Delivery, Subscriber]:
    with Session(engine) as session:
        return (
            session.exec(select(Delivery).where(Delivery.kind == "daily")).one(),
            session.exec(select(Subscriber)).one(),
        )


async def test_starttls_upgrades_before_the_mail_and_the_daily_mail_arrives(
    engine: Engine, certs: Certificates
) -> None:
    readers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    with starttls_server(certs) as server:
        summary = await send_due_mail(engine, over_starttls(server, certs), Clock())

    assert summary.sent == 1
    (arrival,) = server.recorder.arrivals
    assert arrival.tls in {"TLSv1.2", "TLSv1.3"}
    assert server.recorder.received[0]["To"] == "ann@example.org"


async def test_starttls_never_falls_back_to_clear_text_when_the_server_does_not_offer_it() -> None:
    with (
        serving() as server,  # no TLS context: STARTTLS is not advertised
        pytest.raises(TemporaryFailure, match="STARTTLS"),
    ):
        await send_all(server.settings(smtp_security="starttls"), 1)
    assert server.recorder.arrivals == []


async def test_implicit_tls_sends_over_a_connection_encrypted_from_the_start(
    certs: Certificates,
) -> None:
    with serving(ssl_context=certs.server) as server:
        await send_all(server.settings(smtp_security="tls", smtp_ca_file=certs.ca_file), 2)
    assert [a.tls in {"TLSv1.2", "TLSv1.3"} for a in server.recorder.arrivals] == [True, True]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_an_untrusted_certificate_is_refused_and_the_mail_waits_for_a_ca_file(
    engine: Engine, certs: Certificates, security: str
) -> None:
    """Without the CA the system store cannot vouch for the server: nothing is sent, the
    error says why and what to set, and once the CA file is set the retry delivers."""
    readers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    options = {"ssl_context": certs.server} if security == "tls" else {"tls_context": certs.server}
    clock = Clock()
    with serving(**options) as server:
        refused = await send_due_mail(engine, server.settings(smtp_security=security), clock)
        row, reader = the_delivery_and_reader(engine)
        assert (refused.held, refused.failed, row.status) == (1, 0, "pending")
        assert "TLS certificate of 127.0.0.1 is not trusted" in (row.last_error or "")
        assert "certificate" in (row.last_error or "").split("(")[1]  # ssl's own reason
        assert "PAPERBOY_SMTP_CA_FILE" in (row.last_error or "")
        assert reader.hard_failures == 0
        assert server.recorder.arrivals == []

        clock.advance(timedelta(minutes=5))
        trusted = server.settings(smtp_security=security, smtp_ca_file=certs.ca_file)
        assert (await send_due_mail(engine, trusted, clock)).sent == 1
    assert len(server.recorder.arrivals) == 1


async def test_a_trusted_certificate_for_another_host_is_refused(certs: Certificates) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certs.ca.issue_cert("mail.elsewhere.test").configure_cert(context)
    with (
        serving(tls_context=context, require_starttls=True) as server,
        pytest.raises(TemporaryFailure, match=r"127\.0\.0\.1 is not trusted \(IP address mismatch"),
    ):
        await send_all(over_starttls(server, certs), 1)
    assert server.recorder.arrivals == []


def test_a_ca_file_that_does_not_exist_is_refused_when_settings_load(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="smtp_ca_file"):
        Settings(smtp_ca_file=tmp_path / "missing.pem")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_login_with_the_configured_user_and_password_sends_without_logging_it(
    certs: Certificates, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    with starttls_server(certs, login=True, auth_exclude_mechanism=[other]) as server:
        settings = over_starttls(server, certs, smtp_username=USER, smtp_password=PASSWORD)
        await send_all(settings, 6)

    recorder = server.recorder
    assert recorder.mechanisms == [mechanism] * len(recorder.connections)  # one login each
    assert [a.login for a in recorder.arrivals] == [USER.encode()] * 6
    assert PASSWORD not in caplog.text


async def test_a_wrong_password_keeps_the_mail_queued_and_never_shows_the_password(
    engine: Engine, certs: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused login is paperboy's misconfiguration, not the reader's fault: the mail is
    held (sending pauses) and the address is not counted as bouncing (three bounces would
    suspend it)."""
    caplog.set_level(logging.DEBUG)
    readers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    with starttls_server(certs, login=True) as server:
        settings = over_starttls(server, certs, smtp_username=USER, smtp_password=WRONG_PASSWORD)
        summary = await send_due_mail(engine, settings, Clock())

    row, reader = the_delivery_and_reader(engine)
    assert (summary.held, summary.failed, row.status) == (1, 0, "pending")
    assert "login as 'news' refused: 535" in (row.last_error or "")
    assert "PAPERBOY_SMTP_PASSWORD" in (row.last_error or "")
    assert WRONG_PASSWORD not in (row.last_error or "")
    assert WRONG_PASSWORD not in caplog.text
    assert reader.hard_failures == 0
    assert server.recorder.arrivals == []


async def test_a_server_demanding_a_login_none_was_configured_for_blames_no_reader(
    engine: Engine, certs: Certificates
) -> None:
    """The server refuses the sender (530) before any recipient is named: held (sending
    pauses), and the reader's address is not counted as bouncing."""
    readers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    with starttls_server(certs, login=True) as server:
        summary = await send_due_mail(engine, over_starttls(server, certs), Clock())

    row, reader = the_delivery_and_reader(engine)
    assert (summary.held, summary.failed, row.status) == (1, 0, "pending")
    assert "sender refused: 530" in (row.last_error or "")
    assert reader.hard_failures == 0


async def test_many_mails_share_at_most_the_configured_connections_and_reuse_them(
    certs: Certificates,
) -> None:
    """20 mails at once over 3 connections: the server sees exactly 3 sessions, never more
    than 3 transactions in flight (each DATA is slowed so they would pile up), and every
    session carries several mails."""
    with starttls_server(certs) as server:
        server.recorder.data_delay = 0.02
        await send_all(over_starttls(server, certs, smtp_connections=3), 20)

    recorder = server.recorder
    assert len(recorder.arrivals) == 20
    assert len(recorder.connections) == 3
    assert recorder.peak_in_flight == 3  # the limit is reached, and not passed
    per_connection = [sum(a.connection == c for a in recorder.arrivals) for c in range(3)]
    assert all(count > 1 for count in per_connection), per_connection


async def test_the_rate_limit_holds_from_the_servers_side(certs: Certificates) -> None:
    """30 mails at 20 a second over 3 connections, paced once each connection is up (TLS
    and login done): sending takes at least 29 intervals of 50 ms, and no second holds more
    than 24 arrivals at the server, where sending at once puts all 30 in one second. Only
    bounds a busy machine cannot break are asserted. A second's arrivals are the mails
    released in it, at most 21 (a release may be late by half an interval and keep its
    slot), and the mails released before it still on their way, at most one a connection."""
    count, rate, connections = 30, 20.0, 3
    with starttls_server(certs) as server:
        settings = over_starttls(server, certs, smtp_connections=connections, smtp_rate=rate)
        started = time.monotonic()
        await send_all(settings, count)
        elapsed = time.monotonic() - started

    arrivals = sorted(a.at for a in server.recorder.arrivals)
    assert len(arrivals) == count
    assert elapsed >= 0.9 * (count - 1) / rate
    assert most_in_one_second(arrivals) <= rate + 1 + connections


def test_a_burst_is_what_the_rate_check_catches() -> None:
    assert most_in_one_second([0.001 * n for n in range(30)]) == 30
    assert most_in_one_second([0.05 * n for n in range(30)]) == 20
