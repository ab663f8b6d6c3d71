"""Signed links in mails: confirm an address, unsubscribe, manage topics, view in a browser.

Each kind of link has its own salt, so a token for one cannot be replayed as another, and
carries the address it was made for, so an old link stops working when the address changes.
Unsubscribe links never expire (a year-old mail must still let its reader out); confirm and
manage links do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from newsletter.config import get_settings
from newsletter.models import AppSetting

CONFIRM_FOR = timedelta(hours=48)
MANAGE_FOR = timedelta(days=90)
_SECRET = "secret_key"


class BadLink(ValueError):
    """A forged, altered or expired link; says which, never why in more detail."""


def secret_key(engine: Engine) -> str:
    """The configured key, else one made on first use and kept in the database."""
    configured = get_settings().secret_key
    if configured is not None:
        return configured.get_secret_value()
    with Session(engine) as session:
        stored = session.get(AppSetting, _SECRET)
        if stored is not None:
            return stored.value
        session.add(AppSetting(name=_SECRET, value=secrets.token_urlsafe(32)))
        try:
            session.commit()
        except IntegrityError:  # another process made it first: use theirs
            session.rollback()
        return session.get(AppSetting, _SECRET).value  # type: ignore[union-attr]


@dataclass(frozen=True)
class Claim:
    subscriber_id: int
    email: str


class Links:
    def __init__(self, secret: str, base_url: str) -> None:
        self._secret = secret.encode()
        self.base_url = base_url.rstrip("/")
        self._confirm = URLSafeTimedSerializer(secret, salt="confirm")
        self._manage = URLSafeTimedSerializer(secret, salt="manage")
        self._unsubscribe = URLSafeSerializer(secret, salt="unsubscribe")
        self._view = URLSafeSerializer(secret, salt="view")

    def _url(self, path: str, token: str) -> str:
        return f"{self.base_url}{path}?{urlencode({'token': token})}"

    def confirm_url(self, subscriber_id: int, email: str) -> str:
        return self._url("/confirm", self._confirm.dumps([subscriber_id, email]))

    def manage_url(self, subscriber_id: int, email: str) -> str:
        return self._url("/manage", self._manage.dumps([subscriber_id, email]))

    def unsubscribe_token(self, subscriber_id: int, email: str) -> str:
        return self._unsubscribe.dumps([subscriber_id, email])

    def unsubscribe_url(self, subscriber_id: int, email: str) -> str:
        return self._url("/unsubscribe", self.unsubscribe_token(subscriber_id, email))

    def view_url(self, delivery_id: int) -> str:
        return self._url("/view", self._view.dumps(delivery_id))

    def read_confirm(self, token: str) -> Claim:
        return self._claim(self._confirm, token, CONFIRM_FOR)

    def read_manage(self, token: str) -> Claim:
        return self._claim(self._manage, token, MANAGE_FOR)

    def read_unsubscribe(self, token: str) -> Claim:
        return self._claim(self._unsubscribe, token, None)

    def read_view(self, token: str) -> int:
        try:
            value = self._view.loads(token)
        except BadSignature:
            raise BadLink("this link is not valid") from None
        if not isinstance(value, int):
            raise BadLink("this link is not valid")
        return value

    @staticmethod
    def _claim(
        signer: URLSafeSerializer | URLSafeTimedSerializer, token: str, life: timedelta | None
    ) -> Claim:
        try:
            if isinstance(signer, URLSafeTimedSerializer):
                value = signer.loads(token, max_age=int(life.total_seconds()) if life else None)
            else:
                value = signer.loads(token)
        except SignatureExpired:
            raise BadLink("this link has expired") from None
        except BadSignature:
            raise BadLink("this link is not valid") from None
        match value:
            case [int(subscriber_id), str(email)]:
                return Claim(subscriber_id, email)
        raise BadLink("this link is not valid")

    def code(self, subscriber_id: int, email: str, sent_at: datetime) -> str:
        """The six digits in a confirmation mail, for people who would rather type than click."""
        message = f"{subscriber_id}:{email}:{sent_at.isoformat()}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def links_for(engine: Engine) -> Links:
    return Links(secret_key(engine), get_settings().base_url)
