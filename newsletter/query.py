"""The topic query language: words, "phrases", AND / OR / NOT (or -word), parentheses, title:,
and cat: for an arXiv category (cat:cs.CV) or a whole archive (cat:q-bio).

Adjacent terms are ANDed; NOT binds tighter than AND, AND tighter than OR. Operators may be
written in any case. Matching is on word stems, so a query compiles to a tree of `Term`s whose
words are stems; `canonical()` gives one spelling per meaning so equal queries share a topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.categories import known_category
from newsletter.words import stems

MAX_QUERY_CHARS = 500
_TOKEN = re.compile(
    r'\s*(?:(?P<open>\()|(?P<close>\))|(?P<phrase>"[^"]*"?)|(?P<title>title:)'
    r'|(?P<category>cat:[^\s()"]*)|(?P<minus>-)|(?P<word>[^\s()"]+))',
    re.IGNORECASE,
)
_OPERATORS = {"and", "or", "not"}


class QueryError(ValueError):
    """A query that does not parse; `column` is 1-based, for a caret under the query."""

    def __init__(self, query: str, column: int, message: str) -> None:
        super().__init__(message)
        self.query = query
        self.column = column
        self.message = message

    def __str__(self) -> str:
        return f"query error at column {self.column}: {self.message}"

    def pointer(self) -> str:
        """The query with a caret under the place it went wrong."""
        return f"{self.query}\n{' ' * (self.column - 1)}^"


@dataclass(frozen=True)
class Term:
    """A word or phrase, as stems; `text` is how the query wrote it."""

    words: tuple[str, ...]
    text: str
    title_only: bool = False


@dataclass(frozen=True)
class Category:
    """A paper listed in an arXiv category (or any category of an archive, like `q-bio`)."""

    name: str


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Category | Not | And | Or


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int


def _lex(query: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None or match.end() == position:
            break  # only trailing blanks are left
        kind = match.lastgroup or "word"
        text = match.group(kind)
        column = match.start(kind) + 1
        if kind == "phrase" and (len(text) < 2 or not text.endswith('"')):
            raise QueryError(query, column, 'this quote is never closed: add a closing "')
        if kind == "word" and text.lower() in _OPERATORS:
            kind = text.lower()
        tokens.append(_Token(kind, text, column))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def error(self, token: _Token | None, message: str) -> QueryError:
        column = token.column if token else len(self.query.rstrip()) + 1
        return QueryError(self.query, column, message)

    def parse(self) -> Node:
        if not self.tokens:
            raise QueryError(self.query, 1, "the query is empty")
        node = self.parse_or(title_only=False)
        if (token := self.peek()) is not None:
            raise self.error(token, "this ')' has no '(' to close")
        return node

    def parse_or(self, title_only: bool) -> Node:
        children = [self.parse_and(title_only)]
        while (token := self.peek()) is not None and token.kind == "or":
            self.take()
            children.append(self.parse_and(title_only))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self, title_only: bool) -> Node:
        children = [self.parse_unary(title_only)]
        while (token := self.peek()) is not None and token.kind not in ("or", "close"):
            if token.kind == "and":
                self.take()
            children.append(self.parse_unary(title_only))
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_unary(self, title_only: bool) -> Node:
        token = self.peek()
        if token is not None and token.kind in ("not", "minus"):
            self.take()
            return Not(self.parse_unary(title_only))
        return self.parse_primary(title_only)

    def parse_primary(self, title_only: bool) -> Node:
        token = self.peek()
        if token is None:
            raise self.error(None, "the query ends where a word, phrase or '(' was expected")
        self.take()
        if token.kind == "title":
            following = self.peek()
            if following is None or following.kind not in ("word", "phrase", "open", "category"):
                raise self.error(following, "title: must be followed by a word, phrase or '('")
            return self.parse_primary(title_only=True)
        if token.kind == "open":
            inner = self.parse_or(title_only)
            closing = self.peek()
            if closing is None or closing.kind != "close":
                raise self.error(token, "this '(' is never closed: add a ')'")
            self.take()
            return inner
        if token.kind == "category":
            if title_only:
                raise self.error(token, "title: and cat: do not combine: a category is no title")
            name = known_category(token.text[len("cat:") :])
            if name is None:
                raise self.error(
                    token, f"{token.text!r} is no arXiv category (like cat:cs.CV or cat:q-bio)"
                )
            return Category(name)
        if token.kind in ("word", "phrase"):
            # fine-tuning or GPT-4 are phrases of their parts, as the tokeniser splits them
            text = token.text[1:-1].strip() if token.kind == "phrase" else token.text
            words = tuple(stems(text))
            if not words:
                raise self.error(token, f"{token.text!r} has no letters or digits to search for")
            return Term(words, text, title_only)
        raise self.error(token, f"expected a word, phrase or '(' here, found {token.text!r}")


def _positive(node: Node) -> bool:
    """Whether the node can match by what a paper says, not only by what it leaves out."""
    if isinstance(node, Term | Category):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_positive(c) for c in node.children)
    return all(_positive(c) for c in node.children)


def parse(query: str, max_chars: int = MAX_QUERY_CHARS) -> Node:
    """Compile a query, or raise `QueryError` pointing at the column where it went wrong.

    `max_chars` bounds what a person may type; the catalogue, written by the operator, allows
    more."""
    if len(query) > max_chars:
        raise QueryError(
            query[:max_chars], max_chars, f"queries are limited to {max_chars} characters"
        )
    node = _Parser(query).parse()
    if not _positive(node):
        raise QueryError(
            query, 1, "a query needs a word that is not negated: it would match almost every paper"
        )
    return node


def canonical(node: Node) -> str:
    """One spelling per meaning: lower-case stems, upper-case operators, full parentheses."""
    if isinstance(node, Term):
        text = " ".join(node.words)
        text = f'"{text}"' if len(node.words) > 1 else text
        return f"title:{text}" if node.title_only else text
    if isinstance(node, Category):
        return f"cat:{node.name}"
    if isinstance(node, Not):
        return f"NOT {canonical(node.child)}"
    joiner = " AND " if isinstance(node, And) else " OR "
    return "(" + joiner.join(canonical(c) for c in node.children) + ")"


def terms(node: Node) -> list[Term]:
    """The positive terms: the ones whose presence makes a paper match and scores it."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Category | Not):
        return []
    return [t for child in node.children for t in terms(child)]


def categories(node: Node) -> list[Category]:
    """The categories whose listing makes a paper match and scores it."""
    if isinstance(node, Category):
        return [node]
    if isinstance(node, Term | Not):
        return []
    return [c for child in node.children for c in categories(child)]
