"""The one place that turns what stops a command into an `error: ...` line and an exit code.

A bad setting or a `.env` that cannot be read is bad input (exit 2); a database that cannot
be written (read only, locked past the busy timeout, disk full) or a port or folder the
system refuses is unavailable (exit 1). Each is one line naming what and where, never a
traceback: the data is intact (a failed transaction is rolled back whole).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from newsletter.config import Settings, get_settings

# Shown as "(hidden)", never echoed to a terminal or log.
_SECRETS = {"secret_key", "smtp_password", "discord_token"}


def setting_problem(problem: ValidationError) -> str:
    """`setting PAPERBOY_SMTP_PORT: ... (got '99999')` for the first bad setting."""
    first = problem.errors()[0]
    field = "_".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    given = "(hidden)" if field in _SECRETS else repr(first.get("input"))
    return f"setting PAPERBOY_{field.upper()}: {message} (got {given})"


def load_settings() -> Settings:
    """The settings, or ValueError with the one line to print."""
    try:
        return get_settings()
    except ValidationError as problem:
        raise ValueError(setting_problem(problem)) from None
    except UnicodeDecodeError as problem:
        env_file = Path(str(Settings.model_config.get("env_file") or ".env")).resolve()
        raise ValueError(
            f"{env_file}: not UTF-8 text (byte 0x{problem.object[problem.start]:02x} at "
            f"offset {problem.start}); save it as UTF-8"
        ) from None


def unavailable(problem: BaseException) -> str | None:
    """The line for an error that means the database, a file or a port is unavailable; None
    for anything else (a bug, which keeps its traceback)."""
    if isinstance(problem, OperationalError):
        reason = str(problem.orig).strip().splitlines()[0] if problem.orig else str(problem)
        return f"database: {reason} (nothing was half written)"
    if isinstance(problem, OSError) and problem.strerror:
        where = f": {problem.filename}" if problem.filename else ""
        return f"{problem.strerror}{where}"
    return None
