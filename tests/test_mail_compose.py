"""The composer writes MIME bytes by hand: they must read, with the standard `email` package,
as the same message the package itself builds (structure, headers, bodies), and keep hostile
or foreign text out of the headers."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import date
from email.charset import BASE64, Charset
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from itsdangerous import TimestampSigner
from jinja2 import UndefinedError

from newsletter.mail.compose import Composer, Mail, Recipient, header
from newsletter.mail.links import Links
from newsletter.mail.templates import environment
from newsletter.mail.transports import PermanentFailure, SmtpTransport
from newsletter.sections import PaperView, Section
from tests.mailing import DAILY_HEADERS, Handler, SmtpServer, free_port

EVIL = '<script>alert(1)</script> "><img src=x onerror=alert(2)> \u202egnp.exe 🧪\r\nBcc: x@y'
SECTIONS = [
    Section(
        "Continual learning",
        (
            PaperView(
                f"Forgetting {EVIL}", "https://arxiv.org/abs/1", "Ann, Bo", ("forget",), EVIL
            ),
            PaperView("Replay\r\n.\r\nQUIT", "https://arxiv.org/abs/2", "Cy", ("replay",), "."),
        ),
    )
]
READER = Recipient(7, "ann@example.org")
UTF8_BASE64 = Charset("utf-8")
UTF8_BASE64.body_encoding = BASE64


@pytest.fixture(autouse=True)
def one_signing_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """The manage link's token holds the second it was signed in. These tests compare a mail
    with the context built a moment after it, so on a busy machine the two could fall in
    different seconds and carry different tokens."""
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_764_000_000)


def composer(
    mail_from: str = "paperboy <news@paperboy.test>", base: str = "https://p.test"
) -> Composer:
    return Composer(environment(), Links("secret", base), mail_from)


def parsed(mail: Mail) -> EmailMessage:
    return email.message_from_bytes(mail.data, policy=email.policy.default)  # type: ignore[return-value]


def reference(mail: EmailMessage, text: str, html: str) -> EmailMessage:
    """The same mail built by the `email` package, as paperboy built it before, read back."""
    built = MIMEMultipart("alternative")
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        built[name] = str(mail[name])
    for name in ("Auto-Submitted", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"):
        if name in mail:
            built[name] = str(mail[name])
    built.attach(MIMEText(text, "plain", UTF8_BASE64))
    built.attach(MIMEText(html, "html", UTF8_BASE64))
    wire = built.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n", max_line_length=998))
    return email.message_from_bytes(wire, policy=email.policy.default)  # type: ignore[return-value]


def shape(message: EmailMessage) -> list[object]:
    """What a reader's client sees: headers in order (boundary aside), each part's type,
    charset, transfer encoding and decoded text; and every defect the parser noticed."""
    parts = [
        (p.get_content_type(), p.get_content_charset(), p["Content-Transfer-Encoding"])
        for p in message.iter_parts()
    ]
    bodies = [p.get_content() for p in message.iter_parts()]
    headers = [(k, v) for k, v in message.items() if k != "Content-Type"]
    defects = [message.defects, *(p.defects for p in message.iter_parts())]
    return [message.get_content_type(), headers, parts, bodies, defects]


def test_the_daily_mail_reads_as_the_email_package_would_have_built_it() -> None:
    mails = composer()
    mail = parsed(mails.daily("daily:7:2026-11-25", 3, READER, date(2026, 11, 25), SECTIONS))
    context = mails.daily_context(3, READER, date(2026, 11, 25), SECTIONS)
    text, html = (
        mails.env.get_template(f"mail/daily.{k}").render(context) for k in ("txt", "html")
    )

    assert shape(mail) == shape(reference(mail, text, html))
    assert [k for k, _ in mail.items()] == DAILY_HEADERS
    assert mail["Subject"] == "paperboy 2026-11-25: 2 new papers"
    assert mail["Message-ID"] == mails.message_id("daily:7:2026-11-25")
    assert all(v == [] for v in shape(mail)[-1])  # type: ignore[union-attr]


def test_readers_of_the_same_papers_share_their_rendering_and_keep_their_own_links() -> None:
    """The papers block is rendered once per list of papers and reused: each mail still reads
    as its own template rendered whole, whoever came before it."""
    mails = composer()
    other = [Section("Agents", SECTIONS[0].papers[1:])]
    for reader, sections in [(READER, SECTIONS), (Recipient(8, "bo@example.org"), other)] * 2:
        mail = parsed(mails.daily("k", reader.subscriber_id, reader, date(2026, 11, 25), sections))
        context = mails.daily_context(reader.subscriber_id, reader, date(2026, 11, 25), sections)
        for kind, subtype in (("txt", "plain"), ("html", "html")):
            whole = mails.env.get_template(f"mail/daily.{kind}").render(context)
            assert mail.get_body((subtype,)).get_content() == whole  # type: ignore[union-attr]


def test_a_daily_template_of_ones_own_needs_no_papers_block(tmp_path: Path) -> None:
    """An older copy without the block renders whole; a block naming a reader's own value is
    refused rather than showing one reader's address or links to the next."""
    (tmp_path / "mail").mkdir()
    own = tmp_path / "mail" / "daily.txt"
    own.write_text("{{ email }}: {% for s in sections %}{{ s.topic }}{% endfor %}\n")
    mails = Composer(environment(tmp_path), Links("secret", "https://p.test"), "n@p.test")
    mail = parsed(mails.daily("k", 3, READER, date(2026, 11, 25), SECTIONS))
    assert mail.get_body(("plain",)).get_content() == "ann@example.org: Continual learning"  # type: ignore[union-attr]
    own.write_text("{% block papers %}{{ email }}{% endblock %}\n")
    mails = Composer(environment(tmp_path), Links("secret", "https://p.test"), "n@p.test")
    with pytest.raises(UndefinedError, match="email"):
        mails.daily("k", 3, READER, date(2026, 11, 25), SECTIONS)


