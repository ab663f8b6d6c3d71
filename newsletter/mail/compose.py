"""Turning a delivery into a mail: the daily digest and the confirmation mail.

Paper text never reaches a header: subjects are built from counts and dates only, and the
recipient is an address email-validator accepted. Bodies are rendered with autoescaping
(HTML) and from already control-stripped text (plain), so hostile titles stay text.

The wire bytes are assembled here rather than by the `email` package: its generator walks
and re-encodes every header and line in Python and cost more than rendering. The structure
is fixed (multipart/alternative: text then HTML, both UTF-8 in base64), so everything but a
handful of per-mail headers and the two bodies is laid out once per composer.

Most of a daily mail is its list of papers, and readers who follow the same topics get the
same list: the daily templates put it in a `{% block papers %}`, rendered once per distinct
list and day and reused, so a mail renders only its header and footer (links, address).
"""

from __future__ import annotations

import base64
import email
import email.policy
import functools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any, cast

from jinja2 import Environment, Template

from newsletter.mail import budget
from newsletter.mail.links import CONFIRM_FOR, Links
from newsletter.sections import Section

# Any C0 control or DEL in a header value could end the header or smuggle another in.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Base64 alphabet has no "-", so no body line can begin with "--": one boundary serves all.
_PART = (
    '--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
    "Content-Transfer-Encoding: base64\r\n\r\n"
)
# Paper lists kept rendered: one per distinct topic set a batch's readers follow is enough to
# share them, and the bound keeps memory flat however many readers and topic sets there are.
SHARED_LISTS = 256


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str


@dataclass(frozen=True)
class Mail:
    """A mail as it goes on the wire, with the envelope and the id the transports need.

    `data` is what SMTP's DATA carries before its end marker: CRLF line ends only, and no
    line starting with a dot (no dot-stuffing needed), so the transport sends it unchanged.
    """

    sender: str
    recipient: str
    message_id: str
    data: bytes


def header(name: str, value: str, *, words: bool = False) -> str:
    """One header line. A control character is refused, since a CR or LF would let the value
    add headers of its own. Non-ASCII in free text (`words`: a subject) goes as RFC 2047
    encoded words; elsewhere it stays UTF-8 (RFC 6532): only an internationalised address
    carries any, and the transport asks the server for SMTPUTF8 for it."""
    if _CONTROL.search(value):
        raise ValueError(f"{name} header value holds a control character: {value!r}")
    if words and not value.isascii():
        value = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {value}\r\n"


def mailbox(value: str) -> tuple[str, str]:
    """A `Name <address>` setting as (header value, bare address), the name RFC 2047-encoded
    when it is not ASCII (encoding the whole value would hide the address from clients)."""
    name, address = parseaddr(value)
    if not address:
        raise ValueError(f"{value!r} is not a mail address")
    return formataddr((name, address), charset="utf-8"), address


def _base64(text: str) -> bytes:
    """In 76-character CRLF lines (RFC 2045); slicing one encoding beats `encodebytes`."""
    encoded = base64.b64encode(text.encode())
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return b"\r\n".join(lines) + b"\r\n" if lines else b""


