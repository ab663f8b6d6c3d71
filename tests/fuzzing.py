"""Mutated real digests for the fuzz test and `bench/fuzz.py`: the shipped and test captures
cut short, with bytes flipped, fields swapped, fields made huge, and hostile text put in.

Each mutation is a function of the capture's bytes and a `random.Random`, so a failing input
is given again by its capture, mutation name and seed.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = [
    ROOT / "seeds" / "000_c5e999339737264f.txt",
    *sorted((ROOT / "tests" / "data").glob("20*.json")),
    *sorted((ROOT / "tests" / "data").glob("arxiv-*.xml")),
]

HOSTILE = [
    "\x00",
    "\ud800",
    "\udfff tail",
    "\u0085",
    "\u2028\u2029",
    "\u202e\u2066reversed",
    "\ufeff",
    "@everyone <@123> <#456> <t:1:R>",
    "[click](javascript:alert(1)) ||spoiler|| **bold**",
    "<script>alert(1)</script>",
    "]]><!-- -->",
    '"quoted" \\ backslash',
    "e\u0301" * 400,
    "\U0001f600" * 300,
    "&amp;&lt;&#0;&#x110000;",
    "Sep 9",
    "v99999999999999999999",
    "2509.00001v99999999999999999999",
    "a" * 70 + "/0101001",
]
ODD_VALUES: list[Any] = [
    None,
    "",
    0,
    -1,
    2**64,
    -(2**70),
    1.5e308,
    True,
    [],
    {},
    ["x"] * 5,
    {"name": None},
    "0000-00-00T00:00:00Z",
    "2025-09-09T10:00:00",
    "9999-12-31T23:59:59+14:00",
    "-0001-01-01T00:00:00Z",
]
_XML_TEXT = re.compile(rb">([^<>]{1,400})<")


def truncate(data: bytes, rng: random.Random) -> bytes:
    """Cut anywhere: a capture saved while loading, a transfer cut."""
    return data[: rng.randrange(len(data))]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _strings(node: Any, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) holding a value in a JSON document, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        found.append((node, key))
        if isinstance(value, (dict, list)):
            _strings(value, found)
    return found


def _json_mutation(data: bytes, rng: random.Random, change: Callable[..., None]) -> bytes | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    slots = _strings(document, []) if isinstance(document, (dict, list)) else []
    if not slots:
        return None
    change(document, slots, rng)
    text = json.dumps(document, ensure_ascii=rng.random() < 0.5)
    return text.encode("utf-8", "surrogatepass")


def _xml_texts(data: bytes) -> list[re.Match[bytes]]:
    return [m for m in _XML_TEXT.finditer(data) if m.group(1).strip()]


def _replace(data: bytes, match: re.Match[bytes], text: bytes) -> bytes:
    return data[: match.start(1)] + text + data[match.end(1) :]


def _paragraph_swap(data: bytes, rng: random.Random) -> bytes:
    parts = data.split(b"\n\n")
    i, j = rng.randrange(len(parts)), rng.randrange(len(parts))
    parts[i], parts[j] = parts[j], parts[i]
    return b"\n\n".join(parts)


def swap_fields(data: bytes, rng: random.Random) -> bytes:
    """Values moved to other fields, or replaced by a value of another type."""

    def change(document: Any, slots: list[tuple[Any, Any]], rng: random.Random) -> None:
        (a, ka), (b, kb) = rng.choice(slots), rng.choice(slots)
        if rng.random() < 0.5:
            a[ka], b[kb] = b[kb], a[ka]
        else:
            a[ka] = rng.choice(ODD_VALUES)

    if (mutated := _json_mutation(data, rng, change)) is not None:
        return mutated
    texts = _xml_texts(data)
    if len(texts) >= 2:
        first, second = sorted(rng.sample(texts, 2), key=lambda m: m.start())
        return (
            data[: first.start(1)]
            + second.group(1)
            + data[first.end(1) : second.start(1)]
            + first.group(1)
            + data[second.end(1) :]
        )
    return _paragraph_swap(data, rng)


def huge_field(data: bytes, rng: random.Random, small: bool = False) -> bytes:
    """One field made very long: up to a few megabytes, around the limits and past them."""
    size = rng.choice([301, 1_001, 20_001] + ([] if small else [100_000, 2_000_000]))
    filler = rng.choice(["word ", "x", "\u00e9", "\U0001f600", "( "]) * (size // 2 + 1)

    def change(document: Any, slots: list[tuple[Any, Any]], rng: random.Random) -> None:
        container, key = rng.choice(slots)
        container[key] = filler[:size] if rng.random() < 0.8 else [filler[:300]] * 5_000

    if (mutated := _json_mutation(data, rng, change)) is not None:
        return mutated
    texts = _xml_texts(data)
    if texts:
        return _replace(data, rng.choice(texts), filler[:size].encode())
    parts = data.split(b"\n\n")
    parts[rng.randrange(len(parts))] = filler[:size].encode()
    return b"\n\n".join(parts)


def hostile_text(data: bytes, rng: random.Random) -> bytes:
    """Control, format and surrogate characters, markup and look-alike ids put into text."""
    hostile = rng.choice(HOSTILE)

    def change(document: Any, slots: list[tuple[Any, Any]], rng: random.Random) -> None:
        strings = [(c, k) for c, k in slots if isinstance(c[k], str)] or slots
        container, key = rng.choice(strings)
        value = container[key] if isinstance(container[key], str) else ""
        cut = rng.randrange(len(value) + 1)
        container[key] = value[:cut] + hostile + value[cut:]

    if (mutated := _json_mutation(data, rng, change)) is not None:
        return mutated
    encoded = hostile.encode("utf-8", "surrogatepass")
    texts = _xml_texts(data)
    if texts:
        match = rng.choice(texts)
        return _replace(data, match, match.group(1) + encoded)
    cut = rng.randrange(len(data))
    return data[:cut] + encoded + data[cut:]


def many_entries(data: bytes, rng: random.Random, small: bool = False) -> bytes:
    """The same papers listed many times over: a big digest that is mostly repeats."""

    def change(document: Any, slots: list[tuple[Any, Any]], rng: random.Random) -> None:
        if isinstance(document, list):
            document *= rng.choice([2, 20] if small else [2, 20, 200])

    if (mutated := _json_mutation(data, rng, change)) is not None:
        return mutated
    for tag in (b"item", b"entry"):
        start, end = data.find(b"<" + tag + b">"), data.find(b"</" + tag + b">")
        if 0 <= start < end:
            block = data[start : end + len(tag) + 3]
            return (
                data[:start] + block * rng.choice([2, 20] if small else [2, 20, 200]) + data[start:]
            )
    return data + b"\n\n" + data.split(b"\n\n", 6)[-1] * rng.choice([2, 5])


def entity_bomb(data: bytes, rng: random.Random, small: bool = False) -> bytes:
    """A small internal DTD (an entity referenced many times, or an external one) in a feed.
    Kept to a megabyte of expansion: bounding bigger ones is the parsers' work."""
    if not data.lstrip().startswith(b"<"):
        return hostile_text(data, rng)
    count = rng.choice([1, 5] if small else [10, 100, 1_000])
    dtd = (
        b'<!DOCTYPE rss [<!ENTITY big "' + b"A" * 1_000 + b'">'
        b'<!ENTITY ext SYSTEM "file:///etc/passwd">]>'
    )
    refs = (b"&big;" * count) if rng.random() < 0.8 else b"&ext;"
    head_end = data.find(b"?>") + 2 if data.startswith(b"<?xml") else 0
    texts = _xml_texts(data)
    body = _replace(data, texts[len(texts) // 2], refs) if texts else data
    return body[:head_end] + dtd + body[head_end:]


MUTATIONS: dict[str, Callable[..., bytes]] = {
    "truncate": truncate,
    "flip_bytes": flip_bytes,
    "swap_fields": swap_fields,
    "huge_field": huge_field,
    "hostile_text": hostile_text,
    "many_entries": many_entries,
    "entity_bomb": entity_bomb,
}


_SCALED = {"huge_field", "many_entries", "entity_bomb"}


def mutated(capture: Path, mutation: str, seed: int, small: bool = False) -> bytes:
    """The mutated digest named by its capture, mutation and seed; `small` keeps the big
    ones to about 20 KB a field (the in-suite run), the bench takes them to megabytes."""
    data = capture.read_bytes()
    rng = random.Random(f"{capture.name}:{mutation}:{seed}")
    if mutation in _SCALED:
        return MUTATIONS[mutation](data, rng, small)
    return MUTATIONS[mutation](data, rng)
