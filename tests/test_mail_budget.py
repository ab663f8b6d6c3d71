"""A daily mail stays under Gmail's clip (about 102 KB of HTML, past which the rest, the
unsubscribe footer included, is hidden): real papers, cut per topic, the rest linked."""

from __future__ import annotations

import email
import email.policy
from datetime import date, datetime
from email.message import EmailMessage

import pytest

from newsletter.mail.budget import PAPERS_PER_TOPIC
from newsletter.mail.compose import Recipient
from newsletter.sections import PaperView, Section
from newsletter.sources import parse_digest
from tests.conftest import DATA, SEED
from tests.mailing import composer

GMAIL_CLIP = 102 * 1024
READER = Recipient(7, "ann@example.org")


def real_papers(count: int) -> list[PaperView]:
    """`count` real papers from the shipped seed and the captured Daily Papers days."""
    papers = []
    days = sorted((DATA / "labels" / "days").glob("*.json"))
    for path in (SEED, *days):
        if len(papers) >= count:
            break
        parsed = parse_digest(path.read_bytes(), path.name, datetime(2026, 12, 2))
        papers += [PaperView.of(p, ("reasoning", "agents"), 4.0) for p in parsed.papers]
    assert len(papers) >= count
    return papers[:count]


def sections(topics: int, papers: int = 100) -> list[Section]:
    found = real_papers(papers)
    return [Section(f"Topic {n}", tuple(found[n::topics])) for n in range(topics)]


def daily(found: list[Section]) -> EmailMessage:
    mail = composer().daily("daily:7:2026-12-02", 3, READER, date(2026, 12, 2), found)
    return email.message_from_bytes(mail.data, policy=email.policy.default)  # type: ignore[return-value]


@pytest.mark.parametrize("topics", [1, 4, 25])
def test_a_hundred_papers_make_html_under_gmails_clip_with_the_footer(topics: int) -> None:
    message = daily(sections(topics))
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    size = len(html.encode())
    print(f"100 papers on {topics} topic(s): {size:,} bytes of HTML")
    assert size < GMAIL_CLIP
    assert 'href="http://paperboy.test/unsubscribe?token=' in html
    assert "Manage topics" in html


def test_many_topics_of_long_lists_are_cut_further_to_fit() -> None:
    """Twenty topics of twenty papers: ten a topic would be 200 papers, far past the clip."""
    message = daily(sections(20, papers=400))
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    shown = html.count('class="paper"')
    print(f"400 papers on 20 topics: {shown} shown, {len(html.encode()):,} bytes of HTML")
    assert len(html.encode()) < GMAIL_CLIP and "unsubscribe?token=" in html
    assert 20 <= shown < 20 * PAPERS_PER_TOPIC
    assert html.count("more papers on this topic</a>") == 20


def test_a_cut_topic_says_how_many_more_and_links_the_web_copy() -> None:
    message = daily(sections(1))
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    view = composer().links.view_url(3)
    shown = html.count('class="paper"')
    assert shown <= PAPERS_PER_TOPIC
    assert f'<a href="{view}">{100 - shown} more papers on this topic</a>' in html
    assert f"{100 - shown} more papers on this topic: {view}" in text
    assert "Topic 0 (100)" in html and "100 papers on 1 topic" in html


def test_a_topic_within_the_budget_is_shown_whole_without_a_more_line() -> None:
    message = daily(sections(1, papers=PAPERS_PER_TOPIC))
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert html.count('class="paper"') == PAPERS_PER_TOPIC
    assert "more paper" not in html


def test_readers_sharing_a_cut_list_each_get_their_own_web_copy_link() -> None:
    mails, found = composer(), sections(2)
    first = mails.daily("a", 3, READER, date(2026, 12, 2), found)
    second = mails.daily("b", 4, Recipient(8, "bo@example.org"), date(2026, 12, 2), found)
    for mail, delivery in ((first, 3), (second, 4)):
        message = email.message_from_bytes(mail.data, policy=email.policy.default)
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert html.count(f'<a href="{mails.links.view_url(delivery)}">') == 3  # top, two topics
