"""XML checked before a feed parser sees it: no DTD, no entity, well-formed, sound namespaces.

expat expands an internal entity before any handler can refuse it, and feedparser keeps the
"safe" entities of a DTD, so one 50,000-character entity referenced 20,000 times cost seconds
and gigabytes before anything said no. defusedxml's reader refuses the `<!DOCTYPE` itself,
before a single entity is declared, so such a digest is refused in milliseconds; one streaming
pass with no tree costs time linear in the input and constant memory.
"""

from __future__ import annotations

import io
import xml.sax
from xml.sax.handler import ContentHandler, feature_namespaces
from xml.sax.xmlreader import InputSource, Locator

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.expatreader import DefusedExpatParser

from newsletter.sources.base import DigestError


class _NamespaceError(Exception):
    def __init__(self, line: int, uri: str) -> None:
        super().__init__(uri)
        self.line = line
        self.uri = uri


class _Checks(ContentHandler):
    """Refuses a namespace URI that the SAX reader would split apart (it splits on spaces)."""

    def __init__(self, where: Locator) -> None:
        super().__init__()
        self._where = where

    def startPrefixMapping(self, prefix: str | None, uri: str) -> None:
        if uri and (len(uri.split()) != 1 or uri != uri.strip()):
            raise _NamespaceError(self._where.getLineNumber(), uri)


def check_xml(data: bytes) -> None:
    """Raise `DigestError` (with the line) unless `data` is well-formed XML with no DTD.

    `data` is known to be UTF-8 (checked before), so expat is told so, as an HTTP header would,
    whatever the declaration claims: an unknown encoding name there is no crash.
    """
    parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setFeature(feature_namespaces, True)
    parser.setContentHandler(_Checks(parser))
    source = InputSource()
    source.setByteStream(io.BytesIO(data))
    source.setEncoding("utf-8")
    try:
        parser.parse(source)
    except xml.sax.SAXParseException as err:
        raise DigestError(
            f"line {err.getLineNumber()}", f"not well-formed XML: {err.getMessage()}"
        ) from None
    except _NamespaceError as err:
        raise DigestError(
            f"line {err.line}",
            f"namespace URI {err.uri[:80]!r} holds white space or a line break: not a URI",
        ) from None
    except (DTDForbidden, EntitiesForbidden) as err:
        raise DigestError(
            f"line {parser.getLineNumber()}",
            f"a DTD or entity declaration ({type(err).__name__}): feeds have none, and their "
            "expansion is how a small file takes gigabytes, so it is refused unread",
        ) from None
    except DefusedXmlException as err:
        raise DigestError(
            f"line {parser.getLineNumber()}",
            f"a reference to an external resource ({type(err).__name__}) is refused unread",
        ) from None


def root_start(data: bytes) -> int:
    """Offset of the root element of well-formed XML: past the XML declaration, comments and
    processing instructions, in one forward pass.

    feedparser looks for entity declarations in everything before the root with a pattern that
    is quadratic in the number of lines there (a comment of 200,000 blank lines took 321 s);
    once `check_xml` has passed there is nothing before the root worth reading.
    """
    at = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while True:
        while at < len(data) and data[at] in b" \t\r\n":
            at += 1
        if data.startswith(b"<?", at):
            opening, closing = b"<?", b"?>"
        elif data.startswith(b"<!--", at):
            opening, closing = b"<!--", b"-->"
        else:
            return at
        end = data.find(closing, at + len(opening))
        if end < 0:  # cannot happen after check_xml; stop rather than loop
            return len(data)
        at = end + len(closing)
