"""The mail sender: claim due mails from the outbox, build them, send them, settle them.

Mails are claimed in batches (one transaction each) and sent concurrently within a batch, as
many at once as the transport allows. A 5xx reply fails the delivery, and counts against the
address (suspended after three in a row) only when it refused the recipient itself; a 4xx
reply or a lost connection is retried with backoff. A refusal of the session (see
`transports`) pauses sending: the mails are held, their attempts given back, no reader
blamed. Between claim and settle a crash loses nothing: the claim's lease runs out and the
mail is sent again, with the same Message-ID. While a batch is worked its lease is renewed
(every third of a lease), so a batch that takes longer than one lease to send (a rate limit,
a slow relay) is not taken over by another sender; a mail whose lease was lost anyway is
left to the sender that took it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, update
from sqlmodel import Session, col, select

from newsletter.config import get_settings
from newsletter.mail import pause, webcopy
from newsletter.mail.compose import Composer, Mail, Recipient
from newsletter.mail.links import links_for
from newsletter.mail.templates import environment
from newsletter.mail.transports import (
    PermanentFailure,
    SessionRefused,
    TemporaryFailure,
    Transport,
    transport_from,
)
from newsletter.models import Delivery, Digest, Subscriber, utcnow
from newsletter.optin import EmailStatus, count_hard_failure
from newsletter.outbox import (
    LEASE,
    Outcome,
    Result,
    Summary,
    claim,
    due,
    renew,
    settle,
    worker_name,
)
from newsletter.sections import Window, followed_topics, sections_for

log = logging.getLogger(__name__)

MAIL_KINDS = ("daily", "confirm")
BATCH = 500


@dataclass(frozen=True)
class Draft:
    """A claimed delivery made into a mail, or the reason there is nothing to send."""

    delivery: Delivery
    mail: Mail | None
    skip: str | None = None


def build(
    engine: Engine,
    composer: Composer,
    deliveries: list[Delivery],
    *,
    keep_copies: bool = False,
    now: datetime | None = None,
) -> Iterator[Draft]:
    """Mails for a batch of deliveries: what they need is read in a few queries at the first
    draft asked for, then each mail is rendered only when asked for, so the sender renders
    while earlier mails are on the wire and holds a few rendered mails, not a batch.
    `keep_copies` (sending, not previewing): the daily mails' web copies are stored first."""
    with Session(engine) as session:
        ids = {d.subscriber_id for d in deliveries if d.subscriber_id is not None}
        # The columns used, not ORM objects: their set-up costs more than the query.
        needed = select(
            Subscriber.id,
            Subscriber.email,
            Subscriber.email_status,
            Subscriber.confirmation_sent_at,
        )
        readers = {s.id: s for s in session.exec(needed.where(col(Subscriber.id).in_(ids)))}
        topics = followed_topics(session, ids)
        windows = [
            Window(d.id, topics.get(d.subscriber_id, ()), d.after_digest_id or 0, d.digest_id)
            for d in deliveries
            if d.kind == "daily" and d.id is not None and d.digest_id is not None
        ]
        sections = sections_for(session, windows)
        digests = {d.digest_id for d in deliveries if d.digest_id is not None}
        dates = dict(
            session.exec(
                select(Digest.id, Digest.digest_date).where(col(Digest.id).in_(digests))
            ).all()
        )
    if keep_copies:
        sent = {d.id: sections[d.id] for d in deliveries if sections.get(d.id)}
        webcopy.keep(engine, sent, now or utcnow())
    for delivery in deliveries:
        reader = readers.get(delivery.subscriber_id)
        if reader is None or reader.email is None:
            yield Draft(delivery, None, "the subscriber is gone")
            continue
        to = Recipient(reader.id, reader.email)
        if delivery.kind == "confirm":
            if reader.email_status == EmailStatus.CONFIRMED:
                yield Draft(delivery, None, "already confirmed")
            else:
                code = composer.links.code(reader.id, reader.email, reader.confirmation_sent_at)
                yield Draft(delivery, composer.confirmation(delivery.key, to, code))
            continue
        if reader.email_status != EmailStatus.CONFIRMED:
            yield Draft(delivery, None, f"address is {reader.email_status}")
            continue
        found = sections.get(delivery.id, [])
        if not found:
            yield Draft(delivery, None, "no matched papers")
            continue
        day = dates.get(delivery.digest_id, delivery.day)
        yield Draft(delivery, composer.daily(delivery.key, delivery.id, to, day, found))


