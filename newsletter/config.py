"""Settings from `PAPERBOY_*` environment variables or a `.env` file in the working folder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAPERBOY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///paperboy.db"
    """SQLAlchemy URL; `postgresql+psycopg://user@host/db` for PostgreSQL."""
    inbox_dir: Path = Path("inbox")
    """Folder watched for new digest files; `paperboy ingest` with no paths reads it."""
    log_level: str = "WARNING"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