def test_the_confirmation_mail_reads_as_the_email_package_would_have_built_it() -> None:
    mails = composer()
    mail = parsed(mails.confirmation("confirm:7", READER, "012345"))
    html, text = (mail.get_body((kind,)).get_content() for kind in ("html", "plain"))  # type: ignore[union-attr]
    assert shape(mail) == shape(reference(mail, text, html))
    assert "List-Unsubscribe" not in mail
    assert "012345" in text and "012345" in html


def test_hostile_paper_text_stays_escaped_in_the_bodies_and_out_of_the_headers() -> None:
    mail = composer().daily("daily:7:2026-11-25", 3, READER, date(2026, 11, 25), SECTIONS)
    message = parsed(mail)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Bcc" not in message and len(list(message.iter_parts())) == 2
    head = mail.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"script" not in head and b"\r\n." not in mail.data
    assert all(len(line) <= 998 for line in mail.data.split(b"\r\n"))
    # What the transport sends as is (no dot-stuffing, no line-end rewriting): see `Mail`.
    bare = mail.data.replace(b"\r\n", b"")
    assert b"\n" not in bare and b"\r" not in bare and not mail.data.startswith(b".")


def test_a_foreign_sender_name_is_encoded_and_the_address_still_reads() -> None:
    mail = parsed(composer("Päperbøy Ünïcode <news@paperboy.test>").confirmation("c", READER, "1"))
    (sender,) = mail["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Päperbøy Ünïcode", "news@paperboy.test")
    assert mail.as_bytes().split(b"\r\n\r\n")[0].isascii()


@pytest.mark.parametrize(
    ("to", "base"),
    [
        ("ann@example.org\r\nBcc: victim@example.org", "https://p.test"),
        ("ann@example.org", "https://p.test/\nBcc: victim@example.org"),
    ],
)
def test_a_line_break_never_reaches_a_header(to: str, base: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        composer(base=base).daily("k", 1, Recipient(1, to), date(2026, 11, 25), SECTIONS)


def test_a_foreign_subject_goes_as_encoded_words() -> None:
    line = header("Subject", "Bücher über 🧪", words=True)
    assert line.isascii()
    assert email.message_from_string(line, policy=email.policy.default)["Subject"] == (
        "Bücher über 🧪"
    )


def server(*, smtputf8: bool) -> Iterator[SmtpServer]:
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield SmtpServer(port, handler)
    finally:
        controller.stop()


@pytest.fixture
def utf8_smtp() -> Iterator[SmtpServer]:
    yield from server(smtputf8=True)


@pytest.fixture
def ascii_smtp() -> Iterator[SmtpServer]:
    yield from server(smtputf8=False)


async def test_an_internationalised_address_goes_with_smtputf8(utf8_smtp: SmtpServer) -> None:
    reader = Recipient(7, "δοκιμή@example.org")
    transport = SmtpTransport(utf8_smtp.settings())
    try:
        await transport.send(composer().confirmation("c", reader, "1"))
    finally:
        await transport.close()
    (mail,) = utf8_smtp.handler.received
    assert mail["To"] == "δοκιμή@example.org"


async def test_an_internationalised_address_fails_on_a_server_without_smtputf8(
    ascii_smtp: SmtpServer,
) -> None:
    transport = SmtpTransport(ascii_smtp.settings())
    try:
        with pytest.raises(PermanentFailure, match="SMTPUTF8"):
            await transport.send(
                composer().confirmation("c", Recipient(7, "δοκιμή@example.org"), "1")
            )
    finally:
        await transport.close()
    assert ascii_smtp.handler.received == []


def test_two_installations_give_the_same_delivery_different_message_ids() -> None:
    """Staging and production (or a rebuilt database) number readers alike: the id mixes in
    each installation's secret key, so a client deduplicating by Message-ID keeps both."""

    def installation(secret: str) -> Composer:
        return Composer(environment(), Links(secret, "https://p.test"), "news@paperboy.test")

    key = "daily:7:2026-11-25"
    staging, production = installation("staging-secret"), installation("production-secret")

    assert staging.message_id(key) != production.message_id(key)
    assert staging.message_id(key) == installation("staging-secret").message_id(key)
