"""Why each paper is there: the words, the categories and the score, wherever it is shown."""

from __future__ import annotations

from datetime import date

import pytest
from paperboy_bot.embeds import paper_embed
from sqlalchemy import Engine

from newsletter.ingest import ingest_bytes
from newsletter.matcher import explain
from newsletter.pipeline import PaperHit, latest_digest_id, match_query
from newsletter.sections import PaperView, Section
from tests.conftest import DATA, NOW
from tests.test_mail_compose import READER, composer, parsed

QUERY = "cat:physics.ao-ph OR weather"
REASON = "weather · listed in physics.ao-ph · score "


@pytest.fixture
def hit(engine: Engine) -> PaperHit:
    """A real arXiv RSS paper matched by a word and by its category."""
    ingest_bytes(engine, (DATA / "arxiv-rss-cs.LG.xml").read_bytes(), "rss", NOW)
    digest = latest_digest_id(engine)
    assert digest is not None
    [found] = match_query(engine, digest, QUERY)
    return found


def test_words_categories_and_score_read_as_one_line() -> None:
    assert explain(("RL", "cat:cs.LG", "policy gradient", "cat:stat.ML"), 7.0) == (
        "RL, policy gradient · listed in cs.LG, stat.ML · score 7"
    )
    assert explain(("cat:cs.RO",)) == "listed in cs.RO"


def test_a_category_match_scores_as_much_as_a_title_hit_and_adds_to_the_words(
    hit: PaperHit,
) -> None:
    assert hit.terms == ("weather", "cat:physics.ao-ph")
    assert hit.score == 3 * hit.paper.title.lower().count("weather") + 3 + (
        hit.paper.abstract.lower().count("weather")
    )


def test_the_mail_says_why_each_paper_is_there(hit: PaperHit) -> None:
    view = PaperView.of(hit.paper, hit.terms, hit.score)
    mail = parsed(composer().daily("k", 3, READER, date(2026, 11, 25), [Section("Mine", (view,))]))
    for kind in ("plain", "html"):
        body = mail.get_body((kind,)).get_content()  # type: ignore[union-attr]
        assert f"matched: {REASON}{hit.score:g}" in body


def test_the_discord_embed_says_why_the_paper_is_there(hit: PaperHit) -> None:
    embed = paper_embed(PaperView.of(hit.paper, hit.terms, hit.score)).to_dict()
    assert {"name": "Matched", "value": f"{REASON}{hit.score:g}", "inline": True} in embed["fields"]
