"""Mail that comes back to the From address: unsubscribe requests (the `mailto:` of
`List-Unsubscribe`) and bounces (delivery status notifications, see `bounces`).

Every mail offers `mailto:<sender>?subject=unsubscribe <token>` beside the https link, for
mail clients that only send mail. Those requests land in the sender address's mailbox;
paperboy reads them from a Maildir (where the mail server delivers that address, or where
fetchmail/getmail pulls it), because a Maildir needs no server of paperboy's own and is read
safely while the mail server writes to it.

Only unsubscribe requests and DSNs are touched: a request with a valid token unsubscribes
that address and is filed in the `paperboy-done` folder, a DSN that returns a mail paperboy
sent is acted on and filed in `paperboy-bounces`; a forged or stale token, and a DSN that
matches no mail sent (forged, malformed, for an address paperboy never mailed or no longer
has), are filed in `paperboy-refused` for a human to look at, having changed nothing.
Replies and everything else stay where they are.
"""

from __future__ import annotations

import logging
import mailbox
import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path

from sqlalchemy import Engine

from newsletter.mail.bounces import NotABounce, act_on, is_report, parse_report
from newsletter.mail.links import BadLink, Links
from newsletter.optin import OptInError, unsubscribe_address

log = logging.getLogger(__name__)

DONE, BOUNCES, REFUSED = "paperboy-done", "paperboy-bounces", "paperboy-refused"
# "unsubscribe <token>", perhaps after "Re:" or a client's own words; tokens are URL-safe.
REQUEST = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_.\-]{20,})", re.IGNORECASE)


@dataclass
class Handled:
    unsubscribed: list[str]
    refused: int = 0
    bounced: list[str] = field(default_factory=list)


def _subject(message: mailbox.MaildirMessage) -> str:
    raw = message.get("Subject", "")
    try:
        return str(make_header(decode_header(raw)))
    except (HeaderParseError, LookupError, UnicodeDecodeError):
        return str(raw)


def _bounced(engine: Engine, links: Links, message: mailbox.MaildirMessage) -> list[str]:
    """The addresses a DSN's bounces were recorded for (none: it matched no mail sent)."""
    try:
        bounces = parse_report(message)
    except NotABounce as problem:
        log.warning("malformed delivery status notification (%s)", problem)
        return []
    return [a for a in (act_on(engine, links, b) for b in bounces) if a is not None]


def read_maildir(engine: Engine, links: Links, folder: Path) -> Handled:
    """Act on every unsubscribe request and bounce waiting in the Maildir at `folder`; raises
    `mailbox.NoSuchMailboxError` when `folder` is no Maildir."""
    if not all((folder / part).is_dir() for part in ("cur", "new", "tmp")):
        raise mailbox.NoSuchMailboxError(str(folder))
    box = mailbox.Maildir(folder, create=False)
    done, refused = box.add_folder(DONE), box.add_folder(REFUSED)
    bounces = box.add_folder(BOUNCES)
    handled = Handled([])
    for key in list(box.iterkeys()):
        try:
            message = box[key]
        except KeyError:
            continue  # taken away meanwhile (another reader of the mailbox)
        if is_report(message):
            if addresses := _bounced(engine, links, message):
                bounces.add(message)
                handled.bounced += addresses
            else:
                refused.add(message)
                handled.refused += 1
            box.discard(key)
            continue
        found = REQUEST.search(_subject(message))
        if found is None:
            continue
        try:
            claim = links.read_unsubscribe(found.group(1))
            unsubscribe_address(engine, claim.subscriber_id, claim.email)
        except (BadLink, OptInError) as problem:
            log.warning("unsubscribe by mail refused (%s): filed in %s", problem, REFUSED)
            refused.add(message)
            handled.refused += 1
        else:
            log.info("address unsubscribed by mail: subscriber %s", claim.subscriber_id)
            done.add(message)
            handled.unsubscribed.append(claim.email)
        box.discard(key)
    return handled