async def _send(transport: Transport, draft: Draft, paused: list[str]) -> Outcome:
    """One draft sent; once a session was refused (`paused` holds why), the rest are held
    unsent: the server would refuse them alike."""
    delivery_id = draft.delivery.id
    if draft.mail is None:
        return Outcome(delivery_id, Result.SKIPPED, draft.skip)
    if paused:
        return Outcome(delivery_id, Result.HELD, paused[0])
    try:
        await transport.send(draft.mail)
    except PermanentFailure as err:
        return Outcome(delivery_id, Result.FAILED, str(err), blames_reader=err.blames_reader)
    except SessionRefused as err:
        paused.append(str(err))
        return Outcome(delivery_id, Result.HELD, str(err))
    except TemporaryFailure as err:
        return Outcome(delivery_id, Result.RETRY, str(err))
    return Outcome(delivery_id, Result.SENT)


_READERS = Subscriber.__table__  # type: ignore[attr-defined]
_RESET_BOUNCES = (
    update(_READERS)
    .where(_READERS.c.id.in_(bindparam("ids", expanding=True)), _READERS.c.hard_failures != 0)
    .values(hard_failures=0)
)


def _bounces(
    suspended: list[str],
) -> Callable[[Connection, list[tuple[int | None, Outcome]]], None]:
    """Count hard failures in a row per address, in the transaction that settles the mail."""

    def record(connection: Connection, settled: list[tuple[int | None, Outcome]]) -> None:
        delivered = [s for s, outcome in settled if s is not None and outcome.result is Result.SENT]
        if delivered:  # the common case, kept to one cheap statement for the whole group
            connection.execute(_RESET_BOUNCES, {"ids": delivered})
        failed = [
            s
            for s, outcome in settled
            if s is not None and outcome.result is Result.FAILED and outcome.blames_reader
        ]
        if not failed:
            return
        with Session(bind=connection) as session:  # joins the settling transaction
            for subscriber_id in failed:
                reader = session.get(Subscriber, subscriber_id)
                if reader is not None and count_hard_failure(session, reader):
                    log.warning("suspended %s after repeated hard bounces", reader.email)
                    suspended.append(reader.email or "")
            session.flush()

    return record


