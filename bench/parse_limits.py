"""Time and peak memory of parsing one digest of each format at sizes up to the 64 MiB limit.

Each digest is a real capture with its papers repeated (ids made unique) and is parsed in a
child process of its own, so the peak resident memory printed is that parse's alone.

    python bench/parse_limits.py            # 15 MiB and 60 MiB of each format
    python bench/parse_limits.py --mib 20   # one size
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CHILD = """
import resource, sys, time
from datetime import UTC, datetime
from newsletter.sources import DigestError, parse_digest
data = open(sys.argv[1], "rb").read()
started = time.perf_counter()
try:
    result = f"{len(parse_digest(data, 'bench', datetime.now(UTC)).papers):,} papers"
except DigestError as err:
    result = f"refused: {err.where}: {err.message[:60]}"
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{seconds:.2f} s, peak RSS {peak:.0f} MB, {result}")
"""


def _grow(head: bytes, item: bytes, tail: bytes, target: int, renumber: object) -> bytes:
    copies = max(1, (target - len(head) - len(tail)) // len(item))
    return head + b"".join(renumber(item, n) for n in range(copies)) + tail  # type: ignore[operator]


def rss(target: int) -> bytes:
    data = (DATA / "arxiv-rss-quant-ph-2025-04-28.xml").read_bytes()
    start, end = data.index(b"<item>"), data.rindex(b"</item>") + len(b"</item>")
    items = data[start:end]

    def renumber(chunk: bytes, n: int) -> bytes:
        return re.sub(rb"25\d\d\.(\d{5})", lambda m: b"%04d.%s" % (n % 10000, m.group(1)), chunk)

    return _grow(data[:start], items, data[end:], target, renumber)


def hf_json(target: int) -> bytes:
    entries = json.loads((DATA / "2025-09-09.json").read_text(encoding="utf-8"))
    one = json.dumps(entries).encode()[1:-1]

    def renumber(chunk: bytes, n: int) -> bytes:
        return (b"," if n else b"") + re.sub(rb'"25(\d\d)\.', b'"%02d\\1.' % (n % 100), chunk)

    return _grow(b"[", one, b"]", target, renumber)


def hf_html(target: int) -> bytes:
    page = (DATA / "hf-daily-papers-2024-08-01.html").read_bytes()
    open_at = page.index(b"&quot;dailyPapers&quot;:[") + len(b"&quot;dailyPapers&quot;:[")
    close_at = page.index(b"],&quot;nextDate&quot;")
    entries = page[open_at:close_at]

    def renumber(chunk: bytes, n: int) -> bytes:
        marked = re.sub(rb"&quot;2407\.", b"&quot;%04d." % (n % 10000), chunk)
        return (b"," if n else b"") + re.sub(rb"&quot;2404\.", b"&quot;%04d." % (n % 10000), marked)

    return _grow(page[:open_at], entries, page[close_at:], target, renumber)


def page_text(target: int) -> bytes:
    seed = (ROOT / "seeds" / "000_c5e999339737264f.txt").read_bytes()
    head, _, body = seed.partition(b"\n\nSep 9\n\n")
    return _grow(head + b"\n\nSep 9\n\n", body.rstrip(b"\n") + b"\n\n", b"", target, lambda c, n: c)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, action="append", help="size in MiB (repeatable)")
    sizes = parser.parse_args().mib or [15, 60]
    scratch = Path("/tmp/paperboy-bench-parse")
    scratch.mkdir(exist_ok=True)
    for name, build in (
        ("arXiv RSS", rss),
        ("HF JSON", hf_json),
        ("HF page HTML", hf_html),
        ("HF page text", page_text),
    ):
        for mib in sizes:
            path = scratch / f"{name.replace(' ', '-')}-{mib}.bin"
            path.write_bytes(build(mib * 1024 * 1024))
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=ROOT
            )
            size = path.stat().st_size / 1024 / 1024
            print(f"{name:13} {size:5.1f} MiB: {out.stdout.strip() or out.stderr.strip()[-300:]}")
            path.unlink()


if __name__ == "__main__":
    main()
