"""The folders paperboy ships beside its code: templates and the demo's seed digests.

In the repository they are the top-level `templates/` and `seeds/`; installed, they are the
packages `paperboy_templates` and `paperboy_seeds` (pyproject.toml maps one to the other), so
they are found the same way from a checkout, an editable install or a wheel.
"""

from __future__ import annotations

import importlib
from pathlib import Path


def folder(package: str) -> Path:
    """The directory of a shipped data package (a namespace package: no `__init__.py`)."""
    module = importlib.import_module(package)
    for entry in module.__path__:
        if Path(entry).is_dir():
            return Path(entry)
    raise LookupError(f"the installed paperboy has no {package} folder; reinstall it")


def templates() -> Path:
    return folder("paperboy_templates")


def seeds() -> Path:
    return folder("paperboy_seeds")
