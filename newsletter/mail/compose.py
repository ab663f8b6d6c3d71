"""Turning a delivery into a message: the daily digest and the confirmation mail.

Paper text never reaches a header: subjects are built from counts and dates only, and the
recipient is an address email-validator accepted. Bodies are rendered with autoescaping
(HTML) and from already control-stripped text (plain), so hostile titles stay text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.charset import BASE64, Charset
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, parseaddr

from jinja2 import Environment

from newsletter.mail.links import CONFIRM_FOR, Links
from newsletter.sections import Section

# Bodies go out base64-encoded: every client reads it, and it costs a fraction of
# quoted-printable (the email package's QP encoder is pure Python).
UTF8 = Charset("utf-8")
UTF8.body_encoding = BASE64


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str


class Composer:
    """Builds messages; templates are loaded (and their CSS inlined) once, here."""

    def __init__(self, env: Environment, links: Links, mail_from: str) -> None:
        self.env = env  # the web pages render from the same templates
        self.links = links
        self.mail_from = mail_from
        self.domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
        self._daily_html = env.get_template("mail/daily.html")
        self._daily_text = env.get_template("mail/daily.txt")
        self._confirm_html = env.get_template("mail/confirm.html")
        self._confirm_text = env.get_template("mail/confirm.txt")

    def message_id(self, key: str) -> str:
        """Stable per delivery, so a resent mail is recognisably the same one."""
        return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{self.domain}>"

    def daily_context(
        self, delivery_id: int, to: Recipient, day: date, sections: list[Section]
    ) -> dict[str, object]:
        return {
            "day": day.isoformat(),
            "email": to.email,
            "sections": sections,
            "paper_count": sum(len(s.papers) for s in sections),
            "view_url": self.links.view_url(delivery_id),
            "manage_url": self.links.manage_url(to.subscriber_id, to.email),
            "unsubscribe_url": self.links.unsubscribe_url(to.subscriber_id, to.email),
        }

    def daily_html(self, context: dict[str, object]) -> str:
        return self._daily_html.render(context)

    def daily(
        self, key: str, delivery_id: int, to: Recipient, day: date, sections: list[Section]
    ) -> Message:
        context = self.daily_context(delivery_id, to, day, sections)
        count = context["paper_count"]
        subject = f"paperboy {day.isoformat()}: {count} new paper{'s' if count != 1 else ''}"
        message = self._message(
            key, to, subject, self._daily_text.render(context), self.daily_html(context)
        )
        unsubscribe = str(context["unsubscribe_url"])
        token = self.links.unsubscribe_token(to.subscriber_id, to.email)
        mailto = f"mailto:{parseaddr(self.mail_from)[1]}?subject=unsubscribe%20{token}"
        message["List-Unsubscribe"] = f"<{unsubscribe}>, <{mailto}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["List-Id"] = f"paperboy daily digest <daily.{self.domain}>"
        return message

    def confirmation(self, key: str, to: Recipient, code: str) -> Message:
        context = {
            "email": to.email,
            "code": code,
            "confirm_url": self.links.confirm_url(to.subscriber_id, to.email),
            "hours": int(CONFIRM_FOR.total_seconds() // 3600),
        }
        return self._message(
            key,
            to,
            f"Confirm your paperboy subscription: code {code}",
            self._confirm_text.render(context),
            self._confirm_html.render(context),
        )

    def _message(self, key: str, to: Recipient, subject: str, text: str, html: str) -> Message:
        message = MIMEMultipart("alternative")
        message["From"] = self.mail_from
        message["To"] = to.email  # email-validator accepted it: no spaces, no line breaks
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = self.message_id(key)
        message.attach(MIMEText(text, "plain", UTF8))
        message.attach(MIMEText(html, "html", UTF8))
        return message


def body(message: Message, subtype: str) -> str | None:
    """The decoded text of the message's `text/<subtype>` part."""
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            return payload.decode(part.get_content_charset() or "utf-8")  # type: ignore[union-attr]
    return None
