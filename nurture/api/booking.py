"""`/book/{token}`: the page a booking link opens, where a lead picks a slot of the coach's,
in the lead's own time zone, and later moves or cancels it with the same link.

No bearer token: the signed link is the credential. Forms post back a key derived from the
link (a page elsewhere cannot forge it) and are refused from another origin. Every answer is
a small page, a bad, forged or expired link included: never a traceback.
"""

import logging
from datetime import UTC, datetime
from functools import cache
from itertools import groupby
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, Template, select_autoescape

from nurture.api.deps import Ctx
from nurture.channels import channels_for
from nurture.engine import appointments, calendars
from nurture.engine.calendars import Calendars
from nurture.errors import (
    ExpiredLink,
    InvalidState,
    InvalidToken,
    NotFound,
    NurtureError,
    SlotTaken,
)
from nurture.rules.booking import Booking, form_key, read_feed_token

log = logging.getLogger("nurture.api")
router = APIRouter(tags=["booking"])
Token = Annotated[str, Path(description="The signed token of a booking link.")]
PAGES = {"text/html": {"schema": {"type": "string"}}}
RESPONSES: dict[int | str, dict] = {
    200: {"description": "The slots to pick, or the booked call.", "content": PAGES},
    400: {"description": "Not a booking link of this project.", "content": PAGES},
    403: {"description": "A form that did not come from this page.", "content": PAGES},
    404: {"description": "Nothing to book with this link.", "content": PAGES},
    409: {"description": "The slot went meanwhile, or the call cannot change.", "content": PAGES},
    410: {"description": "The link has expired.", "content": PAGES},
    503: {"description": "Booking is not configured, or the store is down.", "content": PAGES},
}
BOOK_RESPONSES = {key: value for key, value in RESPONSES.items() if key != 200} | {
    200: {"description": "Booked, moved or cancelled.", "content": PAGES}
}
_STATUS: tuple[tuple[type[NurtureError], int], ...] = (
    (ExpiredLink, 410),
    (InvalidToken, 400),
    (NotFound, 404),
    (SlotTaken, 409),
    (InvalidState, 409),
)


@cache
def _template() -> Template:
    environment = Environment(
        loader=PackageLoader("nurture.api", "templates"), autoescape=select_autoescape(default=True)
    )
    return environment.get_template("booking.html.j2")


def page(status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_template().render(**values), status_code=status)


def _problem(error: NurtureError) -> HTMLResponse:
    status = next((code for kind, code in _STATUS if isinstance(error, kind)), 503)
    texts = {
        400: "This link is not complete or not valid. Copy the whole link from the message.",
        404: "There is nothing to book with this link.",
        410: "This booking link has expired. Reply to the message and we will send a new one.",
        503: "Booking is not available right now. Please try again later.",
    }
    if status == 409:
        return page(409, title="That did not work", text=str(error))
    return page(status, title="This link did not work", text=texts[status])


def _booking(ctx: Ctx) -> Booking:
    booking = ctx.settings.booking
    if booking is None or not booking.secret:
        raise InvalidToken("booking is not configured")
    return booking


def calendars_of(request: Request) -> Calendars:
    """The app's calendars (the coach's CalDAV calendar, invitations), made on first use."""
    state = request.app.state
    if getattr(state, "calendars", None) is None:
        ctx = state.context
        channels = channels_for(ctx.settings.channel, ctx.store, ctx.settings.providers)
        state.calendars = Calendars.of(ctx.settings, channels)
    return state.calendars


def _sync(ctx: Ctx, found: Calendars) -> None:
    """After the response: the invitation and the coach's calendar (a failure is logged and
    retried by the next sync, the daemon's or this server's)."""
    try:
        synced = calendars.sync(ctx.store, found, datetime.now(UTC))
    except Exception:  # the lead has their page; nothing here may reach them
        log.exception("appointment sync failed")
        return
    for problem in synced.problems:
        log.warning(problem)


