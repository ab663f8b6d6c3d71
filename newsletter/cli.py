"""The `paperboy` command line."""

from __future__ import annotations

import json
import logging
import sys
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from newsletter.cli_common import EXIT_BAD_INPUT, EXIT_UNAVAILABLE, err, out
from newsletter.cli_common import fail as _fail
from newsletter.cli_common import open_engine as _engine
from newsletter.cli_errors import load_settings, unavailable
from newsletter.cli_feeds import feeds_app
from newsletter.cli_mail import email_app, subscribers_app, web
from newsletter.cli_quality import quality
from newsletter.cli_service import register as register_service
from newsletter.config import get_settings, log_warnings
from newsletter.db import DatabaseError, describe, open_database
from newsletter.failures import listed
from newsletter.feeds import queue_posts
from newsletter.inbox import digest_files, read_digest
from newsletter.ingest import IngestResult, Outcome
from newsletter.intake import take_digest
from newsletter.matcher import LIKE, explain
from newsletter.models import utcnow
from newsletter.optin import EmailStatus
from newsletter.pipeline import PaperHit, latest_digest_id, match_digest, match_query
from newsletter.queries import ListedPaper, UnknownDigest, list_digests, list_papers
from newsletter.query import QueryError
from newsletter.subscriptions import (
    SubscriptionError,
    Who,
    checked,
    list_subscriptions,
    topic_counts,
)
from newsletter.subscriptions import subscribe as subscribe_to
from newsletter.subscriptions import unsubscribe as unsubscribe_from
from newsletter.topics import catalogue
from newsletter.words import spans, stems

app = typer.Typer(
    help="paperboy: research-paper digests matched to your topics.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(email_app, name="email")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(feeds_app, name="feeds")
app.command()(web)
app.command()(quality)
register_service(app)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every event.")] = False,
) -> None:
    try:
        settings = load_settings()
    except ValueError as problem:
        raise _fail(str(problem), EXIT_BAD_INPUT) from None
    level = logging.INFO if verbose else settings.log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log_warnings(settings)


def _report(result: IngestResult) -> None:
    origin = Text(f"{result.origin}: ", style="bold")
    if result.outcome is Outcome.STORED:
        line = Text.assemble(
            origin,
            (f"stored as digest {result.digest_id}", "green"),
            f" ({result.source_format}, {result.digest_date}): {result.papers} papers, "
            f"{result.new} new, {result.updated} updated",
        )
    elif result.outcome is Outcome.ALREADY:
        line = Text.assemble(
            origin, (f"already ingested as digest {result.digest_id}", "yellow"), ", nothing new"
        )
    else:
        line = Text.assemble(
            origin, (f"empty {result.source_format} digest", "yellow"), ", nothing stored"
        )
    out.print(line)
    if result.outcome is Outcome.STORED and result.date_note and "no year" in result.date_note:
        out.print(Text(f"  {result.date_note}", style="dim"))
    for warning in result.warnings:
        out.print(Text(f"  warning: {warning}", style="yellow"))


