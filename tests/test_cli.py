"""The `paperboy` command as a user runs it: a real process, a real database."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import with_plugins
from newsletter.cli_common import err, out
from newsletter.config import get_settings
from newsletter.db import open_database
from newsletter.optin import unsubscribe_address
from newsletter.people import set_dm
from tests.conftest import DATA, ROOT, SEED

Run = Callable[..., subprocess.CompletedProcess[str]]
PAPERBOY = shutil.which("paperboy", path=str(Path(sys.executable).parent)) or "paperboy"


@pytest.fixture
def paperboy(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """The CLI run in this process (a real process costs a second of imports per call)."""
    for key in [k for k in os.environ if k.startswith("PAPERBOY_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    # The consoles read COLUMNS when first imported, which may be before this fixture ran.
    for console in (out, err):
        monkeypatch.setattr(console, "width", 200)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        result = runner.invoke(with_plugins(), list(args), input=stdin)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    yield run
    get_settings.cache_clear()


@pytest.fixture
def paperboy_process(database_url: str, tmp_path: Path) -> Run:
    """The installed `paperboy` console script in a process of its own, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env |= {"PAPERBOY_DATABASE_URL": database_url, "COLUMNS": "200"}

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [PAPERBOY, *args], cwd=tmp_path, env=env, input=stdin, capture_output=True, timeout=120
        )
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
        )

    return run


def stored_papers(paperboy: Run) -> list[dict[str, object]]:
    done = paperboy("papers", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_ingesting_the_seeds_folder_stores_76_papers_then_nothing_new(
    paperboy_process: Run,
) -> None:
    first = paperboy_process("ingest", str(ROOT / "seeds"))
    assert first.returncode == 0, first.stderr
    assert "stored as digest 1" in first.stdout
    assert "76 papers, 76 new" in first.stdout
    assert "database: " in first.stdout
    second = paperboy_process("ingest", str(ROOT / "seeds"))
    assert second.returncode == 0
    assert "already ingested as digest 1" in second.stdout
    assert len(stored_papers(paperboy_process)) == 76


def test_papers_json_of_a_digest_lists_it_in_order(paperboy: Run) -> None:
    paperboy("ingest", str(DATA / "arxiv-rss-cs.LG.xml"))
    papers = json.loads(paperboy("papers", "--digest", "1", "--json").stdout)
    assert [p["position"] for p in papers] == [1, 2, 3, 4, 5]
    assert papers[3]["arxiv_id"] == "2608.01234"
    assert papers[3]["announce_type"] == "replace"
    assert papers[0]["authors"] == ["Xiangyang Ju", "Daniel Murnane"]


def test_papers_table_shows_titles(paperboy: Run) -> None:
    paperboy("ingest", str(SEED))
    done = paperboy("papers", "--limit", "3")
    assert done.returncode == 0
    assert "Safety Subspaces are Not Distinct" in done.stdout
    assert "3 paper(s)" in done.stdout


def test_rich_markup_in_a_title_is_printed_literally(paperboy: Run) -> None:
    entry = {"paper": {"id": "2509.00001", "title": "[bold red]Not markup[/] \x1b[2J"}}
    paperboy("ingest", "-", stdin=json.dumps([entry]).encode())
    done = paperboy("papers")
    assert "[bold red]Not markup[/]" in done.stdout
    assert "\x1b[2J" not in done.stdout


def test_stdin_is_read_with_a_dash(paperboy_process: Run) -> None:
    done = paperboy_process("ingest", "-", stdin=(DATA / "2025-03-03.json").read_bytes())
    assert done.returncode == 0, done.stderr
    assert "<stdin>: stored as digest 1" in done.stdout
    assert len(stored_papers(paperboy_process)) == 7


def test_bad_digest_exits_2_with_one_line_naming_file_and_place(
    paperboy_process: Run, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"paper": {"title": "no id"}}]')
    done = paperboy_process("ingest", str(bad))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {bad}: $[0].paper.id: required field is missing"]
    assert stored_papers(paperboy_process) == []


