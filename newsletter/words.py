"""Words as the matcher sees them: one tokeniser and one stemmer for papers and queries alike.

Stems make "distillation" find "distilling"; upper-case abbreviations keep their letters and
lose a plural "s" ("LLMs" -> "llm"), because Snowball leaves vowel-less words alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import snowballstemmer

_WORD = re.compile(r"[^\W_]+")
# Two capitals, digits between allowed: the digits-only first gap and possessive runs keep it
# one pass (the earlier `[A-Z][A-Z0-9]*[A-Z][A-Z0-9]*` tried every split of a long capital
# word: 0.55 s for an 8,000-letter one, quadratic).
_ABBREVIATION = re.compile(r"[A-Z][0-9]*+[A-Z][A-Z0-9]*+s?")
_STEMMER = snowballstemmer.stemmer("english")
# Terms of art that Snowball would fold into a broader word: "agentic" is a kind of system,
# while its stem "agent" is in every reinforcement learning abstract.
_WHOLE = frozenset({"agentic"})


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    if _ABBREVIATION.fullmatch(word):
        return word.removesuffix("s").lower()
    lower = word.lower()
    return lower if lower in _WHOLE else _STEMMER.stemWord(lower)


def spans(text: str) -> Iterator[tuple[str, int, int]]:
    """(stem, start, end) of each word, so a match can be highlighted where it stands."""
    for match in _WORD.finditer(text):
        yield stem(match.group()), match.start(), match.end()


def stems(text: str) -> list[str]:
    return [stem(match.group()) for match in _WORD.finditer(text)]
