"""The daily mail end to end: queued once, built, sent through aiosmtplib to a real SMTP
server (aiosmtpd on 127.0.0.1), and what the server does wrong handled without loss."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.mail import pause
from newsletter.mail.daily import queue_daily
from newsletter.mail.send import send_due
from newsletter.mail.transports import SmtpTransport
from newsletter.models import Delivery, Paper, Subscriber
from newsletter.optin import MAX_HARD_FAILURES
from newsletter.outbox import MAX_ATTEMPTS, Outcome, Result, claim, settle
from tests.mailing import (
    CLOCK,
    DAILY_HEADERS,
    Clock,
    SmtpServer,
    composer,
    readers_with_papers,
    smtp_server,
)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from smtp_server()


async def send(engine: Engine, server: SmtpServer, clock: Clock | None = None, **settings: object):
    transport = SmtpTransport(server.settings(**settings))
    try:
        return await send_due(engine, transport, composer(), clock=clock or Clock())
    finally:
        await transport.close()


def deliveries(engine: Engine) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.exec(select(Delivery).where(Delivery.kind == "daily")))


async def test_a_daily_mail_arrives_as_text_and_html_with_unsubscribe_headers(
    engine: Engine, smtp: SmtpServer
) -> None:
    readers_with_papers(engine, ["ann@example.org"])
    assert queue_daily(engine, CLOCK) == 1

    summary = await send(engine, smtp)

    assert (summary.sent, summary.failed) == (1, 0)
    (mail,) = smtp.handler.received
    assert mail["To"] == "ann@example.org"
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
    assert https.startswith("http://paperboy.test/unsubscribe?token=")
    assert mailto.startswith("mailto:news@paperboy.test?subject=unsubscribe")
    assert re.fullmatch(r"<[0-9a-f]{32}@paperboy\.test>", mail["Message-ID"])
    html = mail.get_body(("html",)).get_content()
    assert "Continual learning" in html and 'style="' in html and "<style" not in html
    assert "A Comprehensive Survey of Continual Learning" in mail.get_body(("plain",)).get_content()


async def test_queueing_again_the_same_day_makes_no_second_mail(
    engine: Engine, smtp: SmtpServer
) -> None:
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    await send(engine, smtp)
    assert queue_daily(engine, CLOCK + timedelta(hours=3)) == 0
    await send(engine, smtp)
    assert len(smtp.handler.received) == 1


async def test_no_mail_before_the_readers_local_hour(engine: Engine) -> None:
    readers_with_papers(engine, ["ann@example.org"])  # hour 8 UTC; the clock says 12:00
    assert queue_daily(engine, CLOCK.replace(hour=7)) == 0
    assert queue_daily(engine, CLOCK.replace(hour=8)) == 1


async def test_a_451_then_success_is_sent_once_after_a_backoff(
    engine: Engine, smtp: SmtpServer
) -> None:
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    smtp.handler.data = ["451 4.3.0 try again later"]
    clock = Clock()

    first = await send(engine, smtp, clock)
    (row,) = deliveries(engine)
    assert (first.retried, row.status, row.last_error) == (
        1,
        "pending",
        "451 4.3.0 try again later",
    )
    assert row.next_attempt_at > clock.now

    assert (await send(engine, smtp, clock)).sent == 0  # not due yet
    clock.advance(timedelta(minutes=5))
    assert (await send(engine, smtp, clock)).sent == 1
    assert len(smtp.handler.received) == 1
    assert deliveries(engine)[0].status == "sent"


async def test_a_421_at_data_is_retried(engine: Engine, smtp: SmtpServer) -> None:
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    smtp.handler.data = ["421 4.3.2 shutting down"]
    clock = Clock()
    await send(engine, smtp, clock)
    clock.advance(timedelta(minutes=5))
    await send(engine, smtp, clock)
    assert [d.status for d in deliveries(engine)] == ["sent"]


async def test_a_550_fails_the_mail_with_the_reason(engine: Engine, smtp: SmtpServer) -> None:
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    smtp.handler.rcpt = ["550 5.1.1 no such user"]

    summary = await send(engine, smtp)

    (row,) = deliveries(engine)
    assert (summary.failed, row.status) == (1, "failed")
    assert "550 5.1.1 no such user" in (row.last_error or "")
    assert smtp.handler.received == []


async def test_three_hard_failures_in_a_row_suspend_the_address(
    engine: Engine, smtp: SmtpServer
) -> None:
    readers_with_papers(engine, ["ann@example.org"])
    clock = Clock()
    for day in range(MAX_HARD_FAILURES):
        clock.now = CLOCK + timedelta(days=day)
        with Session(engine) as session, session.begin():  # a new digest each day
            session.add(
                Delivery(
                    key=f"daily:1:{day}",
                    kind="daily",
                    subscriber_id=1,
                    digest_id=1,
                    after_digest_id=0,
                    next_attempt_at=clock.now,
                    day=clock.now.date(),
                )
            )
        smtp.handler.rcpt = ["550 5.1.1 mailbox unavailable"]
        summary = await send(engine, smtp, clock)
    assert summary.suspended == ["ann@example.org"]
    with Session(engine) as session:
        reader = session.exec(select(Subscriber)).one()
    assert (reader.email_status, reader.hard_failures) == ("suspended", MAX_HARD_FAILURES)
    assert queue_daily(engine, clock.now + timedelta(days=1)) == 0


async def test_a_refused_connection_pauses_sending_and_uses_up_no_attempt(
    engine: Engine, smtp: SmtpServer
) -> None:
    """The server being down is nobody's address failing: the mail waits, however long the
    outage, and goes once the server is back."""
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    nobody = SmtpServer(port=1, handler=None)  # type: ignore[arg-type]
    clock = Clock()
    for _ in range(MAX_ATTEMPTS + 2):
        summary = await send(engine, nobody, clock)
        clock.advance(timedelta(hours=7))
        assert summary.paused is not None and "cannot connect" in summary.paused
    (row,) = deliveries(engine)
    assert (row.status, row.attempts) == ("pending", 0)

    assert (await send(engine, smtp, clock)).sent == 1
    assert pause.current(engine) is None


async def test_a_mail_deferred_every_time_is_given_up_only_after_hours(
    engine: Engine, smtp: SmtpServer
) -> None:
    """30 s doubling to 6 h, as documented: a recipient's server saying "try later" for an
    afternoon does not lose the mail."""
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    smtp.handler.rcpt = ["450 4.2.1 mailbox busy"] * 100
    clock = Clock()
    while (row := deliveries(engine)[0]).status == "pending":
        clock.now = max(clock.now, row.next_attempt_at)
        await send(engine, smtp, clock)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert clock.now - CLOCK > timedelta(hours=6)


async def test_a_failed_days_papers_come_with_the_next_mail(
    engine: Engine, smtp: SmtpServer
) -> None:
    """The next mail starts after the last mail that did not fail, so nothing is lost; a
    content refusal after DATA is not the reader's doing and counts nothing against them."""
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    smtp.handler.data = ["554 5.7.1 message content rejected"]
    clock = Clock()
    assert (await send(engine, smtp, clock)).failed == 1

    clock.advance(timedelta(days=1))
    assert queue_daily(engine, clock.now) == 1
    assert (await send(engine, smtp, clock)).sent == 1

    failed, sent = sorted(deliveries(engine), key=lambda d: d.id or 0)
    assert (failed.status, sent.status) == ("failed", "sent")
    assert sent.after_digest_id == failed.after_digest_id
    (mail,) = smtp.handler.received
    assert "new paper" in str(mail["Subject"])
    with Session(engine) as session:
        assert session.exec(select(Subscriber)).one().hard_failures == 0


