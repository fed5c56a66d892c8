"""Room: server/web. The activity feed: the activity log newest first, filtered and paged.

``GET /activity`` filters by node, kind and time range (a preset such as ``24h``, or ``since`` /
``until`` as ISO times or the browser's ``datetime-local``, read as UTC) and pages on with the
log's cursor (``?cursor=``). The first page refreshes itself live from ``GET /ui/activity``
(same query); older pages stay still while you read them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import EventFilter, EventRow, from_us, to_us
from beamwarden.server.services.queries import PageOf

from .forms import page
from .rendering import WebRoute, render
from .security import ViewerDep, services_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PAGE_SIZE = 50
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
RANGES["30d"] = timedelta(days=30)
#: kinds offered as suggestions (any kind may be typed)
KNOWN_KINDS = (
    "alert_firing",
    "alert_renotify",
    "alert_resolved",
    "alert_rules_changed",
    "checkin_added",
    "checkin_removed",
    "device_availability",
    "device_changed",
    "device_discovered",
    "devices_imported",
    "enrolment_opened",
    "gateway_availability",
    "login",
    "login_failed",
    "logout",
    "node_added",
    "node_registered",
    "node_revoked",
    "reading_conflict",
    "silence_added",
    "silence_removed",
    "software_version_changed",
    "token_issued",
    "token_revoked",
    "user_added",
    "user_disabled",
    "user_enabled",
    "user_password_set",
    "user_role_changed",
)


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    node: str = ""
    kind: str = ""
    range: str = ""
    since: str = ""
    until: str = ""

    def params(self) -> dict[str, str]:
        names = ("node", "kind", "range", "since", "until")
        return {k: getattr(self, k) for k in names if getattr(self, k)}

    def with_kind(self, kind: str) -> ActivityQuery:
        return replace(self, kind=kind)

    def link(self, cursor: str | None = None) -> str:
        params = self.params()
        if cursor:
            params["cursor"] = cursor
        return "/activity" + ("?" + urlencode(params) if params else "")


def parse_time(text: str, what: str) -> datetime:
    """An ISO time (``2026-11-22T12:00Z``, with an offset) or a zoneless one (read as UTC)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidRequest(
            f"{what} is a time such as 2026-11-22T12:00 (UTC) or 2026-11-22T12:00+01:00",
            code="invalid_time",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        to_us(moment)
        moment.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{what} is out of range", code="invalid_time") from None
    return moment


def event_filter(query: ActivityQuery, now: datetime) -> EventFilter:
    since = until = None
    if query.range:
        if query.range not in RANGES:
            raise InvalidRequest(
                f"range is one of {', '.join(RANGES)} (or give since and until)",
                code="invalid_range",
            )
        since = now - RANGES[query.range]
    if query.since:
        since = parse_time(query.since, "since")
    if query.until:
        until = parse_time(query.until, "until")
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("since must be before until", code="invalid_range")
    return EventFilter(
        node_id=query.node or None,
        kind=query.kind or None,
        since_us=None if since is None else to_us(since),
        until_us=None if until is None else to_us(until),
    )


Text = Annotated[str, Query(max_length=64)]


def _query(node: str, kind: str, range: str, since: str, until: str) -> ActivityQuery:
    return ActivityQuery(node.strip(), kind.strip(), range.strip(), since.strip(), until.strip())


async def _events(request: Request, query: ActivityQuery, cursor: str | None) -> PageOf[EventRow]:
    services = services_of(request)
    flt = event_filter(query, services.clock.now())
    return await services.queries.events(flt, PAGE_SIZE, cursor or None)


def _context(
    request: Request, query: ActivityQuery, events: PageOf[EventRow], cursor: str
) -> dict[str, object]:
    now = services_of(request).clock.now()
    return {
        "query": query,
        "events": events.items,
        "cursor": cursor,
        "next": query.link(events.next_cursor) if events.next_cursor else None,
        "first": query.link() if cursor else None,
        "ranges": list(RANGES),
        "kinds": KNOWN_KINDS,
        "from_us": from_us,
        "age": lambda us: (now - from_us(us)).total_seconds(),
    }


@router.get("/activity")
async def activity_page(
    request: Request,
    viewer: ViewerDep,
    node: Text = "",
    kind: Text = "",
    range: Text = "",
    since: Text = "",
    until: Text = "",
    cursor: Annotated[str, Query(max_length=512)] = "",
) -> Response:
    query = _query(node, kind, range, since, until)
    events = await _events(request, query, cursor)
    return page(request, "activity.html", _context(request, query, events, cursor), viewer)


@router.get("/ui/activity")
async def activity_panel(
    request: Request,
    viewer: ViewerDep,
    node: Text = "",
    kind: Text = "",
    range: Text = "",
    since: Text = "",
    until: Text = "",
) -> Response:
    """The first page's rows, for the live refresh."""
    query = _query(node, kind, range, since, until)
    events = await _events(request, query, None)
    return render(request, "_activity.html", _context(request, query, events, ""), viewer=viewer)
