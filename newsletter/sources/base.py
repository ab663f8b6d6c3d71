"""What every digest parser returns, the one error they raise, and the text rules they share.

Parsers never touch the database: they turn bytes into a `ParsedDigest` or raise
`DigestError`, so a malformed digest is rejected before anything is written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlencode

from newsletter.models import DigestPaper, Paper

# arXiv caps abstracts at 1,920 characters and titles well under 300; these limits leave a
# wide margin for other sources while refusing megabyte fields that would bloat every mail.
MAX_TITLE_CHARS = 1_000
MAX_ABSTRACT_CHARS = 20_000
MAX_AUTHORS = 3_000
MAX_AUTHOR_CHARS = 300
# The 10,000-paper benchmark digest is 17 MB; a real day is under 1 MB.
MAX_DIGEST_BYTES = 64 * 1024 * 1024
# Feeds and pages cost more per byte (feedparser reads about 2 MiB a second, the page's props
# are unescaped and copied): 16 MiB keeps one under 10 s and 250 MB (bench/parse_limits.py),
# and arXiv's largest daily listing is a few megabytes.
MAX_MARKUP_BYTES = 16 * 1024 * 1024
# Keys are indexed; PostgreSQL b-tree entries must stay under ~2.7 KB.
MAX_TITLE_KEY_CHARS = 500
# The database's own limits, read from the columns so that SQLite (which ignores them) and
# PostgreSQL (which fails the whole transaction) refuse the same digest, at the parser.
MAX_ARXIV_ID_CHARS: int = Paper.__table__.c.arxiv_id.type.length
MAX_ANNOUNCE_TYPE_CHARS: int = DigestPaper.__table__.c.announce_type.type.length
MAX_DB_INT = 2**31 - 1  # version and upvotes are INTEGER columns
# More digits than any INTEGER has; also keeps int() off Python's 4,300-digit refusal.
_MAX_INT_DIGITS = len(str(MAX_DB_INT))

# A search runs this pattern from every position of untrusted text, so it must not rescan:
# the lookbehinds let a match start only where a run of letters or digits starts, and the
# possessive quantifiers never give back what they took, so a 40 KB <guid> is one pass.
_ARXIV_ID = re.compile(
    r"(?P<id>(?<![\d.])\d{4}\.\d{4,5}(?!\d)|(?<![A-Za-z-])[a-z][a-z-]*+(?:\.[A-Za-z]{2})?/\d{7})"
    r"(?:v(?P<version>\d++))?"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_NON_WORD = re.compile(r"[\W_]+")
_BLANK_LINES = re.compile(r"\n\s*\n")


class DigestError(ValueError):
    """A digest that cannot be read, with the place it went wrong.

    `where` is a line ("line 12") or a JSON path ("$[3].paper.title"); `origin` is the file
    name or URL, filled in by whoever knows it.
    """

    def __init__(self, where: str, message: str, origin: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.message = message
        self.origin = origin

    def __str__(self) -> str:
        return f"{self.origin or '<digest>'}: {self.where}: {self.message}"


@dataclass(frozen=True)
class ParsedPaper:
    title: str
    abstract: str
    url: str
    authors: tuple[str, ...] = ()
    arxiv_id: str | None = None
    version: int | None = None
    upvotes: int | None = None
    categories: tuple[str, ...] = ()
    announce_type: str | None = None

    @property
    def title_key(self) -> str:
        return title_key(self.title)


@dataclass(frozen=True)
class ParsedDigest:
    source_format: str
    digest_date: date
    date_note: str
    papers: list[ParsedPaper] = field(default_factory=list)
    title: str | None = None


def title_key(title: str) -> str:
    """The normalised title that identifies a paper with no arXiv id.

    Case, punctuation, accents-as-composed and spacing differ between sources; the words do not.
    """
    folded = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NON_WORD.sub(" ", folded).split())[:MAX_TITLE_KEY_CHARS]


def split_arxiv_id(text: str, where: str, *, whole: bool = False) -> tuple[str, int | None] | None:
    """`2401.01234v2` -> (`2401.01234`, 2); unless `whole`, ids inside URLs and guids count too.

    An id or version over the database's limits is refused here, naming `where`.
    """
    match = _ARXIV_ID.fullmatch(text.strip()) if whole else _ARXIV_ID.search(text)
    if match is None:
        return None
    arxiv_id, version = match.group("id"), match.group("version")
    if len(arxiv_id) > MAX_ARXIV_ID_CHARS:
        raise DigestError(
            where,
            f"arXiv id of {len(arxiv_id):,} characters ({arxiv_id[:40]}...) is over the limit "
            f"of {MAX_ARXIV_ID_CHARS}",
        )
    if version is None:
        return arxiv_id, None
    if len(version) > _MAX_INT_DIGITS or int(version) > MAX_DB_INT:
        raise DigestError(
            where,
            f"version v{version[:30]} of arXiv id {arxiv_id} is over the limit of {MAX_DB_INT:,}",
        )
    return arxiv_id, int(version)


def strip_controls(text: str) -> str:
    """Drop control characters (NUL breaks PostgreSQL, ESC breaks terminals); keep tab and LF."""
    return _CONTROL.sub("", text)


def collapse_spaces(text: str) -> str:
    return " ".join(strip_controls(text).split())


def unwrap(text: str) -> str:
    """Join hard-wrapped lines into paragraphs; blank lines stay paragraph breaks."""
    paragraphs = (collapse_spaces(p) for p in _BLANK_LINES.split(strip_controls(text)))
    return "\n\n".join(p for p in paragraphs if p)


def arxiv_abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def arxiv_title_search_url(title: str) -> str:
    """A link that finds a paper we only know by title."""
    query = urlencode({"query": collapse_spaces(title), "searchtype": "title"})
    return f"https://arxiv.org/search/?{query}"


def checked_paper(where: str, paper: ParsedPaper) -> ParsedPaper:
    """Refuse fields no real digest has, naming the place, so nothing oversized is stored."""
    if not paper.title.strip():
        raise DigestError(where, "expected a title, found an empty one")
    if len(paper.title) > MAX_TITLE_CHARS:
        raise DigestError(
            where,
            f"title of {len(paper.title):,} characters is over the limit of {MAX_TITLE_CHARS:,}",
        )
    if len(paper.abstract) > MAX_ABSTRACT_CHARS:
        raise DigestError(
            where,
            f"abstract of {len(paper.abstract):,} characters is over the limit of "
            f"{MAX_ABSTRACT_CHARS:,}",
        )
    if len(paper.authors) > MAX_AUTHORS:
        raise DigestError(
            where, f"{len(paper.authors):,} authors is over the limit of {MAX_AUTHORS:,}"
        )
    if paper.announce_type is not None and len(paper.announce_type) > MAX_ANNOUNCE_TYPE_CHARS:
        raise DigestError(
            where,
            f"announce type of {len(paper.announce_type):,} characters is over the limit of "
            f"{MAX_ANNOUNCE_TYPE_CHARS}",
        )
    if paper.upvotes is not None and not 0 <= paper.upvotes <= MAX_DB_INT:
        raise DigestError(where, f"upvotes {paper.upvotes} is outside 0 to {MAX_DB_INT:,}")
    for name in paper.authors:
        if len(name) > MAX_AUTHOR_CHARS:
            raise DigestError(
                where,
                f"author name of {len(name):,} characters is over the limit of {MAX_AUTHOR_CHARS}",
            )
    return paper


def decode_utf8(data: bytes) -> str:
    """Decode strictly; a bad byte is reported by line so the file can be fixed."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DigestError(
            f"line {line}", f"invalid UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start})"
        ) from None
    return text.removeprefix("\ufeff")
