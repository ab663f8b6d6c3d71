"""An outbox folder that cannot be written holds the mails instead of leaving them claimed:
they go back to the queue with their attempt given back, and sending pauses with one line."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.mail.daily import queue_daily
from newsletter.mail.send import send_due
from newsletter.mail.transports import FileTransport
from newsletter.models import Delivery
from tests.mailing import CLOCK, Clock, composer, readers_with_papers


async def test_an_unusable_outbox_folder_puts_the_mails_back_unsent(
    engine: Engine, tmp_path: Path
) -> None:
    readers_with_papers(engine, ["ada@example.org", "bob@example.org"])
    queue_daily(engine, CLOCK)
    in_the_way = tmp_path / "outbox"
    in_the_way.write_text("a file where the folder should be")

    summary = await send_due(engine, FileTransport(in_the_way), composer(), clock=Clock())

    assert summary.sent == 0
    assert summary.paused is not None
    assert summary.paused.startswith(f"outbox folder {in_the_way} (PAPERBOY_OUTBOX_DIR) unusable")
    with Session(engine) as session:
        rows = list(session.exec(select(Delivery).where(Delivery.kind == "daily")))
    assert {(row.status, row.attempts, row.claimed_by) for row in rows} == {("pending", 0, None)}
    assert in_the_way.read_text() == "a file where the folder should be"
