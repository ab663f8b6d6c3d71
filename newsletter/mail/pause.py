"""Sending paused: the SMTP server refused paperboy's session (greeting, TLS, login, sender,
or a relay that will not relay), which no mail can get past until it is fixed or over.

Kept in the database so `paperboy status` shows it from any shell and every sender process
waits alike; a sender that gets a mail through again lifts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete
from sqlmodel import Session

from newsletter.db import writing
from newsletter.models import AppSetting
from newsletter.outbox import HOLD

_NAME = "mail_paused"


@dataclass(frozen=True)
class Pause:
    reason: str
    since: datetime
    until: datetime


def current(engine: Engine) -> Pause | None:
    with Session(engine) as session:
        row = session.get(AppSetting, _NAME)
    if row is None:
        return None
    value = json.loads(row.value)
    return Pause(
        value["reason"],
        datetime.fromisoformat(value["since"]),
        datetime.fromisoformat(value["until"]),
    )


def pause(engine: Engine, reason: str, now: datetime) -> Pause:
    """Pause for `HOLD` from now; a pause that goes on keeps the time it began."""
    earlier = current(engine)
    since = earlier.since if earlier is not None else now
    paused = Pause(reason, since, now + HOLD)
    value = {"reason": reason, "since": since.isoformat(), "until": paused.until.isoformat()}
    with Session(writing(engine)) as session, session.begin():
        session.merge(AppSetting(name=_NAME, value=json.dumps(value)))
    return paused


def lift(engine: Engine) -> None:
    with Session(writing(engine)) as session, session.begin():
        session.execute(delete(AppSetting).where(AppSetting.name == _NAME))  # type: ignore[arg-type]
