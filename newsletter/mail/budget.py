"""How much of a day's papers a mail carries: Gmail clips HTML past about 102 KB, hiding
everything after the cut, the unsubscribe footer included.

A mail shows at most `PAPERS_PER_TOPIC` papers per topic (best first) and fewer when their
HTML would pass `PAPERS_BYTES`; each shortened topic ends with "N more papers on this topic",
linking to the web copy, which shows them all. The limit leaves room under the clip for the
mail's header and footer (about 3 KB).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from newsletter.sections import Section

PAPERS_PER_TOPIC = 10
# Papers per topic tried in turn until the papers' HTML fits.
STEPS = (PAPERS_PER_TOPIC, 6, 4, 3, 2, 1)
PAPERS_BYTES = 92_000
# Where the per-mail web copy address goes in the shared rendering of a paper list.
VIEW_MARK = "paperboy-web-copy-address"


def trimmed(sections: Sequence[Section], per_topic: int | None) -> tuple[Section, ...]:
    """`sections` with at most `per_topic` papers each (None: all), the rest counted."""
    if per_topic is None:
        return tuple(sections)
    return tuple(
        replace(s, papers=s.papers[:per_topic], more=s.more + len(s.papers) - per_topic)
        if len(s.papers) > per_topic
        else s
        for s in sections
    )
