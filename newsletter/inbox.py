"""Digest files on disk: what `paperboy ingest` reads, and the inbox folder the service watches.

The service polls the folder rather than watching it with inotify: polling works the same on
every system and on network mounts, and a digest a few minutes late changes nothing.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from newsletter.ingest import IngestResult
from newsletter.intake import take_digest
from newsletter.sources import MAX_DIGEST_BYTES

log = logging.getLogger(__name__)

# A file changed this recently may still be being copied in; it is read on a later poll.
SETTLING = 2.0


def digest_files(paths: list[str]) -> Iterator[str]:
    """Files as given; folders as their non-hidden files, recursively, in name order."""
    for raw in paths:
        path = Path(raw)
        if raw != "-" and path.is_dir():
            yield from (
                str(p)
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            yield raw


def read_digest(name: str) -> bytes:
    """Read at most one byte past the limit, so an endless stream cannot exhaust memory."""
    if name == "-":
        return sys.stdin.buffer.read(MAX_DIGEST_BYTES + 1)
    with open(name, "rb") as handle:
        return handle.read(MAX_DIGEST_BYTES + 1)


@dataclass
class Inbox:
    """The folder the service ingests new digest files from.

    Each file is read once per version (size and modification time): an unchanged file is
    not hashed again every poll. A file that failed (refused, or any other error) stays where
    it is, recorded in `digest_failure`; it is read again when it changes or when its backoff
    is over (see `failures`), and never holds up the files after it. Files already stored
    are skipped by content hash anyway, so a restart re-reads the folder once and stores
    nothing twice.
    """

    folder: Path
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)

    def ingest_new(self, engine: Engine, now: datetime) -> list[IngestResult]:
        """Store, match and queue the digests of new or changed files; `now` is naive UTC.
        Returns what the files that went in gave; the failures are logged and recorded."""
        if not self.folder.is_dir():
            return []
        results = []
        for name in digest_files([str(self.folder)]):
            try:
                stat = Path(name).stat()
            except OSError:
                continue  # gone between the listing and now
            version = (stat.st_size, stat.st_mtime_ns)
            if self._seen.get(name) == version or name.endswith(".part"):
                continue
            if time.time() - stat.st_mtime < SETTLING:
                continue
            try:
                data = read_digest(name)
            except OSError as problem:
                log.error("inbox: cannot read %s: %s", name, problem.strerror)
                continue
            taken = take_digest(engine, data, name, now)
            if taken.result is not None:
                results.append(taken.result)
                self._seen[name] = version
        return results