async def test_a_connection_dropped_mid_data_is_sent_on_the_retry(
    engine: Engine, smtp: SmtpServer
) -> None:
    readers_with_papers(engine, ["ann@example.org", "bob@example.org"])
    queue_daily(engine, CLOCK)
    smtp.handler.drop_data = 1
    clock = Clock()
    first = await send(engine, smtp, clock)
    assert (first.sent, first.retried) == (1, 1)
    clock.advance(timedelta(minutes=5))
    await send(engine, smtp, clock)
    assert sorted(m["To"] for m in smtp.handler.received) == ["ann@example.org", "bob@example.org"]
    assert {d.status for d in deliveries(engine)} == {"sent"}


async def test_a_sender_that_died_mid_send_is_taken_over_with_the_same_message_id(
    engine: Engine, smtp: SmtpServer
) -> None:
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    assert claim(engine, ["daily"], "dead-sender", CLOCK, 10)  # claimed, never settled
    clock = Clock()
    assert (await send(engine, smtp, clock)).sent == 0  # its lease still holds
    clock.advance(timedelta(minutes=6))
    assert (await send(engine, smtp, clock)).sent == 1
    (row,) = deliveries(engine)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_hostile_paper_text_is_escaped_and_never_reaches_a_header(
    engine: Engine, smtp: SmtpServer
) -> None:
    readers_with_papers(engine, ["ann@example.org"])
    evil = '<script>alert(1)</script> "><img src=x onerror=alert(2)> @everyone \u202egnp.exe 🧪'
    with Session(engine) as session, session.begin():
        paper = session.exec(
            select(Paper).where(Paper.title.contains("Comprehensive Survey of Continual"))
        ).one()
        paper.title = f"Continual learning {evil}"
        paper.abstract = "continual learning\r\nBcc: victim@example.org\r\n" + "x" * 1_000_000
    queue_daily(engine, CLOCK)

    await send(engine, smtp)

    (mail,) = smtp.handler.received
    html = mail.get_body(("html",)).get_content()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "victim@example.org" not in str(mail["Bcc"] or "")
    assert set(mail.keys()) == set(DAILY_HEADERS)
    assert len(mail.as_bytes()) < 200_000  # the abstract was trimmed, not sent whole


def test_a_sender_whose_lease_was_taken_over_records_nothing(engine: Engine) -> None:
    """Only the holder of a claim settles it: a late outcome from the first sender leaves the
    row to the one that took it over."""
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    (first,) = claim(engine, ["daily"], "first", CLOCK, 10)
    later = CLOCK + timedelta(minutes=6)
    assert claim(engine, ["daily"], "second", later, 10)
    settle(engine, "first", [Outcome(first.id or 0, Result.FAILED, "late")], later)
    (row,) = deliveries(engine)
    assert (row.status, row.claimed_by, row.attempts) == ("sending", "second", 2)
    settle(engine, "second", [Outcome(row.id or 0, Result.SENT)], later)
    (row,) = deliveries(engine)
    assert (row.status, row.claimed_by, row.last_error) == ("sent", None, None)
