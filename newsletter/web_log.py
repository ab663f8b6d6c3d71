"""aiohttp's server log kept to one line per bad request.

A malformed request (a bad request line, an oversized header, TLS spoken to the HTTP port)
is logged by aiohttp with its whole traceback, and the message of its parse errors spans
several lines with the client's bytes in them: anyone can fill the log that way. Folded
here into one line with the error's name and its first few hundred printable characters.
"""

from __future__ import annotations

import logging

_LONGEST = 300


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return "".join(c if c.isprintable() else "?" for c in flat)[:_LONGEST]


class OneLine(logging.Filter):
    """Moves a record's exception into its message, on one line, and drops the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            problem = record.exc_info[1]
            record.msg = f"{_one_line(record.getMessage())}: {type(problem).__name__}: " + (
                _one_line(str(problem)).replace("%", "%%")
            )
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        elif "\n" in record.getMessage():
            record.msg, record.args = _one_line(record.getMessage()).replace("%", "%%"), ()
        return True


def one_line_server_errors() -> None:
    """Install the filter on aiohttp's server logger (once)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, OneLine) for f in server.filters):
        server.addFilter(OneLine())
