"""Bounces that come back later: a real daily mail goes through a real SMTP server, and the
relay behind it returns a delivery status notification (RFC 3464) to the From address, as
Postfix and Exim write them (tests/data/dsn/), into the Maildir paperboy reads."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.inbox import Inbox
from newsletter.mail.unsubscribes import BOUNCES, REFUSED, read_maildir
from newsletter.models import Delivery, Subscriber
from newsletter.scheduler import Jobs
from tests.mailing import LINKS, SmtpServer, mailed, signing_key, smtp_server

__all__ = ["signing_key"]  # a fixture, used by name

DSN = Path(__file__).parent / "data" / "dsn"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from smtp_server()


def returned(sample: str, recipient: str, mail: EmailMessage) -> bytes:
    """The sample DSN about `mail`, as the relay would write it for `recipient`."""
    headers = "".join(f"{name}: {value}\n" for name, value in mail.items())
    text = (
        (DSN / sample)
        .read_text()
        .replace("@@RECIPIENT@@", recipient)
        .replace("@@MESSAGE_ID@@", str(mail["Message-ID"]))
        .replace("@@RETURNED_HEADERS@@", headers)
        .replace("@@RETURNED_MESSAGE@@", mail.as_string())
    )
    return text.encode()


def reader(engine: Engine, address: str) -> Subscriber:
    with Session(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == address)).one()


def deliveries(engine: Engine, address: str) -> list[tuple[str, str | None]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery.status, Delivery.last_error)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)  # type: ignore[arg-type]
            .where(Subscriber.email == address, Delivery.kind == "daily")
        )
        return list(rows)


@pytest.mark.parametrize("sample", ["postfix-5.1.1.eml", "exim-5.0.0.eml"])
async def test_a_hard_bounce_suspends_its_reader_at_once_and_fails_the_mail(
    engine: Engine, smtp: SmtpServer, tmp_path: Path, sample: str
) -> None:
    mails = await mailed(engine, smtp, ["gone@example.org", "bob@example.org"])
    box = mailbox.Maildir(tmp_path / "Maildir")
    box.add(returned(sample, "gone@example.org", mails["gone@example.org"]))

    handled = read_maildir(engine, LINKS, tmp_path / "Maildir")

    assert handled.bounced == ["gone@example.org"]
    assert reader(engine, "gone@example.org").email_status == "suspended"
    assert reader(engine, "bob@example.org").email_status == "confirmed"
    ((status, error),) = deliveries(engine, "gone@example.org")
    assert status == "failed" and error is not None and error.startswith("bounced: 5.")
    assert len(box) == 0 and len(box.get_folder(BOUNCES)) == 1


async def test_a_delay_notice_is_counted_as_a_soft_bounce_and_stops_nothing(
    engine: Engine, smtp: SmtpServer, tmp_path: Path
) -> None:
    mails = await mailed(engine, smtp, ["slow@example.org"])
    box = mailbox.Maildir(tmp_path / "Maildir")
    box.add(returned("postfix-delayed-4.4.1.eml", "slow@example.org", mails["slow@example.org"]))

    read_maildir(engine, LINKS, tmp_path / "Maildir")

    slow = reader(engine, "slow@example.org")
    assert (slow.email_status, slow.soft_bounces) == ("confirmed", 1)
    assert deliveries(engine, "slow@example.org") == [("sent", None)]


async def test_a_bounce_for_an_address_never_mailed_changes_nothing(
    engine: Engine, smtp: SmtpServer, tmp_path: Path
) -> None:
    mails = await mailed(engine, smtp, ["ann@example.org"])
    box = mailbox.Maildir(tmp_path / "Maildir")
    box.add(returned("postfix-5.1.1.eml", "stranger@example.org", mails["ann@example.org"]))

    handled = read_maildir(engine, LINKS, tmp_path / "Maildir")

    assert (handled.bounced, handled.refused) == ([], 1)
    assert reader(engine, "ann@example.org").email_status == "confirmed"
    assert len(box.get_folder(REFUSED)) == 1


async def test_a_forged_bounce_returning_another_readers_mail_changes_nothing(
    engine: Engine, smtp: SmtpServer, tmp_path: Path
) -> None:
    """Someone who has Bob's mail writes a DSN saying Ann's address is dead."""
    mails = await mailed(engine, smtp, ["ann@example.org", "bob@example.org"])
    mailbox.Maildir(tmp_path / "Maildir").add(
        returned("exim-5.0.0.eml", "ann@example.org", mails["bob@example.org"])
    )

    handled = read_maildir(engine, LINKS, tmp_path / "Maildir")

    assert (handled.bounced, handled.refused) == ([], 1)
    assert reader(engine, "ann@example.org").email_status == "confirmed"
    assert deliveries(engine, "ann@example.org") == [("sent", None)]


async def test_a_malformed_report_is_filed_for_a_human_and_changes_nothing(
    engine: Engine, smtp: SmtpServer, tmp_path: Path
) -> None:
    mails = await mailed(engine, smtp, ["ann@example.org"])
    broken = returned("postfix-5.1.1.eml", "ann@example.org", mails["ann@example.org"])
    broken = broken.replace(b"Status: 5.1.1", b"Status: gone")
    box = mailbox.Maildir(tmp_path / "Maildir")
    box.add(broken)

    handled = read_maildir(engine, LINKS, tmp_path / "Maildir")

    assert (handled.bounced, handled.refused) == ([], 1)
    assert reader(engine, "ann@example.org").email_status == "confirmed"
    assert len(box.get_folder(REFUSED)) == 1


async def test_a_bounce_for_a_deleted_reader_is_refused(
    engine: Engine, smtp: SmtpServer, tmp_path: Path
) -> None:
    mails = await mailed(engine, smtp, ["ann@example.org", "bob@example.org"])
    with Session(engine) as session:
        session.delete(
            session.exec(select(Subscriber).where(Subscriber.email == "ann@example.org")).one()
        )
        session.commit()
    mailbox.Maildir(tmp_path / "Maildir").add(
        returned("postfix-5.1.1.eml", "ann@example.org", mails["ann@example.org"])
    )

    handled = read_maildir(engine, LINKS, tmp_path / "Maildir")

    assert (handled.bounced, handled.refused) == ([], 1)
    assert reader(engine, "bob@example.org").email_status == "confirmed"


async def test_the_service_acts_on_bounces_at_every_poll(
    engine: Engine, smtp: SmtpServer, tmp_path: Path, signing_key: None
) -> None:
    mails = await mailed(engine, smtp, ["gone@example.org"])
    mailbox.Maildir(tmp_path / "Maildir").add(
        returned("postfix-5.1.1.eml", "gone@example.org", mails["gone@example.org"])
    )
    jobs = Jobs(engine, [], Inbox(tmp_path / "inbox"), unsubscribe_maildir=tmp_path / "Maildir")

    await jobs.poll()

    assert reader(engine, "gone@example.org").email_status == "suspended"
