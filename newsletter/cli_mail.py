"""`paperboy email ...`, `paperboy subscribers ...` and `paperboy web`: the mail side."""

from __future__ import annotations

import asyncio
import mailbox
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from aiohttp import web as aioweb
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.cli_common import EXIT_BAD_INPUT, fail, open_engine, out, summary_table
from newsletter.config import get_settings
from newsletter.mail.compose import Composer, Recipient, body
from newsletter.mail.daily import local_day, preview_sections, queue_daily
from newsletter.mail.links import links_for
from newsletter.mail.send import configured, preview_due, send_due
from newsletter.mail.templates import TemplateError
from newsletter.mail.transports import Transport
from newsletter.mail.unsubscribes import REFUSED, read_maildir
from newsletter.models import Subscriber, utcnow
from newsletter.optin import OptInError, read_import, vouch
from newsletter.outbox import Summary
from newsletter.subscriptions import SubscriptionError, Who, checked, import_subscribers
from newsletter.web import make_app

email_app = typer.Typer(
    help="The daily mail: preview, send, and unsubscribe requests that came by mail.",
    no_args_is_help=True,
)
subscribers_app = typer.Typer(help="Email subscribers: confirm and import.", no_args_is_help=True)


def _address(text: str) -> str:
    try:
        email = checked(Who(email=text)).email
    except SubscriptionError as problem:
        raise fail(str(problem), EXIT_BAD_INPUT) from None
    assert email is not None
    return email


def configured_mail(engine: Engine) -> tuple[Transport, Composer]:
    try:
        return configured(engine)
    except TemplateError as problem:
        raise fail(str(problem), EXIT_BAD_INPUT) from None


@email_app.command("preview")
def preview(
    subscriber: Annotated[str, typer.Option(help="The subscriber's email address.")],
    open_: Annotated[bool, typer.Option("--open", help="Open the HTML in a browser.")] = False,
) -> None:
    """Write the HTML and text of the subscriber's next mail, without queueing or sending it."""
    email = _address(subscriber)
    engine = open_engine()
    with Session(engine) as session:
        reader = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    if reader is None or reader.id is None:
        raise fail(f"{email} is not a subscriber", EXIT_BAD_INPUT)
    now = utcnow()
    sections = preview_sections(engine, reader, now)
    _, composer = configured_mail(engine)
    day, _ = local_day(now, reader.timezone)
    mail = composer.daily("preview", 0, Recipient(reader.id, email), day, sections)
    folder = get_settings().outbox_dir / "preview"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for subtype, suffix in (("html", "html"), ("plain", "txt")):
        path = folder / f"{email}.{suffix}"
        path.write_text(body(mail.data, subtype) or "", encoding="utf-8")
        written.append(path)
    count = sum(len(s.papers) for s in sections)
    out.print(f"{email}: {count} paper(s) on {len(sections)} topic(s)")
    for path in written:
        out.print(f"  wrote {path}")
    if (status := reader.email_status) and status != "confirmed":
        out.print(Text(f"  note: the address is {status}: no mail goes there", style="yellow"))
    if open_:
        webbrowser.open(written[0].resolve().as_uri())


@email_app.command("unsubscribes")
def unsubscribes(
    maildir: Annotated[
        Path | None, typer.Option(help="Maildir to read (default: PAPERBOY_UNSUBSCRIBE_MAILDIR).")
    ] = None,
) -> None:
    """Act on unsubscribe requests (the mailto of List-Unsubscribe) and bounces that came by mail.

    `paperboy run` does this at every poll; this is for running it by hand or from cron.
    """
    folder = maildir or get_settings().unsubscribe_maildir
    if folder is None:
        raise fail("give --maildir or set PAPERBOY_UNSUBSCRIBE_MAILDIR", EXIT_BAD_INPUT)
    engine = open_engine()
    try:
        handled = read_maildir(engine, links_for(engine), folder)
    except mailbox.NoSuchMailboxError:
        raise fail(
            f"{folder} is not a Maildir (it needs cur/, new/ and tmp/)", EXIT_BAD_INPUT
        ) from None
    for address in handled.unsubscribed:
        out.print(f"unsubscribed {address}")
    for address in handled.bounced:
        out.print(f"bounced {address}")
    out.print(
        f"{len(handled.unsubscribed)} unsubscribed, {len(handled.bounced)} bounced,"
        f" {handled.refused} refused (forged, stale or unknown: filed in {folder}/.{REFUSED})"
    )


@email_app.command("send")
def send(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build what is due and count it; send nothing.")
    ] = False,
) -> None:
    """Queue the daily mails whose hour has come, then send every mail that is due."""
    engine = open_engine()
    transport, composer = configured_mail(engine)
    now = utcnow()
    if dry_run:
        drafts = preview_due(engine, composer, now)
        ready = sum(1 for d in drafts if d.mail is not None)
        out.print(
            f"dry run: {ready} mail(s) would be sent now, {len(drafts) - ready} skipped "
            "(queued mails only; daily mails are queued when sending for real)"
        )
        return
    queued = queue_daily(engine, now)
    with Progress(
        TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=out
    ) as bar:
        task = bar.add_task("send", total=None)

        async def run() -> Summary:
            try:
                return await send_due(
                    engine, transport, composer, progress=lambda n: bar.advance(task, n)
                )
            finally:
                await transport.close()

        summary = asyncio.run(run())
    title = f"email send: {queued} daily mail(s) queued, via {transport.description}"
    table = summary_table(title, {"mail": summary})
    out.print(table)
    for address in summary.suspended:
        out.print(Text(f"suspended after repeated hard bounces: {address}", style="yellow"))
    if summary.paused:
        out.print(Text(f"sending paused (no reader blamed): {summary.paused}", style="yellow"))


@subscribers_app.command("confirm")
def confirm_address(address: Annotated[str, typer.Argument(help="Email address.")]) -> None:
    """Confirm an address by hand (the owner confirmed some other way)."""
    email = _address(address)
    try:
        vouch(open_engine(), email, utcnow())
    except OptInError as problem:
        raise fail(str(problem), EXIT_BAD_INPUT) from None
    out.print(f"{email} confirmed: daily mail will go there")


@subscribers_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="CSV with columns email,topics[,timezone,hour].")],
    confirmed: Annotated[
        bool,
        typer.Option(
            "--confirmed",
            help="These people already agreed to get mail elsewhere: skip the confirmation mail.",
        ),
    ] = False,
) -> None:
    """Import subscribers from a CSV file; one bad row refuses the whole file."""
    try:
        rows = read_import(path)
        added = import_subscribers(open_engine(), rows, confirmed)
    except (OptInError, SubscriptionError) as problem:
        raise fail(
            f"{problem}" if str(path) in str(problem) else f"{path}: {problem}", EXIT_BAD_INPUT
        ) from None
    state = "confirmed" if confirmed else "pending until they confirm (a mail was queued)"
    out.print(f"{path}: {len(rows)} subscriber(s), {added} subscription(s) added; {state}")


def web() -> None:
    """Serve the pages links in mails lead to: confirm, unsubscribe, manage, view, /healthz."""
    settings = get_settings()
    engine = open_engine()
    _, composer = configured_mail(engine)
    where = f"http://{settings.web_host}:{settings.web_port} (links use {settings.base_url})"
    # Said once the port is bound: a port in use ends the command with one error line instead.
    aioweb.run_app(
        make_app(engine, composer),
        host=settings.web_host,
        port=settings.web_port,
        print=lambda _: out.print(f"serving on {where}"),
    )