def test_one_bad_file_does_not_stop_the_good_ones(paperboy: Run, tmp_path: Path) -> None:
    inbox = tmp_path / "mixed"
    inbox.mkdir()
    shutil.copy(DATA / "2025-03-03.json", inbox / "a.json")
    (inbox / "b.txt").write_bytes(b"\xff not utf-8")
    shutil.copy(DATA / "arxiv-rss-cs.LG.xml", inbox / "c.xml")
    done = paperboy("ingest", str(inbox))
    assert done.returncode == 2
    assert "b.txt: line 1: invalid UTF-8" in done.stderr
    assert "2 stored" in done.stdout
    assert len(stored_papers(paperboy)) == 12


def test_missing_file_is_reported_not_raised(paperboy: Run) -> None:
    done = paperboy("ingest", "does-not-exist.json")
    assert done.returncode == 2
    assert "does-not-exist.json: cannot read: No such file or directory" in done.stderr


def test_ingest_without_paths_reads_the_inbox_folder(paperboy: Run, tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    shutil.copy(SEED, tmp_path / "inbox" / "today")
    done = paperboy("ingest")
    assert done.returncode == 0, done.stderr
    assert "76 papers" in done.stdout


def test_ingest_without_paths_or_inbox_says_what_to_do(paperboy: Run) -> None:
    done = paperboy("ingest")
    assert done.returncode == 2
    assert "inbox folder inbox does not exist" in done.stderr


def test_unknown_digest_id_is_a_clear_error(paperboy: Run) -> None:
    done = paperboy("papers", "--digest", "42")
    assert done.returncode == 2
    assert "no digest with id 42" in done.stderr


def test_digests_json_records_where_the_date_came_from(paperboy: Run) -> None:
    paperboy("ingest", str(SEED))
    (digest,) = json.loads(paperboy("digests", "--json").stdout)
    assert digest["digest_date"] == digest["date_note"].split("took ")[1][:4] + "-09-09"
    assert digest["paper_count"] == 76
    assert digest["source_format"] == "hf-daily-page-text"


def test_db_upgrade_is_idempotent(paperboy: Run) -> None:
    assert paperboy("db", "upgrade").returncode == 0
    assert paperboy("db", "upgrade").returncode == 0


def test_db_upgrade_to_an_unknown_revision_is_one_clear_line(paperboy: Run) -> None:
    done = paperboy("db", "upgrade", "nope")
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot open database")
    assert "nope" in done.stderr


def test_a_feed_without_announcements_is_reported_empty_and_not_an_error(paperboy: Run) -> None:
    done = paperboy("ingest", str(DATA / "arxiv-rss-no-announcements.xml"))
    assert done.returncode == 0
    assert "empty arxiv-rss digest, nothing stored" in done.stdout
    assert paperboy("digests", "--json").stdout.strip() == "[]"
    assert "no digests stored yet" in paperboy("digests").stdout


def test_match_query_lists_continual_learning_papers_with_terms(paperboy: Run) -> None:
    paperboy("ingest", str(SEED))
    done = paperboy("match", "--query", '"continual learning" OR lifelong')
    assert done.returncode == 0, done.stderr
    assert "A Comprehensive Survey of Continual Learning" in done.stdout
    assert "Towards Lifelong Learning of Large Language Models" in done.stdout
    assert "Safety Subspaces" not in done.stdout
    assert "paper(s) match" in done.stdout


def test_a_bad_query_shows_a_caret_under_the_column(paperboy: Run) -> None:
    paperboy("ingest", str(SEED))
    done = paperboy("match", "--query", "agents (tools")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "agents (tools",
        "       ^",
        "error: query error at column 8: this '(' is never closed: add a ')'",
    ]


def test_subscribe_list_and_unsubscribe(paperboy: Run) -> None:
    assert paperboy("subscribe", "--email", "ann@example.org", "agents").returncode == 0
    assert paperboy("subscribe", "--discord", "42", "title:RL -survey").returncode == 0
    listed = paperboy("subscriptions").stdout
    assert "ann@example.org" in listed
    assert "title:RL -survey" in listed
    assert paperboy("unsubscribe", "--email", "ann@example.org", "agents").returncode == 0
    assert "ann@example.org" not in paperboy("subscriptions").stdout


def test_subscribe_echoes_the_address_as_stored(paperboy: Run) -> None:
    done = paperboy("subscribe", "--email", "Bob@Example.org", "agents")
    assert done.stdout.strip() == "bob@example.org subscribed to 'LLM agents'"
    assert "bob@example.org" in paperboy("subscriptions").stdout
    gone = paperboy("unsubscribe", "--email", "Bob@Example.ORG", "agents")
    assert gone.stdout.strip() == "bob@example.org unsubscribed from 'LLM agents'"


