"""Discord's own API schema as the stand-in's judge of request bodies.

`tests/data/discord/openapi.json` is Discord's published OpenAPI 3.1 document (MIT, see the
LICENSE beside it). Its schemas are JSON Schema 2020-12, so `jsonschema` checks a body
against them with every `$ref` resolved through one `referencing` registry. A validator is
built once per operation and cached: building walks the schema, checking does not.

The schema leaves out limits Discord documents and enforces, so `limits()` adds them:
2,000 characters of content for a bot (the schema says 4,000, which only Nitro users get),
6,000 characters of embed text a message, and the command limits (description 1-100,
names lower case, 4,000 characters a command). Where the schema and the documentation
disagree the stricter wins: `default_member_permissions` is a string of digits, as the
documentation has it (the schema types it as an integer; paperboy's tree sends a string).
One leniency, as Discord has it: a snowflake may come as a JSON integer (discord.py sends
`recipient_id` so), though the schema types it as a string of digits.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).parent / "data" / "discord" / "openapi.json"
BASE = "urn:discord-openapi"

CONTENT_CHARS = 2000
EMBED_TOTAL_CHARS = 6000
COMMAND_TOTAL_CHARS = 4000
# Discord's pattern for command and option names (chat input commands are lower case).
COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")

# The interaction callback's schema is a union; the callback type says which member applies.
CALLBACKS = {
    1: "PongInteractionCallbackRequest",
    4: "CreateMessageInteractionCallbackRequest",
    5: "CreateMessageInteractionCallbackRequest",
    6: "UpdateMessageInteractionCallbackRequest",
    7: "UpdateMessageInteractionCallbackRequest",
    8: "ApplicationCommandAutocompleteCallbackRequest",
    9: "ModalInteractionCallbackRequest",
}

Problem = tuple[list[str | int], str]  # where in the body (a path), and what is wrong


def _stricter(document: Any) -> Any:
    """The document with the documentation's stricter types where the two disagree."""
    if isinstance(document, dict):
        fixed = {k: _stricter(v) for k, v in document.items()}
        if "default_member_permissions" in fixed.get("properties", {}):
            fixed["properties"]["default_member_permissions"] = {
                "type": ["string", "null"],
                "pattern": "^[0-9]+$",
            }
        if isinstance(fixed.get("SnowflakeType"), dict):
            fixed["SnowflakeType"] = {
                "anyOf": [fixed["SnowflakeType"], {"type": "integer", "minimum": 0}]
            }
        return fixed
    if isinstance(document, list):
        return [_stricter(v) for v in document]
    return document


@cache
def _document() -> dict[str, Any]:
    return _stricter(json.loads(SPEC.read_text(encoding="utf-8")))


@cache
def _registry() -> Registry[Any]:
    resource = Resource.from_contents(_document(), default_specification=DRAFT202012)
    return Registry().with_resource(BASE, resource)


def _pointer(*parts: str) -> str:
    escaped = (p.replace("~", "~0").replace("/", "~1") for p in parts)
    return "/" + "/".join(quote(p, safe="~@") for p in escaped)


@cache
def validator(path: str, method: str) -> Draft202012Validator:
    """The JSON body's validator of one operation (`path` as the document spells it)."""
    operation = _document()["paths"][path][method.lower()]
    if "requestBody" not in operation:
        raise KeyError(f"{method} {path} takes no body")
    ref = (
        BASE
        + "#"
        + _pointer(
            "paths", path, method.lower(), "requestBody", "content", "application/json", "schema"
        )
    )
    return Draft202012Validator({"$ref": ref}, registry=_registry())


@cache
def component(name: str) -> Draft202012Validator:
    """The validator of one named schema of the document's components."""
    ref = BASE + "#" + _pointer("components", "schemas", name)
    return Draft202012Validator({"$ref": ref}, registry=_registry())


def schema_problem(check: Draft202012Validator, body: Any) -> Problem | None:
    """The most telling complaint of the schema about `body`, or None if it conforms."""
    error = best_match(check.iter_errors(body))
    if error is None:
        return None
    where = list(error.absolute_path)
    if error.validator in ("maxLength", "maxItems"):
        return where, f"Must be {error.validator_value} or fewer in length ({error.validator})."
    if error.validator in ("minLength", "minItems"):
        return where, f"Must be {error.validator_value} or more in length ({error.validator})."
    text = error.message
    return where, text if len(text) <= 300 else text[:299] + "…"


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def message_problem(body: Any) -> Problem | None:
    """The documented message limits the schema does not encode."""
    if not isinstance(body, dict):
        return None
    if _length(body.get("content")) > CONTENT_CHARS:
        return ["content"], f"Must be {CONTENT_CHARS} or fewer in length."
    total = 0
    for embed in body.get("embeds") or []:
        if not isinstance(embed, dict):
            continue
        total += _length(embed.get("title")) + _length(embed.get("description"))
        total += _length((embed.get("footer") or {}).get("text"))
        total += _length((embed.get("author") or {}).get("name"))
        for item in embed.get("fields") or []:
            total += _length(item.get("name")) + _length(item.get("value"))
    if total > EMBED_TOTAL_CHARS:
        return ["embeds"], f"Embed size exceeds maximum size of {EMBED_TOTAL_CHARS}"
    return None


def _command_chars(command: dict[str, Any]) -> int:
    total = _length(command.get("name")) + _length(command.get("description"))
    for option in command.get("options") or []:
        total += _command_chars(option)
        for choice in option.get("choices") or []:
            total += _length(choice.get("name")) + len(str(choice.get("value", "")))
    return total


def _option_problem(option: dict[str, Any], where: list[str | int]) -> Problem | None:
    name = option.get("name")
    if isinstance(name, str) and (not COMMAND_NAME.match(name) or name != name.lower()):
        return [*where, "name"], "Command name is invalid"
    for index, inner in enumerate(option.get("options") or []):
        found = _option_problem(inner, [*where, "options", index])
        if found:
            return found
    return None


def command_problem(command: Any, where: list[str | int]) -> Problem | None:
    """The documented command limits the schema does not encode (for chat input commands:
    a description of 1 to 100 characters, lower-case names, 4,000 characters in all)."""
    if not isinstance(command, dict) or command.get("type", 1) != 1:
        return None
    description = command.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        return [*where, "description"], "Must be between 1 and 100 in length."
    found = _option_problem(command, where)
    if found:
        return found
    if _command_chars(command) > COMMAND_TOTAL_CHARS:
        return where, f"Command exceeds maximum size ({COMMAND_TOTAL_CHARS})"
    return None


def callback_problem(body: Any) -> Problem | None:
    """An interaction callback, checked against the member of the union its type names."""
    kind = body.get("type") if isinstance(body, dict) else None
    name = CALLBACKS.get(kind) if isinstance(kind, int) else None
    if name is None:
        return ["type"], f"Value {kind!r} is not a valid interaction callback type."
    found = schema_problem(component(name), body)
    if found:
        return found
    if kind in (4, 7) and isinstance(body.get("data"), dict):
        inner = message_problem(body["data"])
        if inner:
            return ["data", *inner[0]], inner[1]
    return None


def errors_body(problem: Problem) -> dict[str, Any]:
    """Discord's 400 for an invalid form body: code 50035, the complaint nested by path."""
    where, message = problem
    errors: dict[str, Any] = {"_errors": [{"code": "BASE_TYPE_INVALID", "message": message}]}
    for part in reversed(where):
        errors = {str(part): errors}
    return {"code": 50035, "errors": errors, "message": "Invalid Form Body"}
