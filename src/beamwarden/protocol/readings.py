"""Room: protocol (pure). Readings on the wire: three shapes in, one normalised form out.

This is the ingest hot path, so it decodes with msgspec (typed structs in C) and validates what
msgspec cannot express in one plain Python pass. A batch is all-or-nothing: when anything is wrong,
:class:`~beamwarden.protocol.errors.SchemaViolation` lists *every* invalid item by index and field.

Accepted bodies: one reading, an array of readings, or ``{"readings": [...]}``. Shapes:

* generic (Pi-Log v2): ``{"device_id" | "node_id", "sensor_type", "payload": {...}, "timestamp"}``
* Geiger as LogExp serves it: ``{"counts_per_second", "counts_per_minute",
  "microsieverts_per_hour", "mode", "device_id"?, "timestamp"?}``
* Geiger as the fleet specification wrote it: ``{"node_id", "timestamp"?, "counts"?, "cps", "cpm",
  "tube_type"?, "firmware_version"?}``

Every shape may also carry ``sensor_id`` and ``reading_id``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from .errors import BatchTooLarge, Issue, SchemaViolation
from .vocabulary import (
    FIELD_NAME_RE,
    IDENT_RE,
    SENSOR_ID_RE,
    UNIT_HINTS,
    VOCABULARY,
    FieldKind,
    GeigerMode,
    SensorType,
)

#: Most readings one request may carry (PROTOCOL.md "Limits"; a server setting may lower it).
MAX_BATCH = 10_000
#: Most fields one reading's payload may carry.
MAX_FIELDS = 64
MAX_TEXT = 256
READING_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")

TzDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0)]
ShortStr = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class Reading(msgspec.Struct, frozen=True, gc=False):
    """A reading in its one normalised form, whichever shape it arrived in.

    ``timestamp`` is in UTC, or ``None`` when a Geiger reading came without one (the server then
    stamps its receive time and marks the reading ``timestamp_source = "server"``).
    """

    node_id: str
    sensor_id: str
    sensor_type: str
    payload: dict[str, Any]
    timestamp: datetime | None
    reading_id: str | None = None


class WireReading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Every field any of the three shapes may carry; which shape it is is decided afterwards."""

    node_id: ShortStr | None = None
    device_id: ShortStr | None = None
    sensor_type: ShortStr | None = None
    sensor_id: ShortStr | None = None
    payload: dict[str, Any] | None = None
    timestamp: TzDatetime | None = None
    reading_id: ShortStr | None = None
    counts_per_second: NonNegInt | None = None
    counts_per_minute: NonNegInt | None = None
    microsieverts_per_hour: NonNegFloat | None = None
    mode: ShortStr | None = None
    counts: NonNegInt | None = None
    cps: NonNegFloat | None = None
    cpm: NonNegFloat | None = None
    tube_type: ShortStr | None = None
    firmware_version: ShortStr | None = None
    #: only in the ``{"readings": [...]}`` wrapper, which then has no other field
    readings: list[WireReading] | None = None


_DECODER = msgspec.json.Decoder(list[WireReading] | WireReading)
_ITEM_DECODER = msgspec.json.Decoder(WireReading)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_GEIGER = SensorType.GEIGER.value
_MODES = {m.value for m in GeigerMode}
_BESIDE_READINGS = 'unexpected beside "readings"'


def decode_readings(
    body: bytes, *, default_node_id: str | None = None, max_batch: int = MAX_BATCH
) -> list[Reading]:
    """Decode and validate a readings body (JSON bytes, already decompressed).

    ``default_node_id`` is the node a reading belongs to when it names none (the sender's own node).
    Raises :class:`SchemaViolation` naming every invalid item, or :class:`BatchTooLarge`.
    """
    try:
        return _decode_readings(body, default_node_id, max_batch)
    except msgspec.DecodeError as exc:
        # Malformed JSON, found by the first decode or only by the slow path (``[1, 2`` fails
        # validation at ``1`` before msgspec reaches the missing ``]``). Every ValidationError is
        # handled inside, so what arrives here is a syntax error.
        raise SchemaViolation([Issue(None, "", f"the body is not valid JSON: {exc}")]) from None
    except RecursionError:
        # msgspec refuses JSON nested deeper than the interpreter's recursion limit by raising
        # RecursionError; a hostile or broken body must be a 400, never a 500.
        raise SchemaViolation([Issue(None, "", "the body is nested too deeply")]) from None


