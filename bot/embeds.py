"""Papers as Discord messages: embeds within Discord's limits, paper text made inert.

A post is compact by default: the papers as a list of linked titles with why each matched,
best first, in at most two messages, and "N more" with a link to the digest's page where
the rest do not fit; the full format (a feed's choice) is an embed per paper. Paper text
is untrusted. Markdown and mentions in it are escaped so a title renders as
written, line breaks are flattened, and every message says `allowed_mentions: none`, so
even an `@everyone` that slipped through would ping nobody. Discord refuses a message over
its limits whole, so every field is trimmed and messages are packed to stay inside them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import discord

from newsletter.feeds import PostContent
from newsletter.sections import PaperView, Section

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object).
EMBEDS_PER_MESSAGE = 10
MESSAGE_EMBED_CHARS = 6000
CONTENT_CHARS = 2000
TITLE_CHARS = 256
DESCRIPTION_CHARS = 4096
AUTHOR_CHARS = 256
FIELD_CHARS = 1024
# A topic may be a long query of its own; a footer line is enough to name it.
TOPIC_CHARS = 256
COLOUR = 0xF4B400
NO_MENTIONS: dict[str, list[str]] = {"parse": []}

# Everything Discord reads as markup: markdown, spoilers, masked links ([text](url)), the
# angle-bracket forms (<@id>, <#id>, <t:0:R>, </cmd:id>, <:emoji:id>) and @everyone.
# Discord, like CommonMark, shows a backslash before punctuation as that character alone,
# so escaping every one of these keeps the text as written; escaping recognised constructs
# only (as discord.py's escape_markdown does) leaves live whatever its patterns miss.
_MARKUP = re.compile(r"([\\*_~`|<>\[\]@])")
# Headings, quotes and lists are markup only at the start of a line.
_LINE_START = re.compile(r"^(\d*)([#.\-+])(?=\s)")


def _flat(text: str) -> str:
    """One line of visible characters: breaks (CR, U+2028...) and other control characters
    become spaces; format characters (bidi overrides, zero-width joiners) are dropped, as
    they would reorder or hide what a reader sees."""
    kept = []
    for char in text:
        kind = unicodedata.category(char)
        if kind == "Cf":
            continue
        kept.append(" " if kind in ("Cc", "Zl", "Zp") or char.isspace() else char)
    return " ".join("".join(kept).split())


def inert(text: str) -> str:
    """Untrusted text as a single line that Discord shows exactly as written."""
    return _LINE_START.sub(r"\1\\\2", _MARKUP.sub(r"\\\1", _flat(text)))


def clean(text: str, limit: int) -> str:
    """Untrusted text made inert, at most `limit` characters (cut with an ellipsis)."""
    safe = inert(text)
    if len(safe) <= limit:
        return safe
    cut = safe[: limit - 1]
    # Never end on half of an escape: a lone backslash would escape the ellipsis.
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut.rstrip() + "…"


def _web_url(url: str) -> str | None:
    """Discord refuses a whole message whose embed URL is not http(s)."""
    return url if re.match(r"https?://[^\s]+$", url) and len(url) <= 2000 else None


def paper_embed(paper: PaperView, topic: str | None = None) -> discord.Embed:
    embed = discord.Embed(
        title=clean(paper.title, TITLE_CHARS) or "(untitled)",
        url=_web_url(paper.url),
        description=clean(paper.abstract, DESCRIPTION_CHARS),
        colour=COLOUR,
    )
    if paper.authors:
        embed.set_author(name=clean(paper.authors, AUTHOR_CHARS))
    if paper.terms:
        embed.add_field(name="Matched", value=clean(paper.why, FIELD_CHARS))
    if paper.upvotes is not None:
        embed.add_field(name="Upvotes", value=str(paper.upvotes))
    if topic:
        embed.set_footer(text=clean(topic, TOPIC_CHARS))
    return embed


def section_embeds(sections: list[Section]) -> list[discord.Embed]:
    """Every paper as an embed; with several topics, each names its topic in the footer."""
    topics = len(sections) > 1
    return [
        paper_embed(paper, section.topic if topics else None)
        for section in sections
        for paper in section.papers
    ]


def pack(embeds: list[discord.Embed]) -> list[list[discord.Embed]]:
    """Embeds grouped into messages: ten at most, 6,000 embed characters at most."""
    groups: list[list[discord.Embed]] = [[]]
    size = 0
    for embed in embeds:
        if len(groups[-1]) == EMBEDS_PER_MESSAGE or size + len(embed) > MESSAGE_EMBED_CHARS:
            groups.append([])
            size = 0
        groups[-1].append(embed)
        size += len(embed)
    return groups


def messages(content: PostContent) -> list[dict[str, Any]]:
    """The JSON payloads of a post, a DM or a notice."""
    if not content.sections:  # a notice: one line of text
        channel = f" (<#{content.about_channel}>)" if content.about_channel else ""
        text = clean(content.header, CONTENT_CHARS - len(channel)) + channel
        return [{"content": text, "allowed_mentions": NO_MENTIONS}]
    if content.post_format == "full":
        return full_messages(content)
    return compact_messages(content.header, content.sections, content.more_url)


def full_messages(content: PostContent) -> list[dict[str, Any]]:
    """The header line, then every paper as an embed, as many messages as that takes."""
    payloads = []
    for number, group in enumerate(pack(section_embeds(content.sections))):
        payload: dict[str, Any] = {
            "embeds": [embed.to_dict() for embed in group],
            "allowed_mentions": NO_MENTIONS,
        }
        if number == 0:
            payload["content"] = clean(content.header, CONTENT_CHARS)
        payloads.append(payload)
    return payloads


# A compact post: at most this many messages, each line a paper's linked title and reason;
# at most `LISTED` papers (shared out among a DM's topics), as a channel reads a list of
# twenty, not a wall of sixty.
COMPACT_MESSAGES = 2
LISTED = 20
LINE_TITLE_CHARS = 200
LINE_WHY_CHARS = 160
# A longer link would crowd out the titles; such a paper is listed without its link.
LINK_CHARS = 300
# The longest line: number, title, link and reason.
LINE_CHARS = 8 + LINE_TITLE_CHARS + LINK_CHARS + 4 + 3 + LINE_WHY_CHARS


def _link(url: str | None) -> str | None:
    """A URL safe inside a masked link: http(s), short, and no character that ends it."""
    safe = _web_url(url or "")
    if safe is None or len(safe) > LINK_CHARS:
        return None
    return safe.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def paper_line(number: int, paper: PaperView) -> str:
    """`1. [Title](url) · reason`: the title inert (its brackets escaped, so a masked link
    in it is text), linked to the paper when the paper has a web address."""
    title = clean(paper.title, LINE_TITLE_CHARS) or "(untitled)"
    url = _link(paper.url)
    line = f"{number}. " + (f"[{title}]({url})" if url else title)
    why = clean(paper.why, LINE_WHY_CHARS)
    return f"{line} · {why}" if why else line


def more_line(count: int, url: str | None) -> str:
    text = f"…and {count} more"
    link = _link(url)
    return f"**{text}** on [the digest's page]({link})" if link else f"**{text}**"


class _Packer:
    """Lines into embeds into at most `COMPACT_MESSAGES` messages, each inside Discord's
    limits, keeping room in the last message for the "N more" line (`reserve` characters)."""

    def __init__(self, reserve: int) -> None:
        self.messages: list[list[dict[str, Any]]] = [[]]
        self.reserve = reserve + 1  # and its line break

    def _kept(self) -> int:
        """Room for the "N more" line in whichever embed turns out to be the last."""
        return self.reserve

    def _size(self) -> int:
        return sum(len(e.get("title", "")) + len(e["description"]) for e in self.messages[-1])

    def _fits(self, line: str) -> bool:
        """Whether the line fits at the end of the last embed."""
        if not self.messages[-1]:
            return False
        grows = len(line) + 1
        description = len(self.messages[-1][-1]["description"])
        return (
            description + grows + self._kept() <= DESCRIPTION_CHARS
            and self._size() + grows + self._kept() <= MESSAGE_EMBED_CHARS
        )

    def _open(self, title: str | None) -> bool:
        """A new embed after the last, in a new message if the last has no room for it."""
        embed: dict[str, Any] = {"description": "", "color": COLOUR}
        if title:
            embed["title"] = title
        embeds = self.messages[-1]
        if len(embeds) == EMBEDS_PER_MESSAGE or (
            self._size() + len(title or "") + LINE_CHARS + self._kept() > MESSAGE_EMBED_CHARS
        ):
            if len(self.messages) == COMPACT_MESSAGES:
                return False
            self.messages.append([])
        self.messages[-1].append(embed)
        return True

    def add(self, line: str, title: str | None, new_topic: bool) -> bool:
        """The line at the end of the list (a new topic starts an embed of its own); False
        when there is no room left for it."""
        needs_embed = new_topic or not self._fits(line)
        if needs_embed and not (self._open(title if new_topic else None) and self._fits(line)):
            return False
        embed = self.messages[-1][-1]
        embed["description"] = "\n".join(filter(None, (embed["description"], line)))
        return True

    def finish(self, line: str) -> None:
        """The "N more" line, in the room kept for it."""
        embed = self.messages[-1][-1]
        embed["description"] = "\n".join(filter(None, (embed["description"], line)))


def _quotas(sizes: list[int], slots: int) -> list[int]:
    """How many papers of each topic to list: the slots dealt out one per topic in turn,
    so a reader's second topic is not crowded out by a busy first one."""
    quotas = [0] * len(sizes)
    while slots and any(q < n for q, n in zip(quotas, sizes, strict=True)):
        for index, size in enumerate(sizes):
            if slots and quotas[index] < size:
                quotas[index] += 1
                slots -= 1
    return quotas