class _Settler:
    """Records outcomes in groups.

    A commit costs far more than a row, so one starts only once half the lanes still running
    have an outcome waiting (all of them, when they are fewer than two): committing whatever
    had arrived made groups of one or two, back to back. A server database's commit waits
    on the network, so it runs in a worker thread while the loop sends (PostgreSQL bench:
    780 against 680 mails/s on the loop); SQLite's is a local call without a sync (WAL,
    synchronous=NORMAL), where the thread's hand-offs of the interpreter lock cost more than
    they overlap (1,170 against 930 mails/s). `settle` returns once its outcome is committed.
    """

    def __init__(
        self,
        engine: Engine,
        worker: str,
        clock: Callable[[], datetime],
        then: Callable[[Connection, list[tuple[int | None, Outcome]]], None],
        lanes: int,
    ) -> None:
        self._engine, self._worker, self._clock, self._then = engine, worker, clock, then
        self._lanes = lanes
        self._in_thread = engine.dialect.name != "sqlite"
        self._waiting: list[tuple[Outcome, asyncio.Future[None]]] = []
        self._committing: asyncio.Task[None] | None = None

    async def settle(self, outcome: Outcome) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, done))
        self._start()
        await done

    def lane_ended(self) -> None:
        self._lanes -= 1
        self._start()

    def _start(self) -> None:
        if self._committing is None and len(self._waiting) >= max(1, self._lanes // 2):
            self._committing = asyncio.create_task(self._commit())

    async def _commit(self) -> None:
        group, self._waiting = self._waiting, []
        outcomes = [outcome for outcome, _ in group]
        work = functools.partial(
            settle, self._engine, self._worker, outcomes, self._clock(), self._then
        )
        try:
            if self._in_thread:
                await asyncio.to_thread(work)
            else:
                work()
        except Exception as err:  # every mail of the group hears of it
            for _, done in group:
                done.set_exception(err)
        else:
            for _, done in group:
                done.set_result(None)
        finally:
            self._committing = None
            self._start()


async def _renewing(
    engine: Engine,
    worker: str,
    held: set[int],
    clock: Callable[[], datetime],
    lease: timedelta,
) -> None:
    """Keep the lease on the batch's rows in `held` until cancelled; rows found taken over
    (or settled) leave `held`, so the lanes do not send them."""
    in_thread = engine.dialect.name != "sqlite"
    while held:
        await asyncio.sleep(lease.total_seconds() / 3)
        work = functools.partial(renew, engine, worker, set(held), clock(), lease)
        try:
            kept = await asyncio.to_thread(work) if in_thread else work()
        except Exception as err:  # the batch goes on; the lease may run out as before
            log.warning("could not renew the lease on %d mails: %s", len(held), err)
            continue
        lost = held - kept
        held.intersection_update(kept)
        if lost:
            log.debug("lease renewed on %d mails, %d no longer held", len(kept), len(lost))


async def send_due(
    engine: Engine,
    transport: Transport,
    composer: Composer,
    *,
    worker: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    batch: int = BATCH,
    lease: timedelta = LEASE,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Send every mail that is due now; returns what happened to them.

    As many lanes as the transport has connections each send a mail and wait until its
    outcome is committed before taking the next, so at any moment at most one mail per
    connection is sent but not yet recorded: a crash repeats at most that many mails.
    """
    worker = worker or worker_name()
    summary = Summary()
    held = pause.current(engine)
    if held is not None and held.until > clock():
        summary.paused = held.reason
        return summary
    paused: list[str] = []

    async def lane(drafts: Iterator[Draft], settler: _Settler, held: set[int]) -> None:
        try:
            for draft in drafts:
                if draft.delivery.id not in held:
                    log.warning(
                        "delivery %s not sent: its lease ran out and another sender took it",
                        draft.delivery.id,
                    )
                    continue
                outcome = await _send(transport, draft, paused)
                await settler.settle(outcome)
                summary.add(outcome.result)
                if outcome.result in (Result.RETRY, Result.FAILED):
                    log.info("delivery %s %s: %s", draft.delivery.id, outcome.result, outcome.error)
                if progress is not None:
                    progress(1)
        finally:
            settler.lane_ended()

    while not paused:
        claimed = claim(engine, MAIL_KINDS, worker, clock(), batch, lease)
        if not claimed:
            break
        drafts = build(engine, composer, claimed, keep_copies=True, now=clock())
        lanes = transport.concurrency
        settler = _Settler(engine, worker, clock, _bounces(summary.suspended), lanes)
        held_ids = {d.id for d in claimed if d.id is not None}
        renewer = asyncio.create_task(_renewing(engine, worker, held_ids, clock, lease))
        try:
            await asyncio.gather(*(lane(drafts, settler, held_ids) for _ in range(lanes)))
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
    if paused:
        summary.paused = paused[0]
        until = pause.pause(engine, paused[0], clock()).until
        log.warning(
            "mail sending paused until %s UTC: %s", until.isoformat(" ", "seconds"), paused[0]
        )
    elif held is not None and summary.sent:
        pause.lift(engine)
        log.info("mail sending resumed")
    return summary


def preview_due(engine: Engine, composer: Composer, now: datetime) -> list[Draft]:
    """What `send_due` would send now, built but neither claimed nor sent (for --dry-run)."""
    with Session(engine) as session:
        rows = list(session.exec(select(Delivery).where(due(MAIL_KINDS, now))))
    return list(build(engine, composer, rows))


def configured(engine: Engine) -> tuple[Transport, Composer]:
    """The transport and composer the settings ask for (SMTP, or files in the outbox)."""
    settings = get_settings()
    composer = Composer(environment(), links_for(engine), settings.mail_from)
    return transport_from(settings), composer


def view_html(engine: Engine, composer: Composer, delivery_id: int, now: datetime) -> str | None:
    """A daily mail as a web page ("view in your browser"): the papers it held as sent (its
    web copy), every one of them, while the copy is kept (see `webcopy.KEPT_FOR`)."""
    copy = webcopy.shown(engine, delivery_id, now)
    if copy is None:
        return None
    to = Recipient(copy.subscriber_id, copy.email)
    context = composer.daily_context(delivery_id, to, copy.day, copy.sections)
    return composer.daily_html(context, whole=True)
