"""The audit's malformed digests: each is refused by the parser with its place, or taken with a
note, never a traceback; the limits are the database columns', so SQLite and PostgreSQL agree.

Every case is one change to a real capture.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from newsletter.models import DigestPaper, Paper
from newsletter.sources import DigestError, parse_digest
from tests.conftest import DATA, NOW

HF = json.loads((DATA / "2025-09-09.json").read_text(encoding="utf-8"))
LISTING = (DATA / "arxiv-rss-quant-ph-2025-04-28.xml").read_bytes()
QUERY = (DATA / "arxiv-api-query-cat-cs.LG-OR-cs.AI-2026-04-30.xml").read_bytes()


def hf_with(index: int, **paper_fields: object) -> bytes:
    entries = json.loads(json.dumps(HF))
    entries[index]["paper"].update(paper_fields)
    return json.dumps(entries).encode()


def refused(data: bytes) -> DigestError:
    with pytest.raises(DigestError) as caught:
        parse_digest(data, "bad", NOW)
    assert "\n" not in str(caught.value)
    return caught.value


def test_a_time_without_a_zone_among_aware_ones_is_taken_as_utc_and_noted() -> None:
    digest = parse_digest(hf_with(1, submittedOnDailyAt="2025-09-09T10:00:00"), "day.json", NOW)
    assert digest.digest_date == date(2025, 9, 9)
    assert digest.date_note == (
        "latest paper.submittedOnDailyAt of the entries (1 without a time zone, taken as UTC)"
    )
    assert len(digest.papers) == 16


def test_times_in_another_zone_give_the_utc_date() -> None:
    digest = parse_digest(hf_with(1, submittedOnDailyAt="2025-09-09T21:00:00-05:00"), "d", NOW)
    assert digest.digest_date == date(2025, 9, 10)
    assert digest.date_note == "latest paper.submittedOnDailyAt of the entries"


def test_a_time_that_leaves_the_calendar_in_utc_is_refused_with_its_path() -> None:
    err = refused(hf_with(2, submittedOnDailyAt="0001-01-01T00:00:00+05:00"))
    assert (err.where, err.message) == (
        "$[2].paper.submittedOnDailyAt",
        "time 0001-01-01T00:00:00+05:00 is out of range in UTC",
    )


def test_upvotes_over_the_integer_column_are_refused_with_their_path() -> None:
    err = refused(hf_with(1, upvotes=2**70))
    assert err.where == "$[1].paper.upvotes"
    assert err.message == (
        "input should be less than or equal to 2147483647, found 1180591620717411303424"
    )


def test_an_integer_of_thousands_of_digits_is_invalid_json_not_a_crash() -> None:
    data = hf_with(1, upvotes=0).replace(b'"upvotes": 0', b'"upvotes": ' + b"9" * 5000, 1)
    assert refused(data).message.startswith("invalid JSON: Exceeds the limit (4300 digits)")


def test_a_version_over_the_integer_column_is_refused_in_json() -> None:
    err = refused(hf_with(1, id="2509.00001v99999999999999999999"))
    assert (err.where, err.message) == (
        "$[1].paper.id",
        "version v99999999999999999999 of arXiv id 2509.00001 is over the limit of 2,147,483,647",
    )


def test_a_version_over_the_integer_column_is_refused_in_a_feed() -> None:
    data = LISTING.replace(b"oai:arXiv.org:2504.17837v1", b"oai:arXiv.org:2504.17837v" + b"9" * 40)
    err = refused(data)
    assert err.where == "item 2"
    assert err.message.startswith("version v999999999999999999999999999999 of arXiv id 2504.17837")


def test_the_largest_integer_version_is_taken() -> None:
    data = LISTING.replace(b"oai:arXiv.org:2504.17837v1", b"oai:arXiv.org:2504.17837v2147483647")
    assert parse_digest(data, "ok", NOW).papers[1].version == 2_147_483_647


def test_an_atom_updated_date_of_year_zero_is_refused_with_its_element() -> None:
    data = re.sub(rb"<updated>[^<]*</updated>", b"<updated>0000-00-00T00:00:00Z</updated>", QUERY)
    err = refused(data)
    assert (err.where, err.message) == (
        "feed <updated>",
        "feed updated date '0000-00-00T00:00:00Z' is not a date (RFC 822 or ISO 8601)",
    )


def test_a_channel_pubdate_that_is_no_date_is_refused_with_its_element() -> None:
    data = LISTING.replace(b"Mon, 28 Apr 2025 00:00:00 -0400", b"Mon, 99 Foo 2025", 1)
    assert refused(data).where == "feed <pubDate>"


def test_an_announce_type_over_its_column_is_refused_with_its_item() -> None:
    limit = DigestPaper.__table__.c.announce_type.type.length
    long = b"<arxiv:announce_type>" + b"n" * (limit + 1) + b"</arxiv:announce_type>"
    err = refused(LISTING.replace(b"<arxiv:announce_type>new</arxiv:announce_type>", long, 1))
    assert (err.where, err.message) == (
        "item 1",
        f"announce type of {limit + 1} characters is over the limit of {limit}",
    )


def test_an_announce_type_at_its_column_limit_is_kept() -> None:
    limit = DigestPaper.__table__.c.announce_type.type.length
    full = b"<arxiv:announce_type>" + b"n" * limit + b"</arxiv:announce_type>"
    data = LISTING.replace(b"<arxiv:announce_type>new</arxiv:announce_type>", full, 1)
    assert parse_digest(data, "ok", NOW).papers[0].announce_type == "n" * limit


def test_an_old_style_id_with_a_70_letter_archive_is_refused_with_its_item() -> None:
    archive = b"a" * 70
    data = LISTING.replace(
        b"oai:arXiv.org:2504.17830v1", b"oai:arXiv.org:" + archive + b"/0601001v1"
    )
    err = refused(data)
    assert err.where == "item 1"
    assert err.message.startswith("arXiv id of 78 characters (aaaa")
    assert err.message.endswith(f"over the limit of {Paper.__table__.c.arxiv_id.type.length}")


def test_an_old_style_id_is_still_found_in_a_guid() -> None:
    data = LISTING.replace(b"oai:arXiv.org:2504.17830v1", b"oai:arXiv.org:hep-th/0601001v3")
    paper = parse_digest(data, "ok", NOW).papers[0]
    assert (paper.arxiv_id, paper.version) == ("hep-th/0601001", 3)
