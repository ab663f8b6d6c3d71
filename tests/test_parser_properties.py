"""Random and mutated digests: every parser answers with a digest or a DigestError, nothing else.

The mutations start from the real captures, so most examples are almost-valid digests:
the inputs that find the crashes a purely random byte string never reaches.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.sources import DigestError, ParsedDigest, parse_digest
from tests.conftest import DATA, NOW, SEED

REAL = {
    "page-text": SEED.read_bytes(),
    "json": (DATA / "2025-09-09.json").read_bytes(),
    "json-old": (DATA / "2024-05-27.json").read_bytes(),
    "rss": (DATA / "arxiv-rss-cs.LG.xml").read_bytes(),
    "atom": (DATA / "arxiv-atom-query.xml").read_bytes(),
    "page-html": (DATA / "hf-daily-papers-2024-08-01.html").read_bytes(),
    "rss-real": (DATA / "arxiv-rss-quant-ph-2025-04-28.xml").read_bytes(),
}
PLACES = ("line ", "$", "item ", "entry ", "feed <")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_digest_or_clear_error(data: bytes) -> None:
    """The contract every parser keeps, whatever it is handed."""
    try:
        digest = parse_digest(data, "fuzzed", NOW)
    except DigestError as err:
        message = str(err)
        assert message.startswith("fuzzed: ")
        assert err.where.startswith(PLACES), message
        assert "\n" not in message
        return
    assert isinstance(digest, ParsedDigest)
    for paper in digest.papers:
        assert paper.title.strip()
        assert "\r" not in paper.title and "\n" not in paper.title
        assert "\x00" not in paper.title + paper.abstract


@st.composite
def byte_mutations(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=8))
        if action == "insert":
            data[at:at] = chunk
        elif action == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


@given(st.binary(max_size=2_000))
@FUZZ
def test_random_bytes_get_a_digest_or_a_clear_error(data: bytes) -> None:
    assert_digest_or_clear_error(data)


@given(st.text(max_size=2_000))
@FUZZ
def test_random_text_gets_a_digest_or_a_clear_error(text: str) -> None:
    assert_digest_or_clear_error(text.encode("utf-8", "surrogatepass"))


@given(st.sampled_from(sorted(REAL)), st.data())
@FUZZ
def test_truncated_real_digests_get_a_digest_or_a_clear_error(
    name: str, data: st.DataObject
) -> None:
    original = REAL[name]
    assert_digest_or_clear_error(original[: data.draw(st.integers(0, len(original)))])


@given(st.sampled_from(sorted(REAL)), st.data())
@FUZZ
def test_byte_mutated_real_digests_get_a_digest_or_a_clear_error(
    name: str, data: st.DataObject
) -> None:
    assert_digest_or_clear_error(data.draw(byte_mutations(REAL[name])))


@given(st.data())
@FUZZ
def test_page_text_with_paragraphs_dropped_doubled_swapped_or_huge(data: st.DataObject) -> None:
    paragraphs = SEED.read_text(encoding="utf-8").split("\n\n")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(paragraphs) - 1))
        action = data.draw(st.sampled_from(["drop", "double", "swap", "huge", "blank"]))
        if action == "drop":
            del paragraphs[at]
        elif action == "double":
            paragraphs.insert(at, paragraphs[at])
        elif action == "swap":
            other = data.draw(st.integers(0, len(paragraphs) - 1))
            paragraphs[at], paragraphs[other] = paragraphs[other], paragraphs[at]
        elif action == "huge":
            paragraphs.insert(at, "word " * 500_000)
        else:
            paragraphs[at] = data.draw(st.text(alphabet=" \t\r\n\x00\x1b\u2028", max_size=5))
        if not paragraphs:
            break
    assert_digest_or_clear_error("\n\n".join(paragraphs).encode("utf-8"))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.sampled_from(["json", "json-old"]), st.data())
@FUZZ
def test_json_with_fields_replaced_removed_or_rewrapped(name: str, data: st.DataObject) -> None:
    entries = json.loads(REAL[name])
    for _ in range(data.draw(st.integers(1, 3))):
        entry = entries[data.draw(st.integers(0, len(entries) - 1))]
        paper = entry.get("paper") if isinstance(entry, dict) else None
        target = data.draw(st.sampled_from([entry, paper]))
        if not isinstance(target, dict) or not target:
            continue
        key = data.draw(st.sampled_from(sorted(target)))
        if data.draw(st.booleans()):
            del target[key]
        else:
            target[key] = data.draw(JSON_VALUES)
    document: object = entries
    if data.draw(st.integers(0, 9)) == 0:
        document = {"data": entries}
    assert_digest_or_clear_error(json.dumps(document).encode())


@given(JSON_VALUES)
@FUZZ
def test_any_json_value_gets_a_digest_or_a_clear_error(value: object) -> None:
    assert_digest_or_clear_error(json.dumps(value).encode())


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    assert_digest_or_clear_error(b"[" * 100_000 + b"]" * 100_000)


def test_the_fixtures_themselves_parse() -> None:
    for name, data in REAL.items():
        assert parse_digest(data, name, NOW).papers, name
    assert Path(SEED).exists()
