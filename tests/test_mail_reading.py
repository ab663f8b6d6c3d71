"""A daily mail as a reader's client and a mail system see it: dated by its digest, plain
text wrapped for a terminal, marked as automatic, its long header folded."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine

from newsletter.mail.daily import queue_daily
from newsletter.mail.send import send_due
from newsletter.mail.templates import WRAP_AT
from newsletter.mail.transports import FileTransport
from tests.mailing import CLOCK, Clock, composer, readers_with_papers

SEED_DATE = "2026-09-09"  # the shipped capture's Daily Papers date


async def sent(engine: Engine, tmp_path: Path) -> tuple[EmailMessage, bytes]:
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    await send_due(engine, FileTransport(tmp_path), composer(), clock=Clock())
    (path,) = tmp_path.glob("*.eml")
    data = path.read_bytes()
    return email.message_from_bytes(data, policy=email.policy.default), data  # type: ignore[return-value]


async def test_the_mail_is_dated_by_its_digest_not_by_the_day_it_went_out(
    engine: Engine, tmp_path: Path
) -> None:
    mail, _ = await sent(engine, tmp_path)
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert CLOCK.date().isoformat() != SEED_DATE
    assert f"Your papers for {SEED_DATE}</h1>" in html
    assert str(mail["Subject"]).startswith(f"paperboy {SEED_DATE}:")


async def test_the_text_part_is_wrapped_for_a_terminal(engine: Engine, tmp_path: Path) -> None:
    mail, _ = await sent(engine, tmp_path)
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    lines = text.splitlines()
    long = [line for line in lines if len(line) > WRAP_AT and "://" not in line]
    assert long == []
    assert sum(1 for line in lines if line.startswith("  ") and len(line) > 60) > 20


async def test_the_mail_says_it_is_automatic(engine: Engine, tmp_path: Path) -> None:
    mail, _ = await sent(engine, tmp_path)
    assert mail["Auto-Submitted"] == "auto-generated"


async def test_list_unsubscribe_is_folded_and_still_names_both_ways_out(
    engine: Engine, tmp_path: Path
) -> None:
    mail, data = await sent(engine, tmp_path)
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    start = head.index("List-Unsubscribe:")
    folded = head[start:].split("\r\nList-Unsubscribe-Post")[0]
    assert all(len(line) <= 998 for line in folded.split("\r\n"))
    assert folded.count("\r\n ") == 1 and folded.split("\r\n")[1].startswith(" <mailto:")
    value = str(mail["List-Unsubscribe"])
    assert value.startswith("<http://paperboy.test/unsubscribe?token=") and ", <mailto:" in value
