"""Jinja2 templates for mails and pages, with mail CSS inlined once per template load.

Mail clients drop `<style>` blocks, so a mail's CSS must sit in `style` attributes. Inlining
the *template source* once, when Jinja loads it, costs one css-inline call per template
instead of one per mail. The catch is that an HTML parser moves text it finds where a table
row should be, so a `{% for %}` between `<tr>`s would be hoisted out of the table: the loader
refuses a template whose Jinja tags inlining moved, naming it, rather than send broken mail.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import css_inline
from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined

from newsletter import shipped
from newsletter.config import get_settings

BUILTIN = shipped.templates()
_JINJA_TAG = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.DOTALL)
WRAP_AT = 72
_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


class TemplateError(ValueError):
    """A template that cannot be used as it is; the message names the file."""


class _InliningLoader(BaseLoader):
    """Loads from the user's folder first, then the built-in one; inlines CSS of mail HTML."""

    def __init__(self, folders: list[Path]) -> None:
        self._files = FileSystemLoader([str(f) for f in folders])

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self._files.get_source(environment, template)
        if template.startswith("mail/") and template.endswith(".html"):
            source = _inlined(source, filename or template)
        return source, filename, uptodate


def _inlined(source: str, where: str) -> str:
    result = _INLINER.inline(source)
    if _JINJA_TAG.findall(result) != _JINJA_TAG.findall(source):
        raise TemplateError(
            f"{where}: inlining CSS moved Jinja tags (a {{% %}} directly inside <table> or "
            "<tr> is moved out of the table by HTML parsing): put loops inside a cell or a div"
        )
    return result


def environment(folder: Path | None = None) -> Environment:
    """The template environment; `folder` (or PAPERBOY_TEMPLATES_DIR) overrides file by file."""
    chosen = folder if folder is not None else get_settings().templates_dir
    if chosen is not None and not chosen.is_dir():
        raise TemplateError(f"templates folder {chosen} (PAPERBOY_TEMPLATES_DIR) is not a folder")
    folders = [chosen, BUILTIN] if chosen is not None else [BUILTIN]
    env = Environment(
        loader=_InliningLoader(folders),
        autoescape=lambda name: name is not None and name.endswith(".html"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["wrap"] = wrap
    return env


def wrap(text: str, width: int = WRAP_AT, first: str = "  ", indent: str = "  ") -> str:
    """Plain text in lines of at most `width` columns (a word longer than that, a URL, is
    kept whole), the first line starting with `first` and the others with `indent`: a reader
    in `less` or mutt sees paragraphs, not 600-character lines."""
    return textwrap.fill(
        text,
        width,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
