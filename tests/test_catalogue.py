"""The built-in catalogue as a reader meets it: every topic named, described and findable."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import get_settings
from newsletter.topics import CatalogueError, catalogue, find_catalogue_topic, load_catalogue


def test_every_topic_has_a_short_description_and_a_key_word() -> None:
    undescribed = [t.slug for t in catalogue() if not 20 <= len(t.description) <= 200]
    assert undescribed == []
    assert all(t.keyword for t in catalogue())


def test_names_and_aliases_find_one_topic_each() -> None:
    spellings = [
        spelling
        for t in catalogue()
        for spelling in {s.casefold() for s in (t.slug, t.name, *t.aliases)}
    ]
    assert len(spellings) == len(set(spellings))
    assert find_catalogue_topic("llm agents and tool use") == find_catalogue_topic("agents")


def test_topics_people_follow_beyond_the_labelled_ones_are_there() -> None:
    assert {"meta-learning", "federated-privacy", "time-series", "world-models"} <= {
        t.slug for t in catalogue()
    }


def test_a_configured_catalogue_file_replaces_the_built_in_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text('[[topic]]\nslug = "bees"\nname = "Bees"\nquery = "bee OR hive"\n')
    monkeypatch.setenv("PAPERBOY_CATALOGUE_FILE", str(mine))
    get_settings.cache_clear()
    try:
        assert [t.slug for t in catalogue()] == ["bees"]
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[topic]]\nslug = "x"\nname = "X"\n', r"mine\.toml: topic 'x': query missing"),
        ('[[topic]]\nname = "X"\nquery = "x"\n', r"mine\.toml: topic number 1: slug missing"),
        ("[[topic]\n", r"mine\.toml: "),
        ('[[topic]]\nslug = "x"\nname = "X"\nquery = "(x"\n', r"topic 'x': query: .*column 1"),
    ],
)
def test_a_broken_catalogue_is_refused_naming_the_file_and_the_topic(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "mine.toml").write_text(text)
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(tmp_path / "mine.toml")
