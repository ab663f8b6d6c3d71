"""Papers as Discord messages: embeds within Discord's limits, paper text made inert.

Paper text is untrusted. Markdown and mentions in it are escaped so a title renders as
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
    """The JSON payloads of a post: the header line, then every paper as an embed."""
    if not content.sections:  # a notice: one line of text
        channel = f" (<#{content.about_channel}>)" if content.about_channel else ""
        text = clean(content.header, CONTENT_CHARS - len(channel)) + channel
        return [{"content": text, "allowed_mentions": NO_MENTIONS}]
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
