"""Double opt-in and list import: no digest reaches an address its owner did not confirm."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.db import writing
from newsletter.ingest import ingest_bytes
from newsletter.mail.daily import queue_daily
from newsletter.mail.links import Links
from newsletter.mail.send import send_due
from newsletter.mail.templates import TemplateError, environment
from newsletter.mail.transports import FileTransport
from newsletter.models import Delivery, Subscriber
from newsletter.optin import (
    MAX_CODE_ATTEMPTS,
    OptInError,
    confirm_with_code,
    read_import,
    request_confirmation,
)
from newsletter.pipeline import match_digest
from newsletter.subscriptions import SubscriptionError, Who, import_subscribers, subscribe
from tests.conftest import NOW, SEED
from tests.mailing import CLOCK, Clock, composer


def kinds(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [d.kind for d in session.exec(select(Delivery).order_by(Delivery.id))]


def reader(engine: Engine) -> Subscriber:
    with Session(engine) as session:
        return session.exec(select(Subscriber)).one()


def test_a_new_address_is_pending_and_gets_a_confirmation_mail_only(engine: Engine) -> None:
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    subscribe(engine, Who(email="ann@example.org"), "continual-learning", hour=0, now=CLOCK)
    match_digest(engine, digest.digest_id)

    assert reader(engine).email_status == "pending"
    assert queue_daily(engine, CLOCK) == 0
    assert kinds(engine) == ["confirm"]


def test_at_most_one_confirmation_mail_an_hour(engine: Engine) -> None:
    subscribe(engine, Who(email="ann@example.org"), "agents", now=CLOCK)
    with Session(engine) as session, session.begin():
        person = session.exec(select(Subscriber)).one()
        assert request_confirmation(session, person, CLOCK + timedelta(minutes=59)) is False
        assert request_confirmation(session, person, CLOCK + timedelta(minutes=61)) is True
    assert kinds(engine) == ["confirm", "confirm"]


async def test_the_code_in_the_confirmation_mail_confirms_the_address(
    engine: Engine, tmp_path: Path
) -> None:
    subscribe(engine, Who(email="ann@example.org"), "agents", now=CLOCK)
    await send_due(engine, FileTransport(tmp_path / "mail"), composer(), clock=Clock())
    (mail,) = (tmp_path / "mail").iterdir()
    person = reader(engine)
    links = Links("test-secret-key-of-32-characters", "http://paperboy.test")
    code = links.code(person.id, "ann@example.org", person.confirmation_sent_at)
    assert code in mail.read_text()
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(OptInError, match="not the one"):
        confirm_with_code(engine, "ann@example.org", wrong, links.code, CLOCK)
    assert reader(engine).email_status == "pending"
    confirm_with_code(engine, "ann@example.org", code, links.code, CLOCK)
    assert reader(engine).email_status == "confirmed"


def test_an_import_with_one_bad_row_adds_nobody(engine: Engine, tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text(
        "email,topics,timezone,hour\n"
        "ann@example.org,agents;diffusion,Europe/Paris,7\n"
        "not-an-address,agents,,\n"
    )
    with pytest.raises(SubscriptionError, match="row 2: 'not-an-address' is not an email"):
        import_subscribers(engine, read_import(listing), confirmed=True)
    with Session(engine) as session:
        assert session.exec(select(Subscriber)).all() == []


def test_an_import_vouched_for_is_confirmed_without_confirmation_mails(
    engine: Engine, tmp_path: Path
) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text("email,topics\nann@example.org,agents;diffusion\nbob@example.org,robotics\n")
    assert import_subscribers(engine, read_import(listing), confirmed=True) == 3
    with Session(engine) as session:
        assert {s.email_status for s in session.exec(select(Subscriber))} == {"confirmed"}
    assert kinds(engine) == []


def test_an_import_file_without_an_email_column_is_refused_by_line(tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text("address,topics\nann@example.org,agents\n")
    with pytest.raises(OptInError, match=r"list.csv: line 1: .*'email' column"):
        read_import(listing)


def test_own_templates_override_the_built_in_ones_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "daily.txt").write_text("custom {{ day }}")
    env = environment(tmp_path)
    assert env.get_template("mail/daily.txt").render(day="d") == "custom d"
    assert "<style" not in env.get_template("mail/daily.html").render(
        day="d",
        paper_count=0,
        sections=[],
        view_url="",
        manage_url="",
        unsubscribe_url="",
        email="a@b.c",
    )


def test_a_template_whose_loop_css_inlining_would_break_is_refused_by_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "daily.html").write_text(
        "<style>td{color:red}</style><table>{% for s in sections %}<tr><td>{{ s }}</td></tr>"
        "{% endfor %}</table>"
    )
    with pytest.raises(TemplateError, match=r"daily.html: inlining CSS moved Jinja tags"):
        environment(tmp_path).get_template("mail/daily.html")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"email,topics\n", r"people.csv: no subscribers after the header line"),
        (b"email,topics\n\xff\xfe,agents\n", r"people.csv: not UTF-8 text \(byte 13\)"),
    ],
    ids=["header-only", "not-utf8"],
)
def test_an_import_file_with_nobody_in_it_or_not_text_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    listing = tmp_path / "people.csv"
    listing.write_bytes(content)
    with pytest.raises(OptInError, match=message):
        read_import(listing)


def test_a_missing_import_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(OptInError, match=r"nothing.csv: cannot read: No such file or directory$"):
        read_import(tmp_path / "nothing.csv")


def test_five_wrong_codes_lock_the_code_until_a_new_confirmation_mail(engine: Engine) -> None:
    subscribe(engine, Who(email="ann@example.org"), "agents", now=CLOCK)
    person = reader(engine)
    links = Links("test-secret-key-of-32-characters", "http://paperboy.test")
    code = links.code(person.id, "ann@example.org", person.confirmation_sent_at)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(MAX_CODE_ATTEMPTS):
        with pytest.raises(OptInError, match="not the one"):
            confirm_with_code(engine, "ann@example.org", wrong, links.code, CLOCK)
    with pytest.raises(OptInError, match="too many wrong codes"):
        confirm_with_code(engine, "ann@example.org", code, links.code, CLOCK)
    assert reader(engine).email_status == "pending"
    later = CLOCK + timedelta(hours=2)
    with Session(writing(engine)) as session, session.begin():
        assert request_confirmation(session, session.get(Subscriber, person.id), later)
    fresh = links.code(person.id, "ann@example.org", later)
    confirm_with_code(engine, "ann@example.org", fresh, links.code, later)
    assert reader(engine).email_status == "confirmed"
