"""The inbox folder the service polls: what it reads, when, and what it does with bad files."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine

from newsletter.inbox import Inbox
from newsletter.ingest import Outcome
from tests.conftest import SEED
from tests.mailing import CLOCK


def dropped(folder: Path, source: Path, name: str | None = None, settled: bool = True) -> Path:
    folder.mkdir(exist_ok=True)
    path = Path(shutil.copy(source, folder / (name or source.name)))
    if settled:
        os.utime(path, (0, 0))
    return path


def test_a_new_file_is_stored_once_and_not_read_again(engine: Engine, tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    dropped(tmp_path, SEED)
    (first,) = inbox.ingest_new(engine, CLOCK)
    assert first.outcome is Outcome.STORED
    assert inbox.ingest_new(engine, CLOCK) == []


def test_a_file_still_being_written_waits_for_a_later_poll(engine: Engine, tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    path = dropped(tmp_path, SEED, settled=False)
    assert inbox.ingest_new(engine, CLOCK) == []
    os.utime(path, (0, 0))
    assert [r.outcome for r in inbox.ingest_new(engine, CLOCK)] == [Outcome.STORED]


def test_hidden_and_partial_files_are_left_alone(engine: Engine, tmp_path: Path) -> None:
    dropped(tmp_path, SEED, ".copying.txt")
    dropped(tmp_path, SEED, "digest.txt.part")
    assert Inbox(tmp_path).ingest_new(engine, CLOCK) == []


def test_a_bad_file_is_logged_once_and_read_again_when_it_changes(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox(tmp_path)
    tmp_path.joinpath("broken.json").write_text('[{"paper": ')
    os.utime(tmp_path / "broken.json", (0, 0))
    with caplog.at_level(logging.ERROR, logger="newsletter.inbox"):
        assert inbox.ingest_new(engine, CLOCK) == []
        assert inbox.ingest_new(engine, CLOCK) == []
    assert len(caplog.records) == 1
    assert "broken.json" in caplog.records[0].getMessage()
    dropped(tmp_path, SEED, "broken.json")
    assert [r.outcome for r in inbox.ingest_new(engine, CLOCK)] == [Outcome.STORED]


def test_a_missing_inbox_folder_is_no_error(engine: Engine, tmp_path: Path) -> None:
    assert Inbox(tmp_path / "not-yet").ingest_new(engine, CLOCK) == []