def _decode_readings(body: bytes, default_node_id: str | None, max_batch: int) -> list[Reading]:
    try:
        decoded = _DECODER.decode(body)
    except msgspec.ValidationError:
        items, issues = _decode_items_one_by_one(body, max_batch)
    else:
        items, issues = _unwrap(decoded)
        if len(items) > max_batch:
            raise BatchTooLarge(len(items), max_batch)
    out: list[Reading] = []
    append = out.append
    for index, item in enumerate(items):
        if item is None:
            continue
        reading = _fast(item, default_node_id) if not issues else None
        if reading is None:
            reading = normalise(item, index, default_node_id, issues)
        if reading is not None:
            append(reading)
    if issues:
        issues.sort(key=lambda i: -1 if i.index is None else i.index)
        raise SchemaViolation(issues, _summary(issues))
    return out


def _summary(issues: list[Issue]) -> str:
    bad = len({i.index for i in issues if i.index is not None})
    if bad == 0:  # only the body itself is wrong (e.g. a field beside "readings")
        return "the body is invalid; nothing was stored"
    return f"{bad} invalid reading{'s' if bad != 1 else ''}; nothing was stored"


def _unwrap(decoded: list[WireReading] | WireReading) -> tuple[list[WireReading], list[Issue]]:
    if isinstance(decoded, list):
        return decoded, []
    if decoded.readings is not None:
        # The wrapper carries nothing else: a field beside "readings" (a node_id meant for the
        # whole batch, say) would otherwise be silently ignored. Same issue as the slow path's.
        extra = sorted(
            name
            for name in decoded.__struct_fields__
            if name != "readings" and getattr(decoded, name) is not None
        )
        return decoded.readings, [Issue(None, name, _BESIDE_READINGS) for name in extra]
    return [decoded], []


def _decode_items_one_by_one(body: bytes, max_batch: int) -> tuple[list[Any], list[Issue]]:
    """The slow path after a failed decode: find every item's problem, not only the first."""
    issues: list[Issue] = []
    try:
        raw_items: list[msgspec.Raw] = _RAW_LIST.decode(body)
    except msgspec.ValidationError:
        try:
            obj = _RAW_OBJECT.decode(body)
        except msgspec.ValidationError:
            raise SchemaViolation(
                [Issue(None, "", 'expected a reading, an array of readings or {"readings": [...]}')]
            ) from None
        if "readings" not in obj:
            raw_items = [msgspec.Raw(body)]
        else:
            extra = sorted(set(obj) - {"readings"})
            for name in extra:
                issues.append(Issue(None, name, _BESIDE_READINGS))
            try:
                raw_items = _RAW_LIST.decode(obj["readings"])
            except msgspec.ValidationError:
                raise SchemaViolation(
                    [*issues, Issue(None, "readings", "expected an array of readings")]
                ) from None
    if len(raw_items) > max_batch:
        raise BatchTooLarge(len(raw_items), max_batch)
    items: list[WireReading | None] = []
    for index, raw in enumerate(raw_items):
        try:
            items.append(_ITEM_DECODER.decode(raw))
        except msgspec.ValidationError as exc:
            items.append(None)
            issues.append(_issue_from_msgspec(index, str(exc)))
    return items, issues


_PATH_RE = re.compile(r"^(?P<msg>.*) - at `\$(?P<path>[^`]*)`$", re.S)
_UNKNOWN_RE = re.compile(r"Object contains unknown field `(?P<name>.*)`", re.S)


def _issue_from_msgspec(index: int, text: str) -> Issue:
    match = _PATH_RE.match(text)
    if match is not None:
        path = match["path"].lstrip(".")
        if path.startswith("readings"):
            path = "readings"  # a nested wrapper inside an item
        return Issue(index, path, match["msg"])
    unknown = _UNKNOWN_RE.fullmatch(text)  # msgspec names no path for the item's own fields
    if unknown is not None:
        # name the offending field rather than "" (which would say the whole item is wrong)
        return Issue(
            index,
            unknown["name"][:64],
            "unknown field (a generic reading carries its values in payload)",
        )
    return Issue(index, "", text)


#: strings already seen to be valid (node ids and sensor types; sensor ids; field names): most
#: repeat from reading to reading, and a set look-up is a tenth of a regex match
_IDENTS: set[str] = set()
_SENSOR_IDS: set[str] = set()
_FIELDS: set[str] = set()
_SEEN_MAX = 100_000


