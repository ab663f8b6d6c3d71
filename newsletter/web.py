"""The web side of the mails: confirm an address, unsubscribe, manage topics, view a digest.

Every page acts on a signed link from a mail; a forged, altered or expired link gets a 403
page and changes nothing. Every change is a POST (a GET of a confirm or unsubscribe link
only shows a page with one button), so link scanners that open every URL in a mail confirm
and unsubscribe nobody, and mail clients can use RFC 8058 one-click
(POST with `List-Unsubscribe=One-Click`) to the same URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import available_timezones

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
from newsletter.subscriptions import (
    SubscriptionError,
    Who,
    find_subscriber,
    list_subscriptions,
    set_delivery,
    subscribe,
)
from newsletter.subscriptions import unsubscribe as unsubscribe_topic
from newsletter.topics import catalogue
from newsletter.web_log import one_line_server_errors

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


def _refused(request: web.Request, err: BadLink) -> web.HTTPForbidden:
    """The 403 for a bad link, as a page like the others that says what to do next."""
    html = (
        request.app[COMPOSER]
        .env.get_template("web/message.html")
        .render(
            heading="This link does not work",
            text=f"{str(err).capitalize()}.",
            next_step=_NEXT_STEP,
            failed=True,
        )
    )
    return web.HTTPForbidden(
        text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


_NEXT_STEP = (
    "Use the link in your most recent mail from paperboy, or sign up again to get a new one. "
    "Every daily mail has working links to manage your topics and to unsubscribe."
)


def _claim(request: web.Request, read: Callable[[str], Claim]) -> Claim:
    try:
        return read(request.query.get("token", ""))
    except BadLink as err:
        raise _refused(request, err) from None


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
    """A GET shows one button; only its POST confirms (mail scanners open every link)."""
    claim = _claim(request, _links(request).read_confirm)
    if request.method != "POST":
        return _page(request, "confirm", email=claim.email, action=str(request.rel_url))
    if refused := await _act_on(request, claim, confirm, request.app[CLOCK](), claim.issued_at):
        return refused
    log.info("address confirmed: subscriber %s", claim.subscriber_id)
    return _message(request, "You are in", f"Daily papers will come to {claim.email}.")


async def unsubscribe_page(request: web.Request) -> web.Response:
    claim = _claim(request, _links(request).read_unsubscribe)
    if request.method != "POST":  # a GET or HEAD only asks
        return _page(request, "unsubscribe", email=claim.email, action=str(request.rel_url))
    if refused := await _act_on(request, claim, unsubscribe_address):
        return refused
    log.info("address unsubscribed: subscriber %s", claim.subscriber_id)
    return _message(request, "Unsubscribed", f"No more mail will go to {claim.email}.")


_DONE = {
    "added": "Topic added.",
    "removed": "Topic removed.",
    "delivery": "Delivery time saved.",
}


async def _change(engine: Engine, who: Who, form: Any) -> str:
    """Carry out the manage form's one change; which it was, for the notice after redirect."""
    if added := str(form.get("add", "")).strip():
        await asyncio.to_thread(subscribe, engine, who, added)
        return "added"
    if removed := str(form.get("remove", "")).strip():
        await asyncio.to_thread(unsubscribe_topic, engine, who, removed)
        return "removed"
    if "timezone" in form:
        hour = str(form.get("hour", "")).strip()
        if not hour.isdigit():
            raise SubscriptionError(f"delivery hour {hour!r} is not a whole hour from 0 to 23")
        timezone = str(form.get("timezone", "")).strip()
        await asyncio.to_thread(set_delivery, engine, who, timezone, int(hour))
        return "delivery"
    raise SubscriptionError("nothing to change: type a topic or choose a delivery time")


async def manage_page(request: web.Request) -> web.Response:
    """Topics and delivery time. A change is a POST answered with a redirect to the page
    (POST-redirect-GET), so reloading shows the page instead of sending the form again; a
    refused change shows the page with the reason and what was typed, nothing changed."""
    claim = _claim(request, _links(request).read_manage)
    engine, who = request.app[ENGINE], Who(email=claim.email)
    claim_token = request.query.get("token", "")
    problem, typed = None, {}
    if request.method == "POST":
        form = await request.post()
        try:
            done = await _change(engine, who, form)
        except (SubscriptionError, QueryError) as err:
            problem, typed = str(err), {k: str(v) for k, v in form.items()}
        else:
            raise web.HTTPSeeOther(f"{request.path}?token={claim_token}&done={done}")
    try:
        listed = await asyncio.to_thread(list_subscriptions, engine, who)
    except SubscriptionError:
        listed = []
    person = await asyncio.to_thread(find_subscriber, engine, who)
    following = [entry.topic for entry in listed]
    return _page(
        request,
        "manage",
        400 if problem else 200,
        email=claim.email,
        following=following,
        followed_slugs={t.slug for t in following if t.slug},
        catalogue=catalogue(),
        notice=None if problem else _DONE.get(request.query.get("done", "")),
        problem=problem,
        typed=typed,
        timezone=typed.get("timezone", person.timezone if person else "UTC"),
        hour=typed.get("hour", str(person.delivery_hour) if person else "8"),
        timezones=_TIMEZONES,
        action=f"{request.path}?token={claim_token}",
        unsubscribe_url=_links(request).unsubscribe_url(claim.subscriber_id, claim.email),
    )


_TIMEZONES = sorted(available_timezones())


async def view_page(request: web.Request) -> web.Response:
    try:
        delivery_id = _links(request).read_view(request.query.get("token", ""))
    except BadLink as err:
        raise _refused(request, err) from None
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
    one_line_server_errors()
    app = web.Application()
    app[ENGINE], app[COMPOSER], app[CLOCK] = engine, composer, clock
    # add_get answers HEAD like GET (without the body), as link checkers expect.
    for path, page in (
        ("/confirm", confirm_page),
        ("/unsubscribe", unsubscribe_page),
        ("/manage", manage_page),
    ):
        app.router.add_get(path, page)
        app.router.add_post(path, page)
    app.router.add_get("/view", view_page)
    app.router.add_get("/healthz", healthz)
    return app