def test_subscriptions_say_when_no_mail_goes_to_an_address(
    paperboy: Run, database_url: str
) -> None:
    paperboy("subscribe", "--email", "ann@example.org", "agents")
    paperboy("subscribers", "confirm", "ann@example.org")
    assert "No daily mail" not in paperboy("subscriptions").stdout
    unsubscribe_address(open_database(database_url), 1, "ann@example.org")
    listed = paperboy("subscriptions").stdout
    assert "LLM agents" in listed
    assert "No daily mail goes to ann@example.org: its owner unsubscribed." in listed


def test_subscribe_refusals_exit_2_with_one_line(paperboy: Run) -> None:
    bad = paperboy("subscribe", "--email", "nobody", "agents")
    assert (bad.returncode, bad.stderr.count("\n")) == (2, 1)
    assert "is not an email address" in bad.stderr
    paperboy("subscribe", "--email", "ann@example.org", "agents")
    again = paperboy("subscribe", "--email", "ann@example.org", "agents")
    assert again.returncode == 2
    assert "already subscribed" in again.stderr
    nobody = paperboy("subscribe", "agents")
    assert nobody.returncode == 2
    assert "--email ADDRESS or --discord USER_ID" in nobody.stderr


def test_topics_lists_the_catalogue_with_counts(paperboy: Run) -> None:
    paperboy("subscribe", "--email", "ann@example.org", "continual-learning")
    done = paperboy("topics")
    assert done.returncode == 0
    line = next(x for x in done.stdout.splitlines() if "continual-learning" in x)
    assert line.split("│")[-3].strip() == "1"


def test_match_without_query_stores_matches_for_every_topic(paperboy: Run) -> None:
    paperboy("ingest", str(SEED))
    done = paperboy("match")
    assert done.returncode == 0, done.stderr
    assert "Continual learning:" in done.stdout
    assert "stored for digest 1" in done.stdout


def test_email_send_after_ingest_writes_eml_files_and_says_where(
    paperboy: Run, tmp_path: Path
) -> None:
    ingested = paperboy("ingest", str(SEED))  # matches the digest too: no `match` needed
    assert re.search(r"matched \d+ topic\(s\)", ingested.stdout)
    paperboy("subscribe", "--email", "ann@example.org", "--hour", "0", "continual-learning")
    paperboy("subscribers", "confirm", "ann@example.org")

    done = paperboy("email", "send")

    assert done.returncode == 0
    assert "files in outbox/mail" in done.stdout
    (mail,) = (tmp_path / "outbox" / "mail").glob("ann@example.org-*.eml")
    parsed = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    assert "Continual learning" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    again = paperboy("email", "send")
    assert "0 daily mail(s) queued" in again.stdout
    assert len(list((tmp_path / "outbox" / "mail").glob("*.eml"))) == 1


def test_a_feed_added_twice_is_refused_in_plain_words(paperboy: Run) -> None:
    paperboy("feeds", "add", "--guild", "1", "--channel", "2", "agents")
    again = paperboy("feeds", "add", "--guild", "1", "--channel", "2", "agents")
    assert again.returncode == 2
    assert again.stderr.strip() == "error: channel 2 already follows 'LLM agents'"


def test_removing_a_feed_by_a_query_that_does_not_parse_is_one_line_exit_2(paperboy: Run) -> None:
    removed = paperboy("feeds", "remove", "--guild", "1", "--channel", "2", "agents (")
    assert removed.returncode == 2
    (line,) = removed.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in removed.stderr


def test_removing_a_feed_a_channel_does_not_have_names_the_channel_plainly(paperboy: Run) -> None:
    removed = paperboy("feeds", "remove", "--guild", "1", "--channel", "2", "agents")
    assert removed.returncode == 2
    assert removed.stderr.strip() == "error: channel 2 does not follow 'agents'"