def _seen(cache: set[str], pattern: re.Pattern[str], value: str) -> bool:
    """Whether ``value`` (not in ``cache``) matches ``pattern``; remember it if so (bounded)."""
    if pattern.fullmatch(value) is None:
        return False
    if len(cache) >= _SEEN_MAX:
        cache.clear()
    cache.add(value)
    return True


def _fast(w: WireReading, default_node_id: str | None) -> Reading | None:
    """The common case — a valid generic reading — in one lean pass; ``None`` for anything else,
    which :func:`normalise` then decides (and explains). Never accepts what normalise refuses."""
    payload = w.payload
    if (
        payload is None
        or w.readings is not None
        or w.counts_per_second is not None
        or w.counts_per_minute is not None
        or w.microsieverts_per_hour is not None
        or w.mode is not None
        or w.cps is not None
        or w.cpm is not None
        or w.counts is not None
        or w.tube_type is not None
        or w.firmware_version is not None
        or not payload
        or len(payload) > MAX_FIELDS
    ):
        return None
    timestamp = w.timestamp
    sensor_type = w.sensor_type
    if timestamp is None or sensor_type is None:
        return None
    if sensor_type not in _IDENTS and not _seen(_IDENTS, IDENT_RE, sensor_type):
        return None
    node_id = w.device_id
    if node_id is None:
        node_id = w.node_id if w.node_id is not None else default_node_id
    elif w.node_id is not None and w.node_id != node_id:
        return None
    if node_id is None or (node_id not in _IDENTS and not _seen(_IDENTS, IDENT_RE, node_id)):
        return None
    sensor_id = w.sensor_id
    if sensor_id is None:
        sensor_id = sensor_type
    elif sensor_id not in _SENSOR_IDS and not _seen(_SENSOR_IDS, SENSOR_ID_RE, sensor_id):
        return None
    rid = w.reading_id
    if rid is not None and (
        not rid or len(rid) > 128 or not rid.isascii() or not rid.isprintable() or " " in rid
    ):
        return None
    vocab = VOCABULARY.get(sensor_type)
    for name, value in payload.items():
        if name not in _FIELDS and not _seen(_FIELDS, FIELD_NAME_RE, name):
            return None
        if vocab is None:
            if value.__class__ is str and len(value) > MAX_TEXT:
                return None
            continue
        spec = vocab.get(name)
        if spec is None or name == "mode":
            return None
        if spec.kind is FieldKind.NUMBER:
            if value.__class__ not in _NUMBERS or (
                spec.minimum is not None and value < spec.minimum
            ):
                return None
        elif value.__class__ is not str or len(value) > MAX_TEXT:
            return None
    if timestamp.tzinfo is not UTC:
        try:
            timestamp = timestamp.astimezone(UTC)
        except OverflowError:
            return None
    return Reading(node_id, sensor_id, sensor_type, payload, timestamp, rid)


_NUMBERS = (int, float)


def normalise(
    w: WireReading, index: int, default_node_id: str | None, issues: list[Issue]
) -> Reading | None:
    """Normalise one decoded item; append its problems to ``issues`` and return ``None`` if any."""
    before = len(issues)

    def bad(field: str, message: str) -> None:
        issues.append(Issue(index, field, message))

    if w.readings is not None:
        bad("readings", 'a reading cannot contain readings; send {"readings": [...]} alone')
    node_id = w.node_id
    if w.device_id is not None:
        if node_id is not None and node_id != w.device_id:
            bad("device_id", "device_id and node_id name different nodes")
        node_id = w.device_id
    if node_id is None:
        node_id = default_node_id
        if node_id is None:
            bad("node_id", "required: which node took this reading")
    elif IDENT_RE.fullmatch(node_id) is None:
        bad("node_id", "must be 1-64 characters of [a-z0-9._-], starting with a letter or digit")

    logexp = (
        w.counts_per_second is not None
        or w.counts_per_minute is not None
        or w.microsieverts_per_hour is not None
        or w.mode is not None
    )
    fleet = (
        w.cps is not None
        or w.cpm is not None
        or w.counts is not None
        or w.tube_type is not None
        or w.firmware_version is not None
    )
    generic = w.payload is not None
    shapes = logexp + fleet + generic
    payload: dict[str, Any] = {}
    sensor_type = w.sensor_type
    if shapes == 0:
        bad("payload", "required: a generic reading has a payload (or send a Geiger shape)")
    elif shapes > 1:
        bad("", "mixes the fields of several reading shapes (payload, LogExp Geiger, fleet Geiger)")
    elif generic:
        if sensor_type is None:
            bad("sensor_type", "required")
        elif IDENT_RE.fullmatch(sensor_type) is None:
            bad("sensor_type", "must be 1-64 characters of [a-z0-9._-]")
        else:
            payload = _check_payload(w.payload, sensor_type, bad)  # type: ignore[arg-type]
        if w.timestamp is None:
            bad(
                "timestamp",
                "required: ISO-8601 with a zone (a generic reading is stamped by its node)",
            )
    else:
        if sensor_type is not None and sensor_type != _GEIGER:
            bad("sensor_type", 'a Geiger-shaped reading has sensor_type "geiger"')
        sensor_type = _GEIGER
        payload = _geiger_logexp(w, bad) if logexp else _geiger_fleet(w, bad)

    sensor_id = w.sensor_id
    if sensor_id is None:
        sensor_id = sensor_type or ""
    elif SENSOR_ID_RE.fullmatch(sensor_id) is None:
        bad("sensor_id", "must be 1-128 characters of [A-Za-z0-9._@:/-]")
    if w.reading_id is not None and READING_ID_RE.fullmatch(w.reading_id) is None:
        bad("reading_id", "must be 1-128 printable ASCII characters without spaces")
    timestamp = w.timestamp
    if timestamp is not None:
        try:
            timestamp = timestamp.astimezone(UTC)
        except OverflowError:
            bad("timestamp", "out of range")
    if len(issues) != before:
        return None
    return Reading(node_id, sensor_id, sensor_type, payload, timestamp, w.reading_id)  # type: ignore[arg-type]


