"""`paperboy run` as it runs in production: the installed console script in processes of its
own, a real database (a SQLite file; PostgreSQL for several processes), a real inbox folder,
real HTTP to `/healthz`, a real SMTP server (aiosmtpd on 127.0.0.1) and real signals
(SIGTERM to stop, SIGKILL to kill a leader). Discord posts are the JSON files the service
writes when it has no token. Only the clock is not faked: the service runs on real time, with
intervals of one second."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from newsletter.db import open_database
from newsletter.feeds import add_feed
from newsletter.models import Delivery, Worker
from newsletter.optin import ImportRow
from newsletter.subscriptions import import_subscribers
from tests.conftest import DATA, FIGURES, SEED
from tests.mailing import SmtpServer, free_port, smtp_server

PAPERBOY = shutil.which("paperboy", path=str(Path(sys.executable).parent)) or "paperboy"
GUILD, CHANNEL = 1, 101
TOPIC = "reinforcement-learning"  # the seed has 24 such papers, 2025-09-09.json 6
SECOND_DIGEST = DATA / "2025-09-09.json"
POLL = 1.0
READERS = [f"reader{n}@example.org" for n in range(3)]
DIGEST_LINE = re.compile(r"\bdigest (\d+) from ")
SENT_LINE = re.compile(r"\b(mail|discord): (\d+) sent, ")


@dataclass
class Service:
    """One `paperboy run` process, its stderr going to a file (a pipe could fill up)."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def worker(self) -> str:
        """Its name in the `worker` table: the console script is the Python process itself."""
        return f"{socket.gethostname()}:{self.process.pid}"

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def terminate(self, timeout: float = 10) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextmanager
def services(folder: Path, environment: dict[str, str]) -> Iterator[Callable[..., Service]]:
    """Starts `paperboy run` processes; whatever still runs at the end is killed."""
    started: list[Service] = []

    def start(*args: str) -> Service:
        log = folder / f"service-{len(started)}.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [PAPERBOY, "run", *args],
                cwd=folder,
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        started.append(Service(process, log))
        return started[-1]

    try:
        yield start
    finally:
        for service in started:
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait()


