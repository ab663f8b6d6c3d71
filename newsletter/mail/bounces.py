"""Bounces that come back later: RFC 3464 delivery status notifications (DSNs).

Behind a relay nearly every refusal comes this way, not as an SMTP reply: the relay accepts
the mail, tries the reader's server, and writes a `multipart/report` to the envelope sender,
which is the From address, whose Maildir paperboy already reads for unsubscribe requests.

A DSN is believed only when it names an address paperboy has and returns the headers of a
mail paperboy sent there: the Message-ID of each mail is keyed with the installation's secret
(`Links.message_key`), so a DSN for a mail never sent, for someone else's address or for a
deleted reader matches nothing and changes nothing. A hard bounce (status 5.x.x) suspends
the address at once and fails the delivery; a soft one (4.x.x) is counted.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.mail.links import Links
from newsletter.models import Delivery, Subscriber
from newsletter.optin import EmailStatus
from newsletter.outbox import Status

log = logging.getLogger(__name__)

# RFC 3463: class.subject.detail
_STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}$")
_MESSAGE_ID = re.compile(r"<([0-9a-f]{32})@[^>]*>")


class NotABounce(ValueError):
    """A message that says it is a DSN but cannot be read as one; says what is missing."""


@dataclass(frozen=True)
class Bounce:
    """One recipient's report in a DSN, with the Message-ID of the mail it returns."""

    recipient: str
    action: str
    status: str
    diagnostic: str
    message_key: str | None

    @property
    def hard(self) -> bool:
        return self.status.startswith("5")


def is_report(message: Message) -> bool:
    return (
        message.get_content_type() == "multipart/report"
        and str(message.get_param("report-type", "")).lower() == "delivery-status"
    )


def parse_report(message: Message) -> list[Bounce]:
    """The failed or delayed recipients of a DSN (`is_report` is true of it); raises
    `NotABounce` naming what is missing."""
    status_part = returned = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status" and status_part is None:
            status_part = part
        elif kind in ("text/rfc822-headers", "message/rfc822", "message/rfc822-headers"):
            returned = returned or part
    if status_part is None:
        raise NotABounce("no message/delivery-status part")
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise NotABounce("the delivery-status part has no per-recipient fields")
    key = _returned_key(returned)
    bounces = []
    for block in blocks[1:]:  # the first block is about the message, the rest per recipient
        action = str(block.get("Action", "")).strip().lower()
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: nothing went wrong
        recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        status = str(block.get("Status", "")).strip().split(" ")[0]
        if recipient is None or not _STATUS.match(status):
            raise NotABounce(f"a {action} recipient without a valid Final-Recipient and Status")
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        bounces.append(Bounce(recipient, action, status, diagnostic, key))
    return bounces


def _address(field: object) -> str | None:
    """`rfc822; Ann@Example.org` as `ann@example.org` (addresses are stored lower-cased)."""
    kind, _, address = str(field or "").partition(";")
    address = address.strip().strip("<>").lower()
    return address if kind.strip().lower() == "rfc822" and "@" in address else None


def _returned_key(part: Message | None) -> str | None:
    """The Message-ID's local part of the returned mail, if it is one of paperboy's."""
    if part is None:
        return None
    payload = part.get_payload()
    if isinstance(payload, list) and payload:  # message/rfc822: parsed already
        headers = payload[0]
    else:  # text/rfc822-headers: a block of header lines
        raw = part.get_payload(decode=True) or b""
        headers = BytesHeaderParser().parsebytes(raw if isinstance(raw, bytes) else b"")
    found = _MESSAGE_ID.search(str(headers.get("Message-ID", "")))
    return found.group(1) if found else None


def act_on(engine: Engine, links: Links, bounce: Bounce) -> str | None:
    """Record one recipient's bounce; None when it matches no mail paperboy sent to that
    address (the reason is logged), else the address."""
    with Session(writing(engine)) as session, session.begin():
        reader = session.exec(
            select(Subscriber).where(Subscriber.email == bounce.recipient)
        ).first()
        if reader is None:
            log.warning("bounce for %s ignored: paperboy has no such address", bounce.recipient)
            return None
        sent = session.exec(
            select(Delivery).where(
                col(Delivery.subscriber_id) == reader.id,
                col(Delivery.kind).in_(["daily", "confirm"]),
                col(Delivery.status) == Status.SENT,
            )
        ).all()
        mail = next((d for d in sent if links.message_key(d.key) == bounce.message_key), None)
        if mail is None:
            log.warning(
                "bounce for %s ignored: it returns no mail paperboy sent there", bounce.recipient
            )
            return None
        what = f"bounced: {bounce.status} {bounce.diagnostic}".strip()
        if bounce.hard:
            mail.status, mail.last_error = Status.FAILED, what
            if reader.email_status != EmailStatus.SUSPENDED:
                reader.email_status = EmailStatus.SUSPENDED
                log.warning("suspended %s: hard bounce %s", reader.email, bounce.status)
        else:
            reader.soft_bounces += 1
            log.info("soft bounce %s for %s (%d)", bounce.status, reader.email, reader.soft_bounces)
        session.add_all([mail, reader])
        return reader.email
