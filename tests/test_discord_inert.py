"""Paper text on Discord shows exactly as written: no markup, mention, link or hidden
character in it does anything, and no field it fills hides what the bot wrote around it."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paperboy_bot.embeds import CONTENT_CHARS, clean, inert, messages

from newsletter.feeds import PostContent, digest_label
from newsletter.models import Digest
from newsletter.sections import PaperView, Section
from tests.discord_standin import shown

# What Discord reads as markup when it is not escaped.
_MARKUP = set("\\*_~`|<>[]@")


def live(text: str) -> list[str]:
    """Markup characters that no backslash escapes."""
    found, escaped = [], False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _MARKUP:
            found.append(char)
    return found


HOSTILE = [
    "[click here](http://evil.example/login)",
    "[a](http://x.example) then [b](http://y.example) and **bold** after",
    "[[nested](http://a.example)](http://b.example)",
    "**bold** __underline__ *it* _it_ ~~strike~~ `code` ```block``` ||spoiler||",
    "# heading",
    "> quote >>> block quote",
    "- list item",
    "1. ordered item",
    "+ plus item",
    "@everyone @here",
    "<@123> <@!123> <@&456> <#789> <t:0:R> </feed add:123> <:x:123> <a:y:456>",
    "<@123456789012345678> twice <@123456789012345678>",
    "\\[escaped already](http://evil.example)",
    "a \\\\ backslash then *star*",
    "https://evil.example/<@1>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_shows_as_written_with_no_markup_live(text: str) -> None:
    safe = inert(text)
    assert live(safe) == []
    assert shown(safe) == text


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("CR\rinside", "CR inside"),
        ("line\r\nbreak", "line break"),
        ("line\u2028separator\u2029paragraph", "line separator paragraph"),
        ("next\u0085line", "next line"),
        ("tab\tand\x0bvertical", "tab and vertical"),
        ("left\u202eright override", "leftright override"),
        ("zero\u200bwidth\u200djoiner\u2060word\ufeff", "zerowidthjoinerword"),
        ("  runs   of\n\n spaces  ", "runs of spaces"),
    ],
)
def test_breaks_become_spaces_and_format_characters_go(text: str, plain: str) -> None:
    assert inert(text) == plain


@given(st.text(max_size=300), st.integers(min_value=2, max_value=200))
def test_cut_text_stays_inert_and_in_its_limit(text: str, limit: int) -> None:
    safe = clean(text, limit)
    assert len(safe) <= limit
    assert live(safe) == []
    assert not any(unicodedata.category(c) in ("Cf", "Cc", "Zl", "Zp") for c in safe)


def test_a_huge_feed_title_leaves_the_topic_and_count_in_the_header() -> None:
    digest = Digest(title="T" * 3000, digest_date=date(2025, 9, 9), source_format="arxiv-rss")
    paper = PaperView("A paper", "https://arxiv.org/abs/2509.00001", "Ann", ("agent",), "x")
    header_text = f"{digest_label(digest)} · Agents: 1 paper"
    content = PostContent(1, None, header_text, [Section("Agents", (paper,))])
    header = messages(content)[0]["content"]
    assert len(header) <= CONTENT_CHARS
    assert shown(header).endswith("2025-09-09 · Agents: 1 paper")


def test_a_notice_names_its_channel_as_a_live_mention_after_inert_text() -> None:
    content = PostContent(
        None, 7, "I stopped posting <#1> [x](http://e.example) to a channel", [], about_channel=42
    )
    text = messages(content)[0]["content"]
    assert text.endswith(" (<#42>)")
    assert live(text.removesuffix(" (<#42>)")) == []
