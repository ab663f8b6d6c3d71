"""`paperboy quality`: the catalogue's precision and recall on hand-labelled papers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from newsletter.cli_common import EXIT_BAD_INPUT, err, fail, out
from newsletter.config import get_settings
from newsletter.embedding.semantic import topic_space
from newsletter.inbox import digest_files, read_digest
from newsletter.quality import MACRO_MIN_RELEVANT, Labels, LabelsError, Scores, load_labels, measure
from newsletter.sources import DigestError


def _day_files(labels_path: Path, labels: Labels) -> list[str]:
    """The files of the days the labels name, beside the labels or in a `days/` folder there."""
    found = []
    for day in labels.days:
        for folder in (labels_path.parent, labels_path.parent / "days"):
            if (folder / f"{day}.json").is_file():
                found.append(str(folder / f"{day}.json"))
                break
        else:
            raise fail(
                f"{labels_path}: day {day}: no {day}.json beside it or in days/ "
                "(give DIGEST paths)",
                EXIT_BAD_INPUT,
            )
    return found


def _cells(scores: Scores) -> tuple[str, str, str]:
    return f"{scores.precision:.2f}", f"{scores.recall:.2f}", f"{scores.f1:.2f}"


def quality(
    labels_path: Annotated[Path, typer.Argument(metavar="LABELS", help="Hand labels (JSON).")],
    digests: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[DIGEST]...",
            help="Digest files or folders; default: the labels' days, beside the labels file "
            "or in its days/ folder. Only labelled papers these hold are scored.",
        ),
    ] = None,
) -> None:
    """Precision, recall and F1 of the catalogue on labelled papers, beside a naive filter.

    The digests are ingested and matched in a scratch database with the catalogue as
    configured (PAPERBOY_CATALOGUE_FILE), so editing the catalogue and running this again
    shows what the edit changed. The naive filter takes a paper when its title or abstract
    holds the topic's key word. Macro F1 is over topics with at least 3 relevant papers.
    """
    try:
        labels = load_labels(labels_path)
    except LabelsError as problem:
        raise fail(str(problem), EXIT_BAD_INPUT) from None
    names = list(digest_files(digests)) if digests else _day_files(labels_path, labels)
    if not names:
        raise fail("no digest files given, and the labels name no days", EXIT_BAD_INPUT)
    try:
        report = measure(labels, ((name, read_digest(name)) for name in names))
    except OSError as problem:
        raise fail(f"{problem.filename}: cannot read: {problem.strerror}", EXIT_BAD_INPUT) from None
    except (DigestError, LabelsError) as problem:
        raise fail(str(problem), EXIT_BAD_INPUT) from None
    table = Table(
        title=f"{labels_path.name}: {report.papers} labelled papers in {len(names)} digests"
    )
    table.add_column("topic")
    table.add_column("relevant", justify="right")
    for name in ("P", "R", "F1", "naive P", "naive R", "naive F1"):
        table.add_column(name, justify="right")
    for topic in report.topics:
        name = Text(topic.label)
        if topic.slug is None:
            name.append(" (no such catalogue topic)", style="red")
        elif topic.slug != topic.label:
            name.append(f" ({topic.slug})", style="dim")
        style = "dim" if topic.ours.relevant < MACRO_MIN_RELEVANT else ""
        table.add_row(
            name, str(topic.ours.relevant), *_cells(topic.ours), *_cells(topic.naive), style=style
        )
    out.print(table)
    space = topic_space(get_settings().embedding_model)
    out.print(
        f"semantic matching on ({space.embedder.model_id})"
        if space
        else "semantic matching off: the queries alone (see PAPERBOY_EMBEDDING_MODEL)"
    )
    out.print(
        f"macro F1 {report.macro():.3f}, naive {report.macro(naive=True):.3f} "
        f"(topics with at least {MACRO_MIN_RELEVANT} relevant papers; dim rows are left out)"
    )
    if report.missing:
        err.print(
            Text(
                f"warning: {len(report.missing)} labelled paper(s) are in none of the digests "
                f"and were not scored, e.g. {report.missing[0]}",
                style="yellow",
            )
        )