def compact_messages(
    header: str, sections: list[Section], more_url: str | None = None
) -> list[dict[str, Any]]:
    """The papers as numbered, linked titles with their reason, best first, in at most
    `COMPACT_MESSAGES` messages: an embed per topic (titled when there are several), and
    "…and N more" linking to the digest's page for those beyond `LISTED` or the room."""
    total = sum(len(s.papers) for s in sections)
    packer = _Packer(len(more_line(total, more_url)))
    titled = len(sections) > 1
    quotas = _quotas([len(s.papers) for s in sections], LISTED)
    lines = [
        (clean(section.topic, TITLE_CHARS) if titled else None, index == 0, paper)
        for section, quota in zip(sections, quotas, strict=True)
        for index, paper in enumerate(section.papers[:quota])
    ]
    shown = 0
    for title, new_topic, paper in lines:
        if not packer.add(paper_line(shown + 1, paper), title, new_topic):
            break
        shown += 1
    if shown < total:
        packer.finish(more_line(total - shown, more_url))
    payloads: list[dict[str, Any]] = []
    for number, embeds in enumerate(m for m in packer.messages if m):
        payload: dict[str, Any] = {"embeds": embeds, "allowed_mentions": NO_MENTIONS}
        if number == 0:
            payload["content"] = clean(header, CONTENT_CHARS)
        payloads.append(payload)
    return payloads