def _view(ctx: Ctx, token: str, request: Request, note: str = "") -> HTMLResponse:
    booking, now = _booking(ctx), datetime.now(UTC)
    busy = calendars_of(request).busy(now)
    view = appointments.open_link(ctx.store, booking, token, now, busy)
    found, zone = view.appointment, ZoneInfo(view.zone)
    if found is None:
        raise NotFound("no appointment for this link")
    booked = found.starts_at.astimezone(zone) if found.status == "booked" else None
    values = {
        "title": _title(found.status, found.title),
        "note": note,
        "zone": view.zone,
        "booked": f"{booked:%A %d %B %Y, %H:%M}" if booked else "",
        "location": found.location,
        "action": request.url.path,
        "form_key": form_key(booking.secret or "", token),
        "days": _days(view.slots, zone) if view.bookable else [],
        "cancellable": view.bookable,
    }
    return page(**values)


def _title(status: str, title: str) -> str:
    titles = {"offered": f"Book your call: {title}", "booked": f"Your call: {title}"}
    return titles.get(status, f"{title}: {status.replace('_', ' ')}")


def _days(slots: list[datetime], zone: ZoneInfo) -> list[tuple[str, list[tuple[str, str]]]]:
    """The free slots by local day: (day, [(UTC ISO value, local time)])."""
    local = [(slot, slot.astimezone(zone)) for slot in slots]
    return [
        (day, [(slot.isoformat(), f"{at:%H:%M}") for slot, at in group])
        for day, group in groupby(local, key=lambda pair: f"{pair[1]:%A %d %B}")
    ]


@router.get("/book/{token}", response_class=HTMLResponse, responses=RESPONSES)
def booking_page(ctx: Ctx, token: Token, request: Request) -> HTMLResponse:
    """The booking link's page: the coach's free slots in the lead's time zone, or the call."""
    try:
        return _view(ctx, token, request)
    except NurtureError as error:
        return _problem(error)


@router.post("/book/{token}", response_class=HTMLResponse, responses=BOOK_RESPONSES)
def book(
    ctx: Ctx,
    token: Token,
    request: Request,
    background: BackgroundTasks,
    form_key_: Annotated[str, Form(alias="form_key", max_length=100)] = "",
    action: Annotated[str, Form(max_length=20)] = "book",
    slot: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    """Book the slot picked (or move the call there), or cancel it."""
    try:
        booking = _booking(ctx)
        if not _same_origin(request) or form_key_ != form_key(booking.secret or "", token):
            return page(403, title="This form did not work", text="Open the link again.")
        now, found = datetime.now(UTC), calendars_of(request)
        if action == "cancel":
            appointments.cancel_from_link(ctx.store, booking, token, now, ctx.rules)
            note = "Your call is cancelled."
        else:
            busy = found.busy(now)
            appointments.book_from_link(ctx.store, booking, token, _slot(slot), now, busy)
            note = "Your call is booked."
        found.forget_busy()
        background.add_task(_sync, ctx, found)
        return _view(ctx, token, request, note=note)
    except NurtureError as error:
        return _problem(error)


FEED: dict[int | str, dict[str, Any]] = {
    200: {"description": "The coach's calls as iCalendar.", "content": {"text/calendar": {}}},
    400: {"description": "Not a feed of this project.", "content": PAGES},
    503: {"description": "The feed is not configured, or the store is down.", "content": PAGES},
}


@router.get("/calendar/{token}.ics", response_class=Response, responses=FEED)
def calendar_feed(
    ctx: Ctx,
    request: Request,
    token: Annotated[str, Path(description="The feed's private token (`appointments feed-url`).")],
) -> Response:
    """The coach's private iCalendar feed: subscribe to it from any calendar app."""
    try:
        booking = _booking(ctx)
        coach = read_feed_token(booking.secret or "", token)
        body = calendars.feed(ctx.store, calendars_of(request), coach, datetime.now(UTC))
    except NurtureError as error:
        return _problem(error)
    return Response(body, media_type="text/calendar; charset=utf-8")


def _slot(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SlotTaken("pick one of the times shown") from None
    if when.tzinfo is None:
        raise SlotTaken("pick one of the times shown")
    return when.astimezone(UTC)


def _same_origin(request: Request) -> bool:
    """A browser's Origin, when it sends one, is this server's."""
    origin = request.headers.get("origin")
    return origin is None or origin in ("null",) or origin.split("://")[-1] == request.url.netloc
