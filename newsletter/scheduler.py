"""The service's clockwork: APScheduler jobs that poll, queue and send.

- `poll` (leader only): new digest files in the inbox and new documents at the configured
  URLs are ingested, matched and their Discord posts queued, each digest on its own (a
  failing one is recorded and skipped, see `intake`); `send` is woken at once.
- `queue` (leader only): the daily mail of every reader whose local delivery hour has come.
  Queueing is keyed per reader and local day, so it can run as often as one likes; after
  downtime the first run queues every mail whose hour passed meanwhile (a whole day missed
  lands in the next day's mail, which holds every paper since the last one).
- `send` (every process): each sender sends what is due; retries are rows whose backoff ran
  out, so this job is also the retry job.
- `lead` (every process): take or keep the leader's lock, and report this process in the
  `worker` table for `paperboy status`.

Jobs coalesce (a backlog of missed runs runs once), have a misfire grace time and never run
twice at once. Stopping pauses the scheduler, lets running jobs finish for a grace period,
then cancels them and gives their claimed deliveries back to the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, delete
from sqlmodel import Session, col

from newsletter.db import writing
from newsletter.failures import one_line
from newsletter.fetch import poll_urls
from newsletter.inbox import Inbox
from newsletter.ingest import IngestResult, Outcome
from newsletter.leadership import Leadership
from newsletter.mail.daily import queue_daily
from newsletter.mail.links import links_for
from newsletter.mail.unsubscribes import read_maildir
from newsletter.models import Worker, utcnow
from newsletter.outbox import Summary, release, worker_name
from newsletter.service import Part, Sender

log = logging.getLogger(__name__)

FORGOTTEN = timedelta(minutes=10)


@dataclass(frozen=True)
class Intervals:
    poll: float = 600.0
    queue: float = 300.0
    send: float = 60.0
    lead: float = 15.0
    """How often a follower tries for the lead: the longest a leader's death goes unnoticed."""
    grace: float = 20.0
    """How long a stop waits for running jobs before cancelling them."""


class Jobs:
    """What the service does, one coroutine each, reading the time from `clock`.

    Kept apart from APScheduler so a test can drive them through a simulated week.
    """

    def __init__(
        self,
        engine: Engine,
        senders: Sequence[Sender],
        inbox: Inbox,
        urls: Sequence[str] = (),
        clock: Callable[[], datetime] = utcnow,
        unsubscribe_maildir: Path | None = None,
    ) -> None:
        self.engine, self.senders, self.inbox, self.urls = engine, senders, inbox, urls
        self.clock, self.unsubscribe_maildir = clock, unsubscribe_maildir

    async def poll(self) -> list[int]:
        """Ingest what is new, match it and queue its posts; returns the new digests' ids.
        Unsubscribe requests that came by mail are acted on first, so nobody who asked to
        leave is sent the next digest. Each digest stands alone (`intake`): one that fails
        is recorded and the others, the inbox's and the sources', still go in."""
        if self.unsubscribe_maildir is not None:
            links = await asyncio.to_thread(links_for, self.engine)
            await asyncio.to_thread(read_maildir, self.engine, links, self.unsubscribe_maildir)
        now = self.clock()
        results: list[IngestResult] = []
        try:
            results += await asyncio.to_thread(self.inbox.ingest_new, self.engine, now)
        except Exception as problem:
            folder, why = self.inbox.folder, one_line(problem)
            log.error("inbox %s: poll failed, sources polled anyway: %s", folder, why)
        results += await poll_urls(self.engine, self.urls, now)
        return [r.digest_id for r in results if r.outcome is Outcome.STORED and r.digest_id]

    async def queue(self) -> int:
        queued = await asyncio.to_thread(queue_daily, self.engine, self.clock())
        if queued:
            log.info("queued %d daily mail(s)", queued)
        return queued

    async def send(self) -> dict[str, Summary]:
        summaries = {}
        for sender in self.senders:
            summary = summaries[sender.name] = await sender.send_due()
            if summary.sent or summary.retried or summary.failed:
                log.info(
                    "%s: %d sent, %d to retry, %d failed, %d skipped (%s)",
                    sender.name,
                    summary.sent,
                    summary.retried,
                    summary.failed,
                    summary.skipped,
                    sender.description,
                )
        return summaries


