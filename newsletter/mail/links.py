"""Signed links in mails: confirm an address, unsubscribe, manage topics, view in a browser.

Each kind of link has its own salt, so a token for one cannot be replayed as another, and
carries the address it was made for, so an old link stops working when the address changes.
Unsubscribe links never expire (a year-old mail must still let its reader out); confirm and
manage links do.

Tokens are itsdangerous's URL-safe ones, made without its compression attempt (see
`_Uncompressed`): for an id and an ordinary address, the very tokens it would make.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import (
    BadSignature,
    Serializer,
    SignatureExpired,
    Signer,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_encode
from itsdangerous.url_safe import URLSafeSerializerMixin
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from newsletter.config import get_settings
from newsletter.models import AppSetting

CONFIRM_FOR = timedelta(hours=48)
MANAGE_FOR = timedelta(days=90)
SECRET_SETTING = "secret_key"


class BadLink(ValueError):
    """A forged, altered or expired link; says which, never why in more detail."""


def secret_key(engine: Engine) -> str:
    """The configured key, else one made on first use and kept in the database."""
    configured = get_settings().secret_key
    if configured is not None:
        return configured.get_secret_value()
    with Session(engine) as session:
        stored = session.get(AppSetting, SECRET_SETTING)
        if stored is not None:
            return stored.value
        session.add(AppSetting(name=SECRET_SETTING, value=secrets.token_urlsafe(32)))
        try:
            session.commit()
        except IntegrityError:  # another process made it first: use theirs
            session.rollback()
        return session.get(AppSetting, SECRET_SETTING).value  # type: ignore[union-attr]


class _Uncompressed(URLSafeSerializerMixin):
    """Dumps as the URL-safe serializers do, minus their zlib attempt: it cost most of a token
    (a compressor set up per call) and only wins on a long, repetitive address, so tokens are
    the same ones, signed with the same key and salt (such an address gets an uncompressed
    token instead, as valid). Loading is unchanged and still reads a compressed payload, as
    an older mail's link may carry. The signer for the salt is made once, not once per token
    (it holds only the key and settings)."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))

    @functools.cached_property
    def _signer(self) -> Signer:
        return super().make_signer()

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        return self._signer if salt is None else super().make_signer(salt)


class _Signed(_Uncompressed, URLSafeSerializer):
    """Links that never expire (unsubscribe, view)."""


class _TimedSigned(_Uncompressed, URLSafeTimedSerializer):
    """Links that expire (confirm, manage): signed with the time they were made."""


@dataclass(frozen=True)
class Claim:
    subscriber_id: int
    email: str
    issued_at: datetime | None = None
    """When an expiring link was made (naive UTC), so a newer event can void it."""


class Links:
    def __init__(self, secret: str, base_url: str) -> None:
        self._secret = secret.encode()
        self.base_url = base_url.rstrip("/")
        self._confirm = _TimedSigned(secret, salt="confirm")
        self._manage = _TimedSigned(secret, salt="manage")
        self._unsubscribe = _Signed(secret, salt="unsubscribe")
        self._view = _Signed(secret, salt="view")

    def _url(self, path: str, token: str) -> str:
        # A token is URL-safe base64 and dots: nothing in it needs quoting.
        return f"{self.base_url}{path}?token={token}"

    def confirm_url(self, subscriber_id: int, email: str) -> str:
        return self._url("/confirm", self._confirm.dumps([subscriber_id, email]))

    def manage_url(self, subscriber_id: int, email: str) -> str:
        return self._url("/manage", self._manage.dumps([subscriber_id, email]))

    def unsubscribe_token(self, subscriber_id: int, email: str) -> str:
        return self._unsubscribe.dumps([subscriber_id, email])

    def unsubscribe_url(self, subscriber_id: int, email: str) -> str:
        return self.unsubscribe_link(self.unsubscribe_token(subscriber_id, email))

    def unsubscribe_link(self, token: str) -> str:
        """For a token already made: a mail carries it twice (link and mailto)."""
        return self._url("/unsubscribe", token)

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
            issued = None
            if isinstance(signer, URLSafeTimedSerializer):
                value, stamp = signer.loads(
                    token,
                    max_age=int(life.total_seconds()) if life else None,
                    return_timestamp=True,
                )
                issued = stamp.astimezone(UTC).replace(tzinfo=None)
            else:
                value = signer.loads(token)
        except SignatureExpired:
            raise BadLink("this link has expired") from None
        except BadSignature:
            raise BadLink("this link is not valid") from None
        match value:
            case [int(subscriber_id), str(email)]:
                return Claim(subscriber_id, email, issued)
        raise BadLink("this link is not valid")

    def message_key(self, key: str) -> str:
        """The local part of the Message-ID of the delivery `key`: keyed with the secret, so
        two installations (staging and production, a rebuilt database) never give different
        mails one id, and a bounce can be traced to the mail it returns."""
        digest = hmac.new(self._secret, f"message-id:{key}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def code(self, subscriber_id: int, email: str, sent_at: datetime) -> str:
        """The six digits in a confirmation mail, for people who would rather type than click."""
        message = f"{subscriber_id}:{email}:{sent_at.isoformat()}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def links_for(engine: Engine) -> Links:
    return Links(secret_key(engine), get_settings().base_url)