def service_environment(folder: Path, database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without any PAPERBOY_ setting of the developer's, plus
    the database, the folders and one-second intervals. Semantic matching is off: embedding
    a digest's papers on a loaded 2-core machine takes longer than these tests' waits, and
    what they measure is the service's own latency (tests/test_semantic.py covers the model)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    return environment | {
        "PYTHONUNBUFFERED": "1",
        "PAPERBOY_DATABASE_URL": database_url,
        "PAPERBOY_INBOX_DIR": str(folder / "inbox"),
        "PAPERBOY_OUTBOX_DIR": str(folder / "outbox"),
        "PAPERBOY_POLL_SECONDS": str(POLL),
        "PAPERBOY_SECRET_KEY": "service-processes-test-secret-key-32",
        "PAPERBOY_EMBEDDING_MODEL": "none",
        **{f"PAPERBOY_{name.upper()}": value for name, value in settings.items()},
    }


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Seconds until `condition` held; fails naming `what` if it did not within `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def drop(source: Path, inbox: Path) -> float:
    """Put a digest into the inbox as a careful user does: written under a hidden name, dated
    in the past (a file changed in the last 2 s waits for the next poll), then renamed.
    Returns when it appeared (time.monotonic)."""
    inbox.mkdir(exist_ok=True)
    hidden = inbox / f".{source.name}"
    shutil.copyfile(source, hidden)
    past = time.time() - 60
    os.utime(hidden, (past, past))
    hidden.rename(inbox / source.name)
    return time.monotonic()


def healthz(port: int) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as reply:
        return reply.code, reply.read().decode()
    except OSError:
        return None  # not listening yet


def workers(engine: Engine) -> dict[str, bool]:
    """The `worker` table: each process's name and whether it says it leads."""
    with Session(engine) as session:
        return {row.name: row.leader for row in session.exec(select(Worker))}


def posts(engine: Engine) -> dict[int, str]:
    """Each channel post's digest and status."""
    with Session(engine) as session:
        rows = session.exec(select(Delivery).where(Delivery.kind == "post")).all()
        return {row.digest_id: row.status for row in rows if row.digest_id is not None}


def post_files(outbox: Path, digest_id: int) -> dict[str, int]:
    """The JSON files of one digest's channel post (key `post:<feed>:<digest>`), with their
    inode: a post written again is a new file renamed over the old one."""
    folder = outbox / "discord"
    if not folder.is_dir():
        return {}
    pattern = re.compile(rf"post-\d+-{digest_id}\.\d+\.json")
    return {p.name: p.stat().st_ino for p in folder.iterdir() if pattern.fullmatch(p.name)}


def sent_counts(*logs: str) -> Counter[str]:
    """What the services' log lines say they sent, per sender (mail, discord)."""
    sent: Counter[str] = Counter()
    for sender, count in SENT_LINE.findall("\n".join(logs)):
        sent[sender] += int(count)
    return sent


def test_a_digest_dropped_into_the_inbox_is_posted_to_its_channel_feed_within_a_poll(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'paperboy.db'}"
    engine = open_database(database_url)
    add_feed(engine, GUILD, CHANNEL, TOPIC, post_format="full")  # a post of several messages
    port = free_port()
    environment = service_environment(
        tmp_path, database_url, web_host="127.0.0.1", web_port=str(port)
    )
    try:
        with services(tmp_path, environment) as start:
            service = start()
            wait_for(lambda: healthz(port) is not None, 20, "the web app answers")
            assert healthz(port) == (200, "ok")
            wait_for(lambda: workers(engine).get(service.worker), 10, "the only process leads")

            dropped = drop(SEED, tmp_path / "inbox")
            wait_for(lambda: posts(engine).get(1) == "sent", POLL + 5, "the post is written")
            latency = time.monotonic() - dropped
            record_property(
                FIGURES,
                f"posting latency: {latency:.2f} s from drop to post (poll every {POLL:g} s)",
            )

            files = sorted((tmp_path / "outbox" / "discord").glob("*.json"))
            assert [f.name for f in files] == sorted(post_files(tmp_path / "outbox", 1))
            assert len(files) == 3  # 24 papers, 10 embeds a message
            assert all(f'"channel_id": {CHANNEL}' in f.read_text() for f in files)
            assert len(DIGEST_LINE.findall(service.stderr())) == 1

            assert service.terminate() == 0, service.stderr()
        assert f"{service.worker} stopped" in service.stderr()
        assert workers(engine) == {}  # a clean stop takes its worker row away
    finally:
        engine.dispose()


def test_two_services_on_postgresql_elect_one_leader_whose_death_loses_and_doubles_nothing(
    database_url: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip(
            "several `paperboy run` processes share a database only on PostgreSQL "
            "(on SQLite one process runs); the SQLite service is the test above"
        )
    engine = open_database(database_url)  # migrated here, before two processes start at once
    add_feed(engine, GUILD, CHANNEL, TOPIC, post_format="full")  # a post of several messages
    rows = [ImportRow(address, [TOPIC], "UTC", 0) for address in READERS]
    import_subscribers(engine, rows, confirmed=True)
    outbox = tmp_path / "outbox"
    try:
        with (
            contextmanager(smtp_server)() as smtp,
            services(tmp_path, mail_environment(tmp_path, database_url, smtp)) as start,
        ):
            first, second = start("--no-web"), start("--no-web")
            names = {first.worker, second.worker}

            def one_leader() -> bool:
                found = workers(engine)
                return set(found) == names and sum(found.values()) == 1

            wait_for(one_leader, 20, "both processes report in, one of them leading")
            time.sleep(2.5)  # a few more tries for the lead each
            assert one_leader(), workers(engine)
            leader, survivor = (first, second) if workers(engine)[first.worker] else (second, first)

            drop(SEED, tmp_path / "inbox")
            wait_for(lambda: posts(engine).get(1) == "sent", 15, "digest 1 is posted")
            wait_for(lambda: len(smtp.handler.received) >= len(READERS), 15, "the mails arrive")
            assert sorted(str(m["To"]) for m in smtp.handler.received) == READERS
            wait_for(  # settled and logged, so the kill below lands on a quiet leader
                lambda: (
                    sent_counts(first.stderr(), second.stderr())
                    == {"mail": len(READERS), "discord": 1}
                ),
                5,
                "both senders log what they sent",
            )
            first_post = post_files(outbox, 1)
            assert len(first_post) == 3

            leader.process.kill()
            leader.process.wait()
            takeover = wait_for(
                lambda: workers(engine).get(survivor.worker), 60, "the survivor leads"
            )
            record_property(
                FIGURES, f"takeover: {takeover:.2f} s from SIGKILL to the survivor's worker row"
            )

            drop(SECOND_DIGEST, tmp_path / "inbox")
            wait_for(lambda: posts(engine).get(2) == "sent", 15, "digest 2 is posted")
            time.sleep(2.5)  # a few more queue and send runs: room for a second mail to go
            assert survivor.terminate() == 0, survivor.stderr()
        logs = (leader.stderr(), survivor.stderr())

        digests = Counter(DIGEST_LINE.findall("\n".join(logs)))
        assert digests == {"1": 1, "2": 1}, logs
        assert DIGEST_LINE.search(leader.stderr()), "the first leader ingested digest 1"
        assert DIGEST_LINE.search(survivor.stderr()), "the survivor ingested digest 2"
        assert posts(engine) == {1: "sent", 2: "sent"}
        assert post_files(outbox, 1) == first_post, "digest 1's post was written again"
        assert len(post_files(outbox, 2)) == 1
        assert sent_counts(*logs) == {"mail": len(READERS), "discord": 2}, logs

        per_reader: dict[str, set[str]] = {}
        for message in smtp.handler.received:
            per_reader.setdefault(str(message["To"]), set()).add(str(message["Message-ID"]))
        assert len(smtp.handler.received) == len(READERS)
        assert {reader: len(ids) for reader, ids in per_reader.items()} == dict.fromkeys(READERS, 1)
        with Session(engine) as session:
            daily = session.exec(select(Delivery).where(col(Delivery.kind) == "daily")).all()
        assert [(d.status, d.digest_id) for d in daily] == [("sent", 1)] * len(READERS)
        assert set(workers(engine)) == {leader.worker}  # the killed one could not clean up
    finally:
        engine.dispose()


def mail_environment(folder: Path, database_url: str, smtp: SmtpServer) -> dict[str, str]:
    """Every job each second, and mail to the test's SMTP server."""
    return service_environment(
        folder,
        database_url,
        queue_seconds="1",
        send_seconds="1",
        lead_seconds="1",
        smtp_host="127.0.0.1",
        smtp_port=str(smtp.port),
        smtp_security="none",
        mail_from="paperboy <news@paperboy.test>",
    )