def _geiger_logexp(w: WireReading, bad: Any) -> dict[str, Any]:
    for name in ("counts_per_second", "counts_per_minute", "microsieverts_per_hour", "mode"):
        if getattr(w, name) is None:
            bad(name, "required in a LogExp Geiger reading")
    mode = (w.mode or "").upper()
    if w.mode is not None and mode not in _MODES:
        bad("mode", "must be SLOW, FAST or INST")
    return {
        "cps": w.counts_per_second,
        "cpm": w.counts_per_minute,
        "usv_per_hour": w.microsieverts_per_hour,
        "mode": mode,
    }


def _geiger_fleet(w: WireReading, bad: Any) -> dict[str, Any]:
    if w.cps is None:
        bad("cps", "required in a fleet Geiger reading")
    if w.cpm is None:
        bad("cpm", "required in a fleet Geiger reading")
    payload: dict[str, Any] = {"cps": w.cps, "cpm": w.cpm}
    if w.counts is not None:
        payload["counts"] = w.counts
    if w.tube_type is not None:
        payload["tube_type"] = w.tube_type
    if w.firmware_version is not None:
        payload["firmware_version"] = w.firmware_version
    return payload


def _check_payload(payload: dict[str, Any], sensor_type: str, bad: Any) -> dict[str, Any]:
    if not payload:
        bad("payload", "empty: a reading has at least one field")
        return payload
    if len(payload) > MAX_FIELDS:
        bad("payload", f"{len(payload)} fields; at most {MAX_FIELDS}")
        return payload
    vocab = VOCABULARY.get(sensor_type)
    for name, value in payload.items():
        if FIELD_NAME_RE.fullmatch(name) is None:
            bad(f"payload.{name[:64]}", "field names are lower-case snake case carrying the unit")
            continue
        if vocab is None:
            if isinstance(value, str) and len(value) > MAX_TEXT:
                bad(f"payload.{name}", f"text longer than {MAX_TEXT} characters")
            continue
        spec = vocab.get(name)
        if spec is None:
            hint = UNIT_HINTS.get(name)
            known = ", ".join(vocab)
            bad(
                f"payload.{name}",
                f"not a {sensor_type} field" + (f"; use {hint}" if hint else f" (known: {known})"),
            )
        elif spec.kind is FieldKind.NUMBER:
            if value.__class__ not in (int, float):
                bad(f"payload.{name}", f"must be a number ({spec.unit or 'no unit'})")
            elif spec.minimum is not None and value < spec.minimum:
                bad(f"payload.{name}", f"must be >= {spec.minimum:g}")
        elif not isinstance(value, str) or len(value) > MAX_TEXT:
            bad(f"payload.{name}", f"must be text of at most {MAX_TEXT} characters")
        elif name == "mode":
            mode = value.upper()
            if mode not in _MODES:
                bad("payload.mode", "must be SLOW, FAST or INST")
            elif mode != value:
                payload = {**payload, "mode": mode}
    return payload