def test_one_digest_queues_a_channel_post_a_dm_and_a_mail_together(
    paperboy: Run, database_url: str, tmp_path: Path
) -> None:
    """A post and a DM have different columns; queueing both in one go once crashed ingest."""
    paperboy("feeds", "add", "--guild", "1", "--channel", "2", "agents")
    paperboy("subscribe", "--discord", "42", "agents")
    engine = open_database(database_url)
    set_dm(engine, 42, True)
    engine.dispose()
    paperboy("subscribe", "--email", "ann@example.org", "--hour", "0", "agents")
    paperboy("subscribers", "confirm", "ann@example.org")

    ingested = paperboy("ingest", str(SEED))
    delivered = paperboy("deliver")

    assert (ingested.returncode, delivered.returncode) == (0, 0)
    posts = [json.loads(p.read_text()) for p in (tmp_path / "outbox" / "discord").glob("*.json")]
    assert {p.get("channel_id") for p in posts} - {None} == {2}
    assert {p.get("user_id") for p in posts} - {None} == {42}
    assert len(list((tmp_path / "outbox" / "mail").glob("ann@example.org-*.eml"))) == 1


def test_email_send_dry_run_sends_nothing(paperboy: Run, tmp_path: Path) -> None:
    paperboy("subscribe", "--email", "ann@example.org", "agents")
    done = paperboy("email", "send", "--dry-run")
    assert "1 mail(s) would be sent" in done.stdout
    assert not (tmp_path / "outbox").exists()


def test_email_preview_writes_html_and_text(paperboy: Run, tmp_path: Path) -> None:
    paperboy("ingest", str(SEED))
    paperboy("subscribe", "--email", "ann@example.org", "in-context-learning")
    paperboy("match")
    done = paperboy("email", "preview", "--subscriber", "ann@example.org")
    assert done.returncode == 0
    assert "the address is pending" in done.stdout
    html = (tmp_path / "outbox" / "preview" / "ann@example.org.html").read_text()
    assert "In-context learning" in html


def test_mail_commands_refuse_unknown_addresses_with_exit_2(paperboy: Run) -> None:
    for args in (
        ("email", "preview", "--subscriber", "nobody@example.org"),
        ("subscribers", "confirm", "nobody@example.org"),
        ("subscribers", "confirm", "not an address"),
    ):
        done = paperboy(*args)
        assert (done.returncode, done.stderr.count("\n")) == (2, 1), args


def test_subscribers_import_names_the_bad_row(paperboy: Run, tmp_path: Path) -> None:
    listing = tmp_path / "people.csv"
    listing.write_text("email,topics\nann@example.org,agents\nbob@example.org,agents (tools\n")
    done = paperboy("subscribers", "import", str(listing))
    assert done.returncode == 2
    assert "row 2" in done.stderr and "column 8" in done.stderr
    assert "ann@example.org" not in paperboy("subscriptions").stdout


def test_a_bad_setting_is_one_line_naming_the_variable(
    paperboy: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERBOY_SMTP_SECURITY", "bogus")
    get_settings.cache_clear()
    done = paperboy("digests")
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert "PAPERBOY_SMTP_SECURITY" in done.stderr and "'bogus'" in done.stderr


def test_a_missing_templates_folder_is_refused_not_ignored(
    paperboy: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERBOY_TEMPLATES_DIR", "/no/such/folder")
    get_settings.cache_clear()
    done = paperboy("email", "send", "--dry-run")
    assert done.returncode == 2
    assert "/no/such/folder (PAPERBOY_TEMPLATES_DIR) is not a folder" in done.stderr


def test_removing_a_feed_by_a_query_that_does_not_parse_is_one_line(paperboy: Run) -> None:
    done = paperboy("feeds", "remove", "--guild", "1", "--channel", "2", "agents (")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: query error at column 9: the query ends where a word, phrase or '(' was expected"
    ]


def test_feeds_add_takes_a_post_format_and_feeds_list_shows_it(paperboy: Run) -> None:
    assert paperboy("feeds", "add", "--guild", "1", "--channel", "2", "agents").returncode == 0
    switched = paperboy(
        "feeds", "add", "--guild", "1", "--channel", "2", "agents", "--format", "full"
    )
    assert switched.stdout.strip() == "channel 2 now follows 'LLM agents' (full)"
    paperboy("feeds", "add", "--guild", "1", "--channel", "3", "agents")
    listed = paperboy("feeds", "list").stdout
    assert re.search(r"│ 2 +│ LLM agents +│ full +│ posting", listed), listed
    assert re.search(r"│ 3 +│ LLM agents +│ compact +│ posting", listed), listed
    refused = paperboy(
        "feeds", "add", "--guild", "1", "--channel", "4", "agents", "--format", "long"
    )
    assert refused.returncode != 0 and "long" in refused.stderr
