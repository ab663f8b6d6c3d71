"""The web side of the mails: confirm an address, unsubscribe, manage topics, view a digest.

Every page acts on a signed link from a mail; a forged, altered or expired link gets a 403
page and changes nothing. Unsubscribing is a POST (a GET only asks), so link scanners that
open every URL in a mail unsubscribe nobody, and mail clients can use RFC 8058 one-click
(POST with `List-Unsubscribe=One-Click`) to the same URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from newsletter.mail import webcopy
from newsletter.mail.compose import Composer
from newsletter.mail.links import BadLink, Claim, Links
from newsletter.mail.send import view_html
from newsletter.models import utcnow
from newsletter.optin import OptInError, confirm, unsubscribe_address
from newsletter.query import QueryError
from newsletter.subscriptions import SubscriptionError, Who, list_subscriptions, subscribe
from newsletter.subscriptions import unsubscribe as unsubscribe_topic
from newsletter.topics import catalogue

log = logging.getLogger(__name__)

ENGINE = web.AppKey("engine", Engine)
COMPOSER = web.AppKey("composer", Composer)
CLOCK = web.AppKey("clock", Callable[[], datetime])


def _page(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    html = request.app[COMPOSER].env.get_template(f"web/{name}.html").render(context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def _message(request: web.Request, heading: str, text: str, status: int = 200) -> web.Response:
    return _page(request, "message", status, heading=heading, text=text, failed=status >= 400)


def _links(request: web.Request) -> Links:
    return request.app[COMPOSER].links


def _claim(request: web.Request, read: Callable[[str], Claim]) -> Claim:
    try:
        return read(request.query.get("token", ""))
    except BadLink as err:
        raise web.HTTPForbidden(
            text=str(err), content_type="text/plain", headers={"Cache-Control": "no-store"}
        ) from None


async def _act_on(
    request: web.Request, claim: Claim, action: Callable[..., object], *extra: object
) -> web.Response | None:
    """Run an opt-in change for the link's address; a page saying why when it cannot be."""
    engine = request.app[ENGINE]
    try:
        await asyncio.to_thread(action, engine, claim.subscriber_id, claim.email, *extra)
    except OptInError as err:
        return _message(request, "Link no longer valid", str(err), 410)
    return None


async def confirm_page(request: web.Request) -> web.Response:
    claim = _claim(request, _links(request).read_confirm)
    if refused := await _act_on(request, claim, confirm, request.app[CLOCK]()):
        return refused
    log.info("address confirmed: subscriber %s", claim.subscriber_id)
    return _message(request, "You are in", f"Daily papers will come to {claim.email}.")


async def unsubscribe_page(request: web.Request) -> web.Response:
    claim = _claim(request, _links(request).read_unsubscribe)
    if request.method == "GET":
        return _page(request, "unsubscribe", email=claim.email, action=str(request.rel_url))
    if refused := await _act_on(request, claim, unsubscribe_address):
        return refused
    log.info("address unsubscribed: subscriber %s", claim.subscriber_id)
    return _message(request, "Unsubscribed", f"No more mail will go to {claim.email}.")


async def manage_page(request: web.Request) -> web.Response:
    claim = _claim(request, _links(request).read_manage)
    engine, who = request.app[ENGINE], Who(email=claim.email)
    notice = problem = None
    if request.method == "POST":
        form = await request.post()
        try:
            if added := str(form.get("add", "")).strip():
                topic = await asyncio.to_thread(subscribe, engine, who, added)
                notice = f"Added {topic.name}."
            elif removed := str(form.get("remove", "")).strip():
                topic = await asyncio.to_thread(unsubscribe_topic, engine, who, removed)
                notice = f"Removed {topic.name}."
        except (SubscriptionError, QueryError) as err:
            problem = str(err)
    try:
        listed = await asyncio.to_thread(list_subscriptions, engine, who)
    except SubscriptionError:
        listed = []
    following = [entry.topic for entry in listed]
    return _page(
        request,
        "manage",
        400 if problem else 200,
        email=claim.email,
        following=following,
        followed_slugs={t.slug for t in following if t.slug},
        catalogue=catalogue(),
        notice=notice,
        problem=problem,
        action=str(request.rel_url),
        unsubscribe_url=_links(request).unsubscribe_url(claim.subscriber_id, claim.email),
    )


async def view_page(request: web.Request) -> web.Response:
    try:
        delivery_id = _links(request).read_view(request.query.get("token", ""))
    except BadLink as err:
        raise web.HTTPForbidden(text=str(err)) from None
    html = await asyncio.to_thread(
        view_html, request.app[ENGINE], request.app[COMPOSER], delivery_id, request.app[CLOCK]()
    )
    if html is None:
        kept = webcopy.KEPT_FOR.days
        return _message(
            request,
            "Not found",
            f"This mail's web copy is no longer available: copies are kept {kept} days.",
            404,
        )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def healthz(request: web.Request) -> web.Response:
    def ping() -> None:
        with request.app[ENGINE].connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await asyncio.to_thread(ping)
    except SQLAlchemyError as err:
        return web.Response(text=f"database unavailable: {type(err).__name__}", status=503)
    return web.Response(text="ok")


def make_app(
    engine: Engine, composer: Composer, clock: Callable[[], datetime] = utcnow
) -> web.Application:
    app = web.Application()
    app[ENGINE], app[COMPOSER], app[CLOCK] = engine, composer, clock
    app.router.add_route("GET", "/confirm", confirm_page)
    app.router.add_route("GET", "/unsubscribe", unsubscribe_page)
    app.router.add_route("POST", "/unsubscribe", unsubscribe_page)
    app.router.add_route("GET", "/manage", manage_page)
    app.router.add_route("POST", "/manage", manage_page)
    app.router.add_route("GET", "/view", view_page)
    app.router.add_route("GET", "/healthz", healthz)
    return app
