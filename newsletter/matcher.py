"""Match a digest's papers against many queries at once.

Each paper is tokenised once into an inverted index whose posting lists are bitsets (one bit
per paper, Python ints). A query is then a handful of big-integer ANDs and ORs, whatever the
number of papers, so the cost grows with distinct queries, not with subscribers; positions
are looked at only for phrases and for the papers that matched, to score and explain them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from newsletter.categories import archive
from newsletter.query import And, Category, Node, Not, Term, categories, terms
from newsletter.words import stems

# A reason term naming the topic's nearest labelled example paper (semantic matching).
LIKE = "like:"
# A hit in the title says more about what a paper is about than one in the abstract.
TITLE_WEIGHT = 3.0
# Being listed in a category the query names says as much as a title hit: the authors chose
# it (arXiv's moderators check it), so it clears a catalogue topic's bar on its own.
CATEGORY_WEIGHT = 3.0


@dataclass(frozen=True)
class Hit:
    paper: int
    score: float
    terms: tuple[str, ...]


class _Field:
    """Posting lists of one field (title or abstract) over all papers of a digest."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.words: list[list[str]] = [stems(text) for text in texts]
        self.positions: list[dict[str, list[int]]] = []
        self.postings: dict[str, int] = defaultdict(int)
        for number, words in enumerate(self.words):
            where: dict[str, list[int]] = defaultdict(list)
            for position, word in enumerate(words):
                where[word].append(position)
            self.positions.append(where)
            bit = 1 << number
            for word in where:
                self.postings[word] |= bit

    def starts(self, paper: int, term: Term) -> list[int]:
        """Where the term stands; a phrase is checked only where its first word stands."""
        starts = self.positions[paper].get(term.words[0], [])
        if len(term.words) == 1:
            return starts
        words, rest = self.words[paper], list(term.words[1:])
        return [p for p in starts if words[p + 1 : p + len(term.words)] == rest]

    def mask(self, term: Term) -> int:
        candidates = -1
        for word in term.words:
            candidates &= self.postings.get(word, 0)
        if len(term.words) == 1 or not candidates:
            return candidates
        mask = 0
        for paper in _bits(candidates):
            if self.starts(paper, term):
                mask |= 1 << paper
        return mask


def _bits(mask: int) -> Iterable[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class DigestIndex:
    """A digest's papers, tokenised once, ready for any number of queries.

    `listed` gives each paper's arXiv categories where the source has them (RSS and Atom)."""

    def __init__(
        self, papers: Sequence[tuple[str, str]], listed: Sequence[Sequence[str]] = ()
    ) -> None:
        self.size = len(papers)
        self.everything = (1 << self.size) - 1
        self.title = _Field([title for title, _ in papers])
        self.abstract = _Field([abstract for _, abstract in papers])
        self._masks: dict[Term, int] = {}
        self._listed: dict[str, int] = defaultdict(int)
        for number, names in enumerate(listed):
            for name in names:
                self._listed[name] |= 1 << number
                self._listed[archive(name)] |= 1 << number

    def term_mask(self, term: Term) -> int:
        """Papers holding the term; cached, since many queries share their words."""
        if term not in self._masks:
            in_title = self.title.mask(term)
            self._masks[term] = in_title if term.title_only else in_title | self.abstract.mask(term)
        return self._masks[term]

    def mask(self, node: Node) -> int:
        if isinstance(node, Term):
            return self.term_mask(node)
        if isinstance(node, Category):
            return self._listed.get(node.name, 0)
        if isinstance(node, Not):
            return self.everything & ~self.mask(node.child)
        masks = (self.mask(child) for child in node.children)
        result = self.everything if isinstance(node, And) else 0
        for mask in masks:
            result = result & mask if isinstance(node, And) else result | mask
        return result

    def match(self, node: Node, min_score: float = 0.0) -> list[Hit]:
        """The papers the query selects with at least `min_score`, best first, with their terms.

        The score counts places, not terms: where "knowledge distillation" and "distillation"
        both hit, or "agent" and "agents" share a stem, the text said it once and counts once.
        """
        positive = {(t.words, t.title_only): t for t in reversed(list(terms(node)))}
        candidates = [(t, self.term_mask(t)) for t in reversed(positive.values())]
        named = [(c, self.mask(c)) for c in dict.fromkeys(categories(node))]
        hits = []
        for paper in _bits(self.mask(node)):
            title: list[tuple[int, int]] = []
            abstract: list[tuple[int, int]] = []
            found = []
            for term, holders in candidates:
                if not (holders >> paper) & 1:
                    continue
                width = len(term.words)
                in_title = [(p, p + width) for p in self.title.starts(paper, term)]
                in_abstract = (
                    []
                    if term.title_only
                    else [(p, p + width) for p in self.abstract.starts(paper, term)]
                )
                if in_title or in_abstract:
                    title += in_title
                    abstract += in_abstract
                    found.append(term.text)
            listed = [f"cat:{c.name}" for c, holders in named if (holders >> paper) & 1]
            found += listed
            score = (
                TITLE_WEIGHT * _places(title) + _places(abstract) + CATEGORY_WEIGHT * len(listed)
            )
            if score >= min_score:
                hits.append(Hit(paper, score, tuple(dict.fromkeys(found))))
        hits.sort(key=lambda hit: (-hit.score, hit.paper))
        return hits


def explain(terms: Sequence[str], score: float | None = None) -> str:
    """Why a paper is there, for a reader: the words that hit, the categories it is listed in,
    the topic's nearest labelled example when the semantic side took part (a `like:` term),
    and the score they add up to (a title hit 3, each place in the abstract 1, a category 3,
    plus the calibrated semantic part)."""
    words = [term for term in terms if not term.startswith(("cat:", LIKE))]
    listed = [term.removeprefix("cat:") for term in terms if term.startswith("cat:")]
    like = [term.removeprefix(LIKE) for term in terms if term.startswith(LIKE)]
    parts = [", ".join(words)] if words else []
    if listed:
        parts.append("listed in " + ", ".join(listed))
    if like:
        parts.append(f"close to this topic (like: {like[0]})")
    if score is not None:
        parts.append(f"score {score:g}")
    return " · ".join(parts)


def _places(spans: list[tuple[int, int]]) -> int:
    """Word spans not inside another: one per place in the text that some term hit."""
    if len(spans) < 2:
        return len(spans)
    places, reach = 0, -1
    for _, end in sorted(spans, key=lambda span: (span[0], -span[1])):
        if end > reach:
            places, reach = places + 1, end
    return places
