"""The bot's command tree: sends `default_member_permissions` as Discord documents it.

discord.py uploads the permission bits as a JSON integer; Discord's documentation types the
field as a string of digits (its OpenAPI schema says integer). The string is the form both
the documentation and Discord's own clients use, so the tree sends that, through a thin
wrapper of the HTTP client's command uploads.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.http import HTTPClient


def _documented(payload: Any) -> Any:
    """Commands with their permission bits as a string of digits (None stays None)."""
    if isinstance(payload, list):
        return [_documented(command) for command in payload]
    if isinstance(payload, dict) and isinstance(payload.get("default_member_permissions"), int):
        return payload | {"default_member_permissions": str(payload["default_member_permissions"])}
    return payload


class _Uploads:
    """The HTTP client, with command uploads rewritten by `_documented`."""

    def __init__(self, http: HTTPClient) -> None:
        self._http = http

    def __getattr__(self, name: str) -> Any:
        return getattr(self._http, name)

    def bulk_upsert_global_commands(self, application_id: int, payload: Any) -> Any:
        return self._http.bulk_upsert_global_commands(application_id, _documented(payload))

    def bulk_upsert_guild_commands(self, application_id: int, guild_id: int, payload: Any) -> Any:
        return self._http.bulk_upsert_guild_commands(application_id, guild_id, _documented(payload))


class PaperboyTree(app_commands.CommandTree[Any]):
    def __init__(self, client: discord.Client, **options: Any) -> None:
        super().__init__(client, **options)
        self._http = _Uploads(client.http)  # type: ignore[assignment]