class Service:
    """The scheduler, the leader's lock and the parts, run until `stop` is set."""

    def __init__(
        self,
        jobs: Jobs,
        parts: Sequence[Part] = (),
        intervals: Intervals | None = None,
        worker: str | None = None,
    ) -> None:
        self.jobs, self.parts = jobs, parts
        self.intervals = intervals or Intervals()
        self.worker = worker or worker_name()
        self.leadership = Leadership(jobs.engine)
        self.started_at = utcnow()
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        self._running: set[asyncio.Task[object]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Start everything, run until `stop` is set or a part dies, then stop cleanly.

        Raises what killed a part, after the clean stop, so the caller can exit non-zero and
        a supervisor restarts the process.
        """
        tasks = []
        started: list[Part] = []
        try:
            for part in self.parts:
                task = await part.start()
                started.append(part)
                if task is not None:
                    tasks.append(task)
            self._schedule()
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({stopping, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        finally:
            await self._shutdown(started)
        for task in done:
            if task is not stopping and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def _schedule(self) -> None:
        now = datetime.now(UTC)
        every = self.intervals
        for job, seconds in (
            (self._lead, every.lead),
            (self._poll, every.poll),
            (self._queue, every.queue),
            (self._send, every.send),
        ):
            name = job.__name__.strip("_")
            self.scheduler.add_job(
                self._tracked(job),
                "interval",
                seconds=seconds,
                id=name,
                name=name,
                next_run_time=now,
            )
        self.scheduler.start()
        log.info(
            "%s started: jobs %s", self.worker, ", ".join(j.id for j in self.scheduler.get_jobs())
        )

    def _tracked(self, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """The job, registered while it runs so a stop can wait for it; a failure is logged
        and the job runs again at its next time."""

        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await job()
            except Exception:
                log.exception("job %s failed; it runs again at its next time", job.__name__)
            finally:
                self._running.discard(task)

        run.__name__ = job.__name__
        return run

    def _wake(self, job_id: str) -> None:
        job = self.scheduler.get_job(job_id)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    async def _lead(self) -> None:
        was = self.leadership.held
        leads = await asyncio.to_thread(self.leadership.try_acquire)
        if leads and not was:
            log.info("%s leads: it polls sources and queues mails", self.worker)
            self._wake("poll")
            self._wake("queue")
        elif was and not leads:
            log.warning("%s no longer leads", self.worker)
        await asyncio.to_thread(self._report, leads)

    async def _poll(self) -> None:
        if self.leadership.held and await self.jobs.poll():
            self._wake("send")

    async def _queue(self) -> None:
        if self.leadership.held and await self.jobs.queue():
            self._wake("send")

    async def _send(self) -> None:
        await self.jobs.send()

    def _report(self, leads: bool) -> None:
        """This process's row in `worker`: alive, leading or not, when its jobs run next. The
        leader also clears the rows of processes that died without saying so (SIGKILL, a
        lost machine) once `FORGOTTEN` has passed; until then `paperboy status` shows them
        as not seen for a while."""
        now = utcnow()
        next_runs = {
            job.id: job.next_run_time.astimezone(UTC).replace(tzinfo=None).isoformat()
            for job in self.scheduler.get_jobs()
            if job.next_run_time is not None
        }
        with Session(writing(self.jobs.engine)) as session, session.begin():
            row = session.get(Worker, self.worker) or Worker(
                name=self.worker, started_at=self.started_at, seen_at=now
            )
            row.leader, row.seen_at, row.next_runs = leads, now, next_runs
            session.add(row)
            if leads:
                session.execute(
                    delete(Worker).where(col(Worker.seen_at) < now - FORGOTTEN)  # type: ignore[arg-type]
                )

    async def _shutdown(self, started: Sequence[Part]) -> None:
        log.info("%s stopping", self.worker)
        if self.scheduler.running:
            self.scheduler.pause()
            if self._running:
                await asyncio.wait(set(self._running), timeout=self.intervals.grace)
            self.scheduler.shutdown(wait=False)  # cancels what still runs
            for task in list(self._running):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await asyncio.to_thread(release, self.jobs.engine, self.worker)
        for part in reversed(started):
            try:
                await part.stop()
            except Exception:
                log.exception("stopping %s failed", part.name)
        for sender in self.jobs.senders:
            await sender.close()
        await asyncio.to_thread(self._forget)
        log.info("%s stopped", self.worker)

    def _forget(self) -> None:
        self.leadership.release()
        with Session(writing(self.jobs.engine)) as session, session.begin():
            session.execute(delete(Worker).where(Worker.name == self.worker))  # type: ignore[arg-type]