@app.command()
def ingest(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Digest files or folders; '-' reads standard input. Default: the inbox."
        ),
    ] = None,
) -> None:
    """Parse digests and store their papers; a digest already stored is skipped.

    Each digest is one transaction: a malformed one is rejected whole, with the file and the
    line or JSON path that is wrong, and the others still go in. Exit code 2 if any was bad,
    1 if the database could not take one (read-only, locked, full).
    A stored digest is matched to every topic and its Discord posts are queued, as when the
    service finds it in the inbox.
    """
    if not paths:
        inbox = get_settings().inbox_dir
        if not inbox.is_dir():
            raise _fail(
                f"inbox folder {inbox} does not exist: give digest paths, or create it "
                "(PAPERBOY_INBOX_DIR)",
                EXIT_BAD_INPUT,
            )
        paths = [str(inbox)]
    names = list(digest_files(paths))
    if not names:
        raise _fail(f"no digest files in {', '.join(paths)}", EXIT_BAD_INPUT)
    engine = _engine()
    results, bad, unavailable = [], 0, False
    for name in names:
        origin = "<stdin>" if name == "-" else name
        try:
            data = read_digest(name)
        except OSError as problem:
            err.print(Text(f"error: {origin}: cannot read: {problem.strerror}", style="red"))
            bad += 1
            continue
        taken = take_digest(engine, data, origin, utcnow(), retry_now=True, quiet=True)
        if taken.result is None:
            err.print(Text(f"error: {origin}: {taken.error}", style="red"))
            bad += 1
            unavailable = unavailable or taken.unavailable
            continue
        _report(taken.result)
        results.append(taken.result)
        if taken.taken is not None:
            out.print(
                f"  matched {taken.taken.topics} topic(s); {taken.taken.deliveries} Discord "
                "post(s) and DM(s) queued; daily mails take it in at each reader's hour"
            )
    stored = [r for r in results if r.outcome is Outcome.STORED]
    out.print(
        f"{len(names)} digest(s): {len(stored)} stored "
        f"({sum(r.new for r in stored)} new papers, {sum(r.updated for r in stored)} updated), "
        f"{sum(r.outcome is Outcome.ALREADY for r in results)} already ingested, "
        f"{sum(r.outcome is Outcome.EMPTY for r in results)} empty, {bad} rejected; "
        f"database: {describe(get_settings().database_url)}"
    )
    if bad:
        raise typer.Exit(EXIT_UNAVAILABLE if unavailable else EXIT_BAD_INPUT)


def _paper_json(item: ListedPaper) -> dict[str, Any]:
    paper = item.paper
    data = paper.model_dump(exclude={"title_key"})
    data["first_seen_at"] = paper.first_seen_at.isoformat()
    data["updated_at"] = paper.updated_at.isoformat()
    if item.position is not None:
        data["position"] = item.position
        data["announce_type"] = item.announce_type
    return data


def _authors(authors: list[str]) -> str:
    return ", ".join(authors[:2]) + (" et al." if len(authors) > 2 else "")


@app.command()
def papers(
    digest: Annotated[
        int | None, typer.Option(help="Only this digest's papers, in its order.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Show at most this many.")] = None,
) -> None:
    """List stored papers."""
    try:
        items = list_papers(_engine(), digest, limit)
    except UnknownDigest as problem:
        raise _fail(str(problem), EXIT_BAD_INPUT) from None
    if as_json:
        sys.stdout.write(json.dumps([_paper_json(i) for i in items], ensure_ascii=False, indent=2))
        sys.stdout.write("\n")
        return
    table = Table(title=f"digest {digest}" if digest else "papers", show_lines=False)
    table.add_column("#" if digest else "id", justify="right")
    table.add_column("arXiv")
    table.add_column("title", overflow="fold")
    table.add_column("authors", overflow="fold", max_width=30)
    table.add_column("▲", justify="right")
    for item in items:
        table.add_row(
            str(item.position if digest else item.paper.id),
            item.paper.arxiv_id or "-",
            Text(item.paper.title),
            Text(_authors(item.paper.authors)),
            "" if item.paper.upvotes is None else str(item.paper.upvotes),
        )
    out.print(table)
    out.print(f"{len(items)} paper(s)")


@app.command()
def digests(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only the digests that failed to go in.")
    ] = False,
) -> None:
    """List ingested digests with their dates and where each date came from, then the
    digests that failed (which input, why, since when, the next try)."""
    engine = _engine()
    rows = [] if failed else list_digests(engine)
    failures = listed(engine)
    if as_json:
        if failed:
            data = [f.model_dump(mode="json", exclude={"id"}) for f in failures]
        else:
            data = [
                row.model_dump(mode="json", exclude={"content_hash"}) | {"sha256": row.content_hash}
                for row in rows
            ]
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return
    if not failed and not rows:
        out.print("no digests stored yet: `paperboy ingest PATH` stores some")
    if rows:
        table = Table(title="digests")
        for name in ("id", "date", "format", "papers", "origin", "date from"):
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(
                str(row.id),
                row.digest_date.isoformat(),
                row.source_format,
                str(row.paper_count),
                Text(row.origin),
                Text(row.date_note, style="dim"),
            )
        out.print(table)
    if failures:
        table = Table(title="digests that failed (tried again after the next try time)")
        for name in ("input", "error", "first seen", "last seen", "tries", "next try"):
            table.add_column(name, overflow="fold")
        for failure in failures:
            table.add_row(
                Text(failure.origin),
                Text(failure.error, style="red"),
                f"{failure.first_seen_at:%Y-%m-%d %H:%M}",
                f"{failure.last_seen_at:%Y-%m-%d %H:%M}",
                str(failure.attempts),
                f"{failure.next_retry_at:%Y-%m-%d %H:%M}",
            )
        out.print(table)
    elif failed:
        out.print("no digest has failed")


