"""Matching a digest against queries: which papers, in what order, and why."""

from __future__ import annotations

import pytest

from newsletter.matcher import TITLE_WEIGHT, DigestIndex
from newsletter.query import parse
from newsletter.sources import parse_digest
from tests.conftest import NOW, SEED


@pytest.fixture(scope="module")
def seed_titles() -> list[str]:
    return [p.title for p in parse_digest(SEED.read_bytes(), "seed", NOW).papers]


@pytest.fixture(scope="module")
def seed_index() -> DigestIndex:
    papers = parse_digest(SEED.read_bytes(), "seed", NOW).papers
    return DigestIndex([(p.title, p.abstract) for p in papers])


def small(*papers: tuple[str, str]) -> DigestIndex:
    return DigestIndex(list(papers))


def test_continual_or_lifelong_finds_the_seed_papers_named_so(
    seed_index: DigestIndex, seed_titles: list[str]
) -> None:
    found = {
        seed_titles[h.paper] for h in seed_index.match(parse('"continual learning" OR lifelong'))
    }
    assert "A Comprehensive Survey of Continual Learning: Theory, Method and Application" in found
    assert "Towards Lifelong Learning of Large Language Models: A Survey" in found
    assert "Safety Subspaces are Not Distinct: A Fine-Tuning Case Study" not in found


def test_each_hit_says_which_terms_made_it_match(seed_index: DigestIndex) -> None:
    for hit in seed_index.match(parse('"continual learning" OR lifelong')):
        assert set(hit.terms) <= {"continual learning", "lifelong"}
        assert hit.terms


def test_hits_come_best_first(seed_index: DigestIndex) -> None:
    scores = [h.score for h in seed_index.match(parse("reinforcement learning"))]
    assert scores == sorted(scores, reverse=True)


def test_a_title_hit_outweighs_an_abstract_hit() -> None:
    index = small(("Distillation at scale", "We study models."), ("Models", "We use distillation."))
    hits = index.match(parse("distillation"))
    assert [(h.paper, h.score) for h in hits] == [(0, TITLE_WEIGHT), (1, 1.0)]


def test_a_place_hit_by_several_terms_counts_once() -> None:
    index = small(("Models", "Knowledge distillation helps. LLM agents and agents."))
    [phrase_and_word] = index.match(parse('"knowledge distillation" OR distillation'))
    [same_stem] = index.match(parse("agent OR agents"))
    assert (phrase_and_word.score, same_stem.score) == (1.0, 2.0)
    assert phrase_and_word.terms == ("knowledge distillation", "distillation")


def test_min_score_drops_papers_that_mention_the_query_only_in_passing() -> None:
    index = small(("Distillation at scale", "x"), ("Models", "Unlike distillation, we ..."))
    assert [h.paper for h in index.match(parse("distillation"), min_score=2)] == [0]


def test_stemming_finds_other_forms_of_the_word() -> None:
    index = small(("Distilling LLMs", "Abstract."), ("Nothing", "Unrelated."))
    assert [h.paper for h in index.match(parse("distillation LLM"))] == [0]


def test_an_abbreviation_matches_whole_words_only() -> None:
    index = small(
        ("RL for robots", "x"),
        ("RLHF for chat", "x"),
        ("A world of URLs", "x"),
    )
    assert [h.paper for h in index.match(parse("RL"))] == [0]


def test_agentic_is_not_folded_into_agent() -> None:
    index = small(("Agentic coding", "x"), ("An RL agent", "x"))
    assert [h.paper for h in index.match(parse("agentic"))] == [0]
    assert [h.paper for h in index.match(parse("agent"))] == [1]


def test_a_phrase_needs_its_words_adjacent_and_in_order() -> None:
    index = small(
        ("Continual learning", "x"),
        ("Learning continual", "x"),
        ("Continual and stable learning", "x"),
    )
    assert [h.paper for h in index.match(parse('"continual learning"'))] == [0]


def test_title_prefix_ignores_the_abstract() -> None:
    index = small(("Agents", "x"), ("Something", "about agents"))
    assert [h.paper for h in index.match(parse("title:agents"))] == [0]


def test_not_excludes_papers_with_the_word() -> None:
    index = small(("Agents survey", "x"), ("Agents at work", "x"))
    assert [h.paper for h in index.match(parse("agents -survey"))] == [1]


def test_hostile_text_is_just_words() -> None:
    index = small(('<script>alert(1)</script> @everyone "><img onerror=x>', "\u202e evil"))
    assert [h.paper for h in index.match(parse("script everyone"))] == [0]


def test_an_empty_digest_matches_nothing() -> None:
    assert DigestIndex([]).match(parse("anything")) == []