class Composer:
    """Builds mails; templates are loaded (and their CSS inlined) once, here."""

    def __init__(self, env: Environment, links: Links, mail_from: str) -> None:
        self.env = env  # the web pages render from the same templates
        self.links = links
        self.mail_from = mail_from
        sender_header, self.sender = mailbox(mail_from)
        self.domain = self.sender.rpartition("@")[2] or "localhost"
        self._daily_html = env.get_template("mail/daily.html")
        self._daily_text = env.get_template("mail/daily.txt")
        self._confirm_html = env.get_template("mail/confirm.html")
        self._confirm_text = env.get_template("mail/confirm.txt")
        self._papers_by_value = functools.lru_cache(maxsize=SHARED_LISTS)(_render_papers)
        self._by_identity: dict[tuple[object, ...], tuple[object, object]] = {}
        boundary = f"=_paperboy_{secrets.token_hex(12)}"
        self._head = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
            f"MIME-Version: 1.0\r\n{header('From', sender_header)}"
        )
        self._text_part = ("\r\n" + _PART.format(boundary=boundary, subtype="plain")).encode()
        self._html_part = ("\r\n" + _PART.format(boundary=boundary, subtype="html")).encode()
        self._end = f"\r\n--{boundary}--\r\n".encode()
        self._list_id = header("List-Id", f"paperboy daily digest <daily.{self.domain}>")

    def message_id(self, key: str) -> str:
        """Stable per delivery, so a resent mail is recognisably the same one; unique per
        installation (see `Links.message_key`)."""
        return f"<{self.links.message_key(key)}@{self.domain}>"

    def daily_context(
        self, delivery_id: int, to: Recipient, day: date, sections: list[Section]
    ) -> dict[str, object]:
        token = self.links.unsubscribe_token(to.subscriber_id, to.email)
        return {
            "day": day.isoformat(),
            "email": to.email,
            "sections": tuple(sections),
            "paper_count": sum(len(s.papers) for s in sections),
            "view_url": self.links.view_url(delivery_id),
            "manage_url": self.links.manage_url(to.subscriber_id, to.email),
            "unsubscribe_url": self.links.unsubscribe_link(token),
            "unsubscribe_mailto": f"mailto:{self.sender}?subject=unsubscribe%20{token}",
        }

    def daily_html(self, context: dict[str, object], *, whole: bool = False) -> str:
        """The HTML part; `whole`: every paper, as the web copy shows them, else the mail's
        budget (see `budget`)."""
        cap = None if whole else self._cap(context["day"], context["sections"])
        return self._daily(self._daily_html, context, cap)

    def _daily(self, template: Template, context: dict[str, object], cap: int | None) -> str:
        """`template` rendered with its `papers` block taken from the shared renderings (a
        template of one's own without the block is rendered whole), `cap` papers a topic."""
        if "papers" not in template.blocks:
            return template.render(context)
        sections = cast(tuple[Section, ...], context["sections"])
        papers = self._papers(template, context["day"], sections, cap)
        if budget.VIEW_MARK in papers:  # a topic was cut: its "more" links the web copy
            papers = papers.replace(budget.VIEW_MARK, cast(str, context["view_url"]))
        try:
            rendering = template.new_context(context)
            rendering.blocks["papers"] = [lambda _: iter((papers,))]
            return "".join(template.root_render_func(rendering))
        except Exception:  # as `Template.render` does: the traceback points into the template
            return template.environment.handle_exception()

    def _shared(self, key: tuple[object, ...], keep: object, make: Callable[[], object]) -> Any:
        """What `make` returns, kept under `key` (ids of `keep`'s objects, which the entry
        holds, so no id is reused while it is there); bounded."""
        kept = self._by_identity.get(key)
        if kept is None:
            if len(self._by_identity) >= SHARED_LISTS:
                del self._by_identity[next(iter(self._by_identity))]
            kept = self._by_identity[key] = (keep, make())
        return kept[1]

    def _papers(
        self, template: Template, day: object, sections: tuple[Section, ...], cap: int | None
    ) -> str:
        """The shared rendering of these sections, found by their identity first: readers in
        one batch hold the very same objects, a dictionary probe. A later batch makes equal
        objects anew, found by value (hashing and comparing every paper's fields, which per
        mail cost more than rendering the rest of it), once per list and batch."""
        key = (template, day, cap, *map(id, sections))
        return cast(
            str,
            self._shared(
                key, sections, lambda: self._papers_by_value(template, day, sections, cap)
            ),
        )

    def _cap(self, day: object, sections: tuple[Section, ...]) -> int | None:
        """Papers per topic this list gets in a mail: the first of `budget.STEPS` whose HTML
        fits `budget.PAPERS_BYTES`; found once per shared list."""

        def fitting() -> int:
            if "papers" not in self._daily_html.blocks:
                return budget.PAPERS_PER_TOPIC
            for cap in budget.STEPS:
                html = self._papers(self._daily_html, day, sections, cap)
                if len(html.encode()) <= budget.PAPERS_BYTES:
                    break
            return cap

        return cast(int, self._shared(("cap", day, *map(id, sections)), sections, fitting))

    def daily(
        self, key: str, delivery_id: int, to: Recipient, day: date, sections: list[Section]
    ) -> Mail:
        """The daily mail; `day` is the date of the newest digest it holds."""
        context = self.daily_context(delivery_id, to, day, sections)
        count = context["paper_count"]
        subject = f"paperboy {day.isoformat()}: {count} new paper{'s' if count != 1 else ''}"
        unsubscribe = f"<{context['unsubscribe_url']}>, <{context['unsubscribe_mailto']}>"
        listing = (
            # Folded (RFC 5322): the two addresses together pass 78 characters.
            header("List-Unsubscribe", unsubscribe).replace(">, <", ">,\r\n <", 1)
            + header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
            + self._list_id
        )
        html = self.daily_html(context)
        text = self._daily(
            self._daily_text, context, self._cap(context["day"], context["sections"])
        )
        return self._mail(key, to, subject, text, html, listing)

    def confirmation(self, key: str, to: Recipient, code: str) -> Mail:
        context = {
            "email": to.email,
            "code": code,
            "confirm_url": self.links.confirm_url(to.subscriber_id, to.email),
            "hours": int(CONFIRM_FOR.total_seconds() // 3600),
        }
        return self._mail(
            key,
            to,
            f"Confirm your paperboy subscription: code {code}",
            self._confirm_text.render(context),
            self._confirm_html.render(context),
        )

    def _mail(
        self, key: str, to: Recipient, subject: str, text: str, html: str, extra: str = ""
    ) -> Mail:
        message_id = self.message_id(key)
        head = (
            self._head
            + header("To", to.email)
            + header("Subject", subject, words=True)
            + header("Date", format_datetime(datetime.now(UTC)))
            + header("Message-ID", message_id)
            + "Auto-Submitted: auto-generated\r\n"
            + extra
        )
        data = b"".join(
            (
                head.encode(),
                self._text_part,
                _base64(text),
                self._html_part,
                _base64(html),
                self._end,
            )
        )
        return Mail(self.sender, to.email, message_id, data)


def _render_papers(
    template: Template, day: object, sections: tuple[Section, ...], cap: int | None
) -> str:
    """A daily template's `papers` block, which sees only what every reader of these papers
    shares (the day, the sections cut to `cap` papers a topic, and a mark where the web
    copy's address goes): a per-reader name in it is an error, not a leak."""
    shared = {"day": day, "sections": budget.trimmed(sections, cap), "view_url": budget.VIEW_MARK}
    try:
        return "".join(template.blocks["papers"](template.new_context(shared)))
    except Exception:
        return template.environment.handle_exception()


def body(data: bytes, subtype: str) -> str | None:
    """The decoded text of a mail's `text/<subtype>` part (for previews: parsing is slow)."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    part = message.get_body((subtype,))  # type: ignore[attr-defined]
    return None if part is None else str(part.get_content())
