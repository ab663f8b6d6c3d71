"""Unsubscribing by mail: a real daily mail goes through a real SMTP server, its reader's
mail client answers the `mailto:` of `List-Unsubscribe`, and the request lands in a Maildir."""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter.cli import with_plugins
from newsletter.config import get_settings
from newsletter.inbox import Inbox
from newsletter.mail.unsubscribes import DONE, REFUSED, read_maildir
from newsletter.models import Subscriber
from newsletter.scheduler import Jobs
from tests.mailing import LINKS, SmtpServer, mailed, signing_key, smtp_server

__all__ = ["signing_key"]  # a fixture, used by name


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from smtp_server()


def answer(mail: EmailMessage) -> EmailMessage:
    """What a mail client sends for the `mailto:` in `List-Unsubscribe`."""
    (mailto,) = re.findall(r"<(mailto:[^>]+)>", str(mail["List-Unsubscribe"]))
    parts = urlsplit(mailto)
    request = EmailMessage()
    request["From"] = mail["To"]
    request["To"] = unquote(parts.path)
    request["Subject"] = parse_qs(parts.query)["subject"][0]
    request.set_content("")
    return request


def other(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["Subject"] = "ann@example.org", subject
    message.set_content("thanks!")
    return message


def status(engine: Engine, address: str) -> str | None:
    with Session(engine) as session:
        return (
            session.exec(select(Subscriber).where(Subscriber.email == address)).one().email_status
        )


def subjects(box: mailbox.Maildir) -> list[str]:
    return sorted(str(m["Subject"]) for m in box)


async def test_the_mailto_request_unsubscribes_its_reader_and_is_filed(
    engine: Engine, smtp: SmtpServer, tmp_path: Path
) -> None:
    mails = await mailed(engine, smtp, ["ann@example.org", "bob@example.org"])
    box = mailbox.Maildir(tmp_path / "Maildir")
    box.add(answer(mails["ann@example.org"]))
    box.add(other("Re: your papers today"))

    handled = read_maildir(engine, LINKS, tmp_path / "Maildir")

    assert handled.unsubscribed == ["ann@example.org"]
    assert status(engine, "ann@example.org") == "unsubscribed"
    assert status(engine, "bob@example.org") == "confirmed"
    assert subjects(box) == ["Re: your papers today"]  # a reader's reply is left alone
    assert len(box.get_folder(DONE)) == 1


async def test_a_forged_token_changes_nothing_and_is_filed_for_a_human(
    engine: Engine, smtp: SmtpServer, tmp_path: Path
) -> None:
    mails = await mailed(engine, smtp, ["ann@example.org"])
    forged = answer(mails["ann@example.org"])
    forged.replace_header("Subject", str(forged["Subject"])[:-4] + "AAAA")
    box = mailbox.Maildir(tmp_path / "Maildir")
    box.add(forged)

    handled = read_maildir(engine, LINKS, tmp_path / "Maildir")

    assert (handled.unsubscribed, handled.refused) == ([], 1)
    assert status(engine, "ann@example.org") == "confirmed"
    assert len(box) == 0
    assert len(box.get_folder(REFUSED)) == 1


async def test_the_service_reads_the_requests_before_polling_for_digests(
    engine: Engine, smtp: SmtpServer, tmp_path: Path, signing_key: None
) -> None:
    mails = await mailed(engine, smtp, ["ann@example.org"])
    mailbox.Maildir(tmp_path / "Maildir").add(answer(mails["ann@example.org"]))
    jobs = Jobs(engine, [], Inbox(tmp_path / "inbox"), unsubscribe_maildir=tmp_path / "Maildir")
    await jobs.poll()
    assert status(engine, "ann@example.org") == "unsubscribed"


def test_a_folder_that_is_no_maildir_is_refused_clearly(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(mailbox.NoSuchMailboxError, match=str(tmp_path)):
        read_maildir(engine, LINKS, tmp_path)


def test_the_command_names_a_folder_that_is_no_maildir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    done = CliRunner().invoke(with_plugins(), ["email", "unsubscribes", "--maildir", "nope"])
    get_settings.cache_clear()
    assert done.exit_code == 2
    assert "nope is not a Maildir" in done.output