def _who(email: str | None, discord: int | None) -> Who:
    if email is None and discord is None:
        raise _fail("say who: --email ADDRESS or --discord USER_ID", EXIT_BAD_INPUT)
    return Who(email, discord)


EmailOption = Annotated[str | None, typer.Option("--email", help="The subscriber's address.")]
DiscordOption = Annotated[
    int | None, typer.Option("--discord", help="The subscriber's Discord user id.")
]
TopicArgument = Annotated[
    str, typer.Argument(help="A catalogue topic (see `paperboy topics`) or a query of your own.")
]


def _refuse(problem: Exception) -> typer.Exit:
    if isinstance(problem, QueryError):
        err.print(Text(problem.pointer(), style="red"))
    return _fail(str(problem), EXIT_BAD_INPUT)


@app.command()
def topics() -> None:
    """The topic catalogue and people's own queries, with how many follow each."""
    table = Table(title="topics")
    table.add_column("topic", no_wrap=True)
    table.add_column("name", min_width=22)
    table.add_column("query", overflow="ellipsis", no_wrap=True, max_width=40)
    table.add_column("subscribers", justify="right")
    table.add_column("channels", justify="right")
    described = {entry.slug: entry.description for entry in catalogue()}
    for row in topic_counts(_engine()):
        description = described.get(row.topic.slug or "", "")
        table.add_row(
            row.topic.slug or "(query)",
            Text.assemble(row.topic.name, ("\n" + description if description else "", "dim")),
            Text(row.topic.query, style="dim"),
            str(row.subscribers),
            str(row.channel_feeds),
        )
    out.print(table)


@app.command()
def subscribe(
    topic: TopicArgument,
    email: EmailOption = None,
    discord: DiscordOption = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA time zone for the daily mail, e.g. Europe/Paris.")
    ] = None,
    hour: Annotated[int | None, typer.Option(help="Local hour (0-23) of the daily mail.")] = None,
) -> None:
    """Subscribe someone to a catalogue topic or to a query of their own."""
    try:
        who = checked(_who(email, discord))
        subscribed = subscribe_to(_engine(), who, topic, timezone, hour)
    except (SubscriptionError, QueryError) as problem:
        raise _refuse(problem) from None
    out.print(Text(f"{who.email or discord} subscribed to {subscribed.name!r}"))


@app.command()
def unsubscribe(
    topic: TopicArgument, email: EmailOption = None, discord: DiscordOption = None
) -> None:
    """End one subscription."""
    try:
        who = checked(_who(email, discord))
        ended = unsubscribe_from(_engine(), who, topic)
    except (SubscriptionError, QueryError) as problem:
        raise _refuse(problem) from None
    out.print(Text(f"{who.email or discord} unsubscribed from {ended.name!r}"))


_NO_MAIL = {
    EmailStatus.PENDING: "the address is not confirmed yet",
    EmailStatus.UNSUBSCRIBED: "its owner unsubscribed",
    EmailStatus.SUSPENDED: "the address was suspended after hard bounces",
}


