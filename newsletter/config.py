"""Settings from `PAPERBOY_*` environment variables or a `.env` file in the working folder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAPERBOY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///paperboy.db"
    """SQLAlchemy URL; `postgresql+psycopg://user@host/db` for PostgreSQL."""
    inbox_dir: Path = Path("inbox")
    """Folder watched for new digest files; `paperboy ingest` with no paths reads it."""
    log_level: str = "WARNING"
    outbox_dir: Path = Path("outbox")
    """Where mails (`.eml`) and Discord posts (`.json`) are written when there is no SMTP host
    or Discord token: what would have been sent."""
    templates_dir: Path | None = None
    """Your own copies of the templates; files missing there come from the built-in ones."""
    base_url: str = "http://127.0.0.1:8080"
    """Where `paperboy web` is reachable from a reader's mail client; links in mails use it."""
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    secret_key: SecretStr | None = None
    """Signs the links in mails; when unset, paperboy makes one and keeps it in the database."""
    mail_from: str = "paperboy <paperboy@localhost>"
    smtp_host: str | None = None
    """No host: mails are written to the outbox folder instead of sent."""
    smtp_port: int = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_connections: int = 4
    """SMTP connections kept open and used in parallel."""
    smtp_rate: float = 0.0
    """Messages per second at most (0: no limit)."""
    discord_token: SecretStr | None = None
    """The bot's token. No token: posts and DMs are written to the outbox folder as JSON."""
    discord_guild_id: int | None = None
    """Sync slash commands to this one server only (instant; global commands take a while to
    appear everywhere): for trying the bot out."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
