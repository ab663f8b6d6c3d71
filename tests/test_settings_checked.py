"""Every setting is checked when a command starts: a bad one ends it with one `error:` line
naming the setting and exit 2, never a traceback; an empty setting means unset; an empty or
short secret key is refused, so no link is signed with a key anyone can guess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from newsletter.cli import with_plugins
from newsletter.cli_common import err, out
from newsletter.config import Settings, get_settings, warnings_for
from newsletter.mail.links import BadLink, Links, links_for
from tests.conftest import SEED

Run = Callable[..., tuple[int, str]]

# (setting, value, what the error line must say besides the setting's name)
BAD_SETTINGS = [
    ("PAPERBOY_SECRET_KEY", "", "at least 32 characters"),
    ("PAPERBOY_SECRET_KEY", "short-key", "at least 32 characters"),
    ("PAPERBOY_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("PAPERBOY_MAIL_FROM", "not an address", "not one mail address"),
    ("PAPERBOY_MAIL_FROM", "paperboy <news@exa mple.org>", "not"),
    ("PAPERBOY_MAIL_FROM", "a@example.org, b@example.org", "not one mail address"),
    ("PAPERBOY_SMTP_PORT", "99999", "65535"),
    ("PAPERBOY_SMTP_PORT", "0", "greater than or equal to 1"),
    ("PAPERBOY_WEB_PORT", "http", "integer"),
    ("PAPERBOY_SEND_SECONDS", "inf", "finite"),
    ("PAPERBOY_POLL_SECONDS", "-5", "greater than 0"),
    ("PAPERBOY_QUEUE_SECONDS", "nan", "finite"),
    ("PAPERBOY_SMTP_RATE", "inf", "finite"),
    ("PAPERBOY_SMTP_CONNECTIONS", "0", "greater than or equal to 1"),
    ("PAPERBOY_SMTP_SECURITY", "ssl", "starttls"),
    ("PAPERBOY_BASE_URL", "paperboy.example.org", "http:// or https://"),
    ("PAPERBOY_SMTP_CA_FILE", "/nowhere/ca.pem", "does not point to a file"),
]


@pytest.fixture
def paperboy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """The CLI in this process, in an empty folder, with only the settings a test gives."""
    for key in [k for k in os.environ if k.startswith("PAPERBOY_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", f"sqlite:///{tmp_path / 'paperboy.db'}")
    for console in (out, err):
        monkeypatch.setattr(console, "width", 300)
    monkeypatch.chdir(tmp_path)

    def run(*args: str, **settings: str) -> tuple[int, str]:
        get_settings.cache_clear()
        result = CliRunner().invoke(with_plugins(), list(args), env=settings)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stderr

    yield run
    get_settings.cache_clear()


@pytest.mark.parametrize(("name", "value", "says"), BAD_SETTINGS)
def test_a_bad_setting_stops_the_command_with_one_line_naming_it(
    paperboy: Run, name: str, value: str, says: str
) -> None:
    code, stderr = paperboy("status", **{name: value})
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: setting {name}: ")
    assert says in lines[0]
    assert "Traceback" not in stderr


def test_the_secret_key_is_never_echoed(paperboy: Run) -> None:
    _, stderr = paperboy("status", PAPERBOY_SECRET_KEY="hunter2-is-my-key")
    assert "hunter2" not in stderr
    assert "(hidden)" in stderr


def test_a_dotenv_with_bytes_that_are_not_utf8_is_named_in_one_line(
    paperboy: Run, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_bytes(b"PAPERBOY_MAIL_FROM=Zo\xeb <news@example.org>\n")
    code, stderr = paperboy("status")
    assert code == 2
    assert stderr.strip() == (
        f"error: {tmp_path / '.env'}: not UTF-8 text (byte 0xeb at offset 21); save it as UTF-8"
    )


@pytest.mark.parametrize(
    "name",
    ["PAPERBOY_SMTP_CA_FILE", "PAPERBOY_SMTP_HOST", "PAPERBOY_MAIL_FROM", "PAPERBOY_WEB_PORT"],
)
def test_an_empty_setting_means_unset(paperboy: Run, name: str) -> None:
    code, stderr = paperboy("status", **{name: ""})
    assert (code, stderr) == (0, "")
    field = name.removeprefix("PAPERBOY_").lower()
    assert getattr(get_settings(), field) == Settings.model_fields[field].default


def test_a_log_level_is_taken_in_any_case(paperboy: Run) -> None:
    assert paperboy("status", PAPERBOY_LOG_LEVEL="info")[0] == 0
    assert get_settings().log_level == "INFO"


def test_a_mail_address_at_localhost_is_allowed_for_the_outbox_folder() -> None:
    assert Settings(mail_from="paperboy <paperboy@localhost>").mail_from.endswith("@localhost>")


def test_plain_http_base_url_is_warned_about_unless_it_is_this_machine() -> None:
    (line,) = warnings_for(Settings(base_url="http://news.example.org"))
    assert line.startswith("PAPERBOY_BASE_URL http://news.example.org is plain http://")
    for url in ("http://127.0.0.1:8080", "http://localhost:8080", "https://news.example.org"):
        assert warnings_for(Settings(base_url=url)) == []


def test_a_token_forged_with_the_empty_key_is_refused_when_the_key_is_unset(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit's forgery: a link signed with key "". `PAPERBOY_SECRET_KEY=` is refused at
    start (above); unset, paperboy signs with a key of its own, which "" is not."""
    monkeypatch.setenv("PAPERBOY_SECRET_KEY", "")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="at least 32 characters"):
            get_settings()
        monkeypatch.delenv("PAPERBOY_SECRET_KEY")
        get_settings.cache_clear()
        forged = Links("", "http://paperboy.test").unsubscribe_token(1, "ann@example.org")
        with pytest.raises(BadLink):
            links_for(engine).read_unsubscribe(forged)
    finally:
        get_settings.cache_clear()


def test_a_read_only_database_ends_a_write_with_one_line_and_exit_1(tmp_path: Path) -> None:
    """Tests may run as root, whom chmod does not stop: SQLite's own read-only mode instead."""
    database = tmp_path / "paperboy.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    script = [sys.executable, "-c", "from newsletter.cli import run; run()"]
    made = subprocess.run(
        [*script, "status"],
        env=env | {"PAPERBOY_DATABASE_URL": f"sqlite:///{database}"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    before = database.read_bytes()
    done = subprocess.run(
        [*script, "ingest", str(SEED)],
        env=env | {"PAPERBOY_DATABASE_URL": f"sqlite:///file:{database}?mode=ro&uri=true"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: {SEED}: database refused it: OperationalError: "
        "attempt to write a readonly database"
    )
    assert database.read_bytes() == before


def test_paperboy_web_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", "from newsletter.cli import run; run()", "web"],
            env=env
            | {
                "PAPERBOY_DATABASE_URL": f"sqlite:///{tmp_path / 'paperboy.db'}",
                "PAPERBOY_WEB_PORT": str(port),
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"error: error while attempting to bind on address ('127.0.0.1', {port}): "
        "address already in use"
    )
