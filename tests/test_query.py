"""The topic query language: what parses to what, and where a bad query goes wrong."""

from __future__ import annotations

import pytest

from newsletter.query import And, Not, Or, QueryError, Term, canonical, parse
from newsletter.words import stem


def test_adjacent_words_are_anded() -> None:
    assert parse("sparse attention") == And(
        (Term(("spars",), "sparse"), Term(("attent",), "attention"))
    )


def test_not_binds_tighter_than_and_and_and_tighter_than_or() -> None:
    node = parse("a OR b AND NOT c")
    assert isinstance(node, Or)
    assert isinstance(node.children[1], And)
    assert isinstance(node.children[1].children[1], Not)


def test_minus_is_not() -> None:
    assert canonical(parse("agents -survey")) == canonical(parse("agents AND NOT survey"))


def test_operators_are_case_insensitive() -> None:
    assert canonical(parse("rl or robots")) == canonical(parse("RL OR robots"))


def test_quoted_phrase_is_one_term_of_stems() -> None:
    assert parse('"Continual Learning"') == Term(("continu", "learn"), "Continual Learning")


def test_hyphenated_word_is_a_phrase_of_its_parts() -> None:
    assert parse("fine-tuning") == Term(("fine", "tune"), "fine-tuning")


def test_title_prefix_applies_to_a_whole_group() -> None:
    node = parse("title:(LLM agents)")
    assert isinstance(node, And)
    assert all(isinstance(t, Term) and t.title_only for t in node.children)


def test_stems_join_inflections_and_abbreviation_plurals() -> None:
    assert stem("distillation") == stem("distilling") == stem("distilled")
    assert stem("LLMs") == stem("LLM") == "llm"
    assert stem("RL") != stem("RLHF")


def test_equivalent_queries_share_one_canonical_form() -> None:
    assert canonical(parse('"In-Context  learning" or ICL')) == canonical(
        parse('("in-context learning") OR icl')
    )


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("", 1, "the query is empty"),
        ('"continual learning', 1, "quote is never closed"),
        ("agents (tools OR planning", 8, "'(' is never closed"),
        ("agents)", 7, "')' has no '('"),
        ("agents OR", 10, "the query ends"),
        ("agents AND OR tools", 12, "found 'OR'"),
        ("title:", 7, "title: must be followed"),
        ('""', 1, "no letters or digits"),
        ("NOT survey", 1, "needs a word that is not negated"),
    ],
)
def test_bad_query_points_at_the_column(query: str, column: int, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.column == column
    assert message in caught.value.message
    assert caught.value.pointer().splitlines()[1] == " " * (column - 1) + "^"


def test_overlong_query_is_refused() -> None:
    with pytest.raises(QueryError, match="limited to 500"):
        parse("word " * 200)