@app.command()
def subscriptions(email: EmailOption = None, discord: DiscordOption = None) -> None:
    """Everyone's subscriptions, or one person's."""
    who = None if email is None and discord is None else Who(email, discord)
    try:
        rows = list_subscriptions(_engine(), who)
    except SubscriptionError as problem:
        raise _refuse(problem) from None
    table = Table(title="subscriptions")
    for name in ("email", "discord", "time zone", "hour", "topic"):
        table.add_column(name, overflow="fold")
    for row in rows:
        person = row.subscriber
        table.add_row(
            person.email or "",
            str(person.discord_user_id or ""),
            person.timezone,
            str(person.delivery_hour),
            Text(row.topic.name),
        )
    out.print(table)
    # Topics are kept when an address leaves mail (Discord keeps using them): say so.
    silent = {
        row.subscriber.email: row.subscriber.email_status
        for row in rows
        if row.subscriber.email and row.subscriber.email_status != EmailStatus.CONFIRMED
    }
    for address, state in silent.items():
        out.print(Text(f"No daily mail goes to {address}: {_NO_MAIL.get(state or '', state)}."))


def _highlighted(text: str, hit: PaperHit, limit: int | None = None, style: str = "") -> Text:
    """The text with the words that made the match in bold yellow, cut to `limit` characters."""
    wanted = {
        word for term in hit.terms if not term.startswith(("cat:", LIKE)) for word in stems(term)
    }
    cut = text if limit is None or len(text) <= limit else text[:limit] + "…"
    shown = Text(cut, style=style)
    for word, start, end in spans(shown.plain):
        if word in wanted:
            shown.stylize("bold yellow", start, end)
    return shown


@app.command()
def match(
    digest: Annotated[int | None, typer.Option(help="Digest to match (default: newest).")] = None,
    query: Annotated[
        str | None, typer.Option(help="Try one query instead of matching every topic.")
    ] = None,
) -> None:
    """Match a digest's papers to topics, or try out a query, showing why each paper matched.

    Without --query every topic is matched and the matches are stored for delivery.
    """
    engine = _engine()
    digest_id = digest if digest is not None else latest_digest_id(engine)
    if digest_id is None:
        raise _fail("no digests stored yet: `paperboy ingest PATH` first", EXIT_BAD_INPUT)
    try:
        if query is not None:
            hits = match_query(engine, digest_id, query)
            results = None
        else:
            results = match_digest(engine, digest_id)
    except (QueryError, UnknownDigest) as problem:
        raise _refuse(problem) from None
    if results is None:
        table = Table(title=f"digest {digest_id}: {query}")
        for name in ("score", "paper", "why"):
            table.add_column(name, overflow="fold")
        for hit in hits:
            table.add_row(
                f"{hit.score:g}",
                Text.assemble(
                    _highlighted(hit.paper.title, hit),
                    "\n",
                    _highlighted(hit.paper.abstract, hit, limit=300, style="dim"),
                ),
                Text(explain(hit.terms)),
            )
        out.print(table)
        out.print(f"{len(hits)} paper(s) match")
        return
    for result in results:
        if not result.hits:
            continue
        out.print(Text(f"{result.topic.name}: {len(result.hits)} paper(s)", style="bold"))
        for hit in result.hits:
            out.print(Text.assemble(f"  {hit.score:>5g}  ", _highlighted(hit.paper.title, hit)))
    stored = sum(len(r.hits) for r in results)
    out.print(f"{stored} match(es) over {len(results)} topics stored for digest {digest_id}")
    queued = queue_posts(engine, digest_id)
    out.print(f"{queued} Discord post(s) and DM(s) queued (`paperboy deliver` sends them)")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (every command also does this on first use)."""
    url = get_settings().database_url
    try:
        open_database(url, revision)
    except DatabaseError as problem:
        raise _fail(str(problem), EXIT_UNAVAILABLE) from None
    out.print(f"database {describe(url)} at revision {revision}")


def with_plugins() -> typer.Typer:
    """The app with the commands other packages add through the `paperboy.cli` entry point:
    `deliver` and `bot ...` come from the bot package, so newsletter never imports discord."""
    for plugin in entry_points(group="paperboy.cli"):
        if plugin.value not in _loaded:
            _loaded.add(plugin.value)
            plugin.load()(app)
    return app


_loaded: set[str] = set()


def run() -> None:
    """The `paperboy` console script: a database, file or port that is unavailable ends it
    with one line and exit 1, wherever in a command it shows."""
    try:
        with_plugins()()
    except Exception as problem:
        line = unavailable(problem)
        if line is None:
            raise
        err.print(Text(f"error: {line}", style="red"))
        sys.exit(EXIT_UNAVAILABLE)
