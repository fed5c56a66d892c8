"""Room: server/web. The alerts page: what fires, silences, the rules, notification channels.

Anyone logged in sees the active alerts (firing and pending), the silences, the rules and the
channels (name and kind: a channel's URL holds its secret and is never shown). An admin also
sees the recent notifications with their delivery state, and may:

- ``POST /alerts/silences``: silence rules (none: every rule) for matching subjects for a while;
- ``POST /alerts/silences/{id}/expire``: end a silence now;
- ``POST /alerts/rules``: replace the rules document (JSON, the API's shape, or TOML, the rules
  file's); a document that does not validate comes back with the error and the text kept;
- ``POST /alerts/test``: send a test notification to one channel or all.
"""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from beamwarden.fleet.alerts import Scope, Silence, parse_duration
from beamwarden.server.errors import InvalidRequest, NotFound
from beamwarden.server.records import from_us
from beamwarden.server.services.alerts import AlertService, plain_document

from .forms import Level, actor, names_field, page, redirect, text_field
from .redact import describe, scrub
from .rendering import WebRoute
from .security import CheckedAdminDep, Viewer, ViewerDep, services_of, settings_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)

#: the longest silence the page sets (a longer one is a rule change, not a silence)
MAX_SILENCE = timedelta(days=366)
MAX_RULES_TEXT = 200_000
RECENT_NOTIFICATIONS = 30
SCOPE_KEYS = ("node", "role", "site", "room", "sensor_type", "sensor_id")


def alert_service(request: Request) -> AlertService:
    alerts: AlertService = request.app.state.alerting.alerts
    return alerts


def _urls(request: Request) -> list[str]:
    return list(settings_of(request).notify_urls.values())


async def _context(request: Request, viewer: Viewer) -> dict[str, Any]:
    alerts = alert_service(request)
    usable = set(alerts.notifications.channels())
    channels = [
        describe(name, url, name in usable)
        for name, url in sorted(settings_of(request).notify_urls.items())
    ]
    current = await alerts.rules_document()
    notifications = []
    if viewer.is_admin:
        urls = _urls(request)
        for row in await alerts.notifications.recent(RECENT_NOTIFICATIONS):
            notifications.append((row, scrub(row.error, urls)))
    return {
        "active": await alerts.firing(pending=True),
        "silences": await alerts.silences(),
        "rules": (await alerts.ruleset()).rules,
        "rules_source": current["source"],
        "rules_text": json.dumps(current["document"], indent=2, sort_keys=True, default=str),
        "rules_error": None,
        "channels": channels,
        "notifications": notifications,
        "scope_keys": SCOPE_KEYS,
        "from_us": from_us,
    }


@router.get("/alerts")
async def alerts_page(request: Request, viewer: ViewerDep) -> Response:
    return page(request, "alerts.html", await _context(request, viewer), viewer)


FormText = Annotated[str | None, Form()]


def build_silence(
    request: Request,
    name: str | None,
    rules: str | None,
    scope: dict[str, str | None],
    duration: str | None,
    comment: str | None,
) -> Silence:
    """The engine's silence from the form; InvalidRequest says what does not make sense."""
    try:
        seconds = parse_duration((duration or "").strip())
    except ValueError as exc:
        raise InvalidRequest(f"duration: {exc}", code="invalid_silence") from None
    if not 0 < seconds <= MAX_SILENCE.total_seconds():
        raise InvalidRequest(
            "a silence lasts more than 0 s and at most 366 days", code="invalid_silence"
        )
    starts = services_of(request).clock.now()
    try:
        return Silence(
            name=text_field(name, "the name", 128) or "",
            rules=names_field(rules, "rules"),
            scope=Scope.model_validate({k: names_field(v, k) for k, v in scope.items() if v}),
            starts=starts,
            ends=starts + timedelta(seconds=seconds),
            comment=text_field(comment, "the comment", 1000) or "",
        )
    except ValidationError as exc:
        message = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'silence'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRequest(message, code="invalid_silence") from None


@router.post("/alerts/silences")
async def add_silence(
    request: Request,
    viewer: CheckedAdminDep,
    name: FormText = None,
    rules: FormText = None,
    node: FormText = None,
    role: FormText = None,
    site: FormText = None,
    room: FormText = None,
    sensor_type: FormText = None,
    sensor_id: FormText = None,
    duration: FormText = None,
    comment: FormText = None,
) -> Response:
    scope = {
        "node": node,
        "role": role,
        "site": site,
        "room": room,
        "sensor_type": sensor_type,
        "sensor_id": sensor_id,
    }
    silence = build_silence(request, name, rules, scope, duration, comment)
    row = await alert_service(request).add_silence(silence, actor(viewer))
    return redirect(request, "/alerts#silences", f"silence {row.id} added")


@router.post("/alerts/silences/{silence_id}/expire")
async def expire_silence(request: Request, viewer: CheckedAdminDep, silence_id: str) -> Response:
    if not silence_id.isdigit() or not 1 <= int(silence_id) <= 2**31 - 1:
        raise NotFound("no such silence", code="unknown_silence")
    row = await alert_service(request).delete_silence(int(silence_id), actor(viewer))
    return redirect(request, "/alerts#silences", f"silence {row.id} ended")


def parse_document(text: str) -> dict[str, Any]:
    """The rules document from the form: JSON (``{...}``) or TOML (the rules file's format)."""
    if len(text) > MAX_RULES_TEXT:
        raise InvalidRequest("the rules document is too long", code="invalid_rules")
    stripped = text.strip()
    try:
        doc: Any = json.loads(stripped) if stripped.startswith("{") else tomllib.loads(stripped)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and TOMLDecodeError
        kind = "JSON" if stripped.startswith("{") else "TOML"
        raise InvalidRequest(
            f"the document is not valid {kind}: {exc}", code="invalid_rules"
        ) from None
    if not isinstance(doc, dict):
        raise InvalidRequest("the rules document is an object (a table)", code="invalid_rules")
    return plain_document(doc)


@router.post("/alerts/rules")
async def replace_rules(
    request: Request, viewer: CheckedAdminDep, document: FormText = None
) -> Response:
    text = document or ""
    try:
        doc = parse_document(text)
        ruleset = await alert_service(request).replace_rules(doc, actor(viewer))
    except InvalidRequest as exc:
        context = await _context(request, viewer)
        context.update(rules_text=text[:MAX_RULES_TEXT], rules_error=exc.message)
        return page(request, "alerts.html", context, viewer, status=400)
    return redirect(request, "/alerts#rules", f"rules saved ({len(ruleset.rules)} rules)")


@router.post("/alerts/test")
async def send_test(
    request: Request, viewer: CheckedAdminDep, channel: FormText = None
) -> Response:
    wanted = text_field(channel, "the channel", 64) or None
    results = await alert_service(request).notifications.send_test(wanted)
    if not results:
        return redirect(request, "/alerts#channels", "no notification channel is set up", "bad")
    urls = _urls(request)
    words = [
        f"{name}: {'sent' if error is None else 'failed: ' + (scrub(error, urls) or '')}"
        for name, error in results.items()
    ]
    level: Level = "ok" if all(e is None for e in results.values()) else "bad"
    return redirect(request, "/alerts#channels", "test notification — " + "; ".join(words), level)
