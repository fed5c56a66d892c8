"""Room: server/services. The device registry: stable ids, names, rooms and sites with history.

A device is keyed by its fleet-wide sensor id (``ble:A4C138123456``, :mod:`beamwarden.sensors.ids`),
which is also the key of its series ``(sensor_id, field)``. Names, rooms and sites are attributes
looked up when data is shown, never written into readings, so:

* a rename never splits a series, and takes effect at once (nothing caches a name);
* a device heard before anyone named it is created **unclaimed** and its readings are kept;
* an import only adds and updates: a device missing from a list, an empty list, or a list that
  cannot be read changes nothing (an upstream outage never wipes the mapping).

Device lists are read by :func:`parse_device_list`: JSON (an array, or an object holding one under
``devices``/``data``/``items``; govee2mqtt's ``/api/devices`` and Govee's cloud list both fit) or
CSV with a header row. Keys: ``id`` (or ``device``, ``device_id``, ``mac``; a MAC, Govee's
8-byte id, ``ble:…`` or ``govee:…``), ``name`` (or ``deviceName``), ``room``, ``site``,
``model`` (or ``sku``).

What the activity log records: ``device_discovered`` (first heard, unclaimed), ``device_changed``
(an edit, with before and after), ``devices_imported`` (an import's summary).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from beamwarden.sensors import DecodeError, ble_device_id, govee_device_ids
from beamwarden.server.device_records import (
    AttributeChange,
    DeviceChanges,
    DeviceRow,
    NewDevice,
    SeenDevice,
)
from beamwarden.server.errors import InvalidRequest, NotFound
from beamwarden.server.records import to_us
from beamwarden.server.services.activity import Activity, ActivityLog
from beamwarden.server.services.clock import Clock

#: most characters of a name, room or site
MAX_ATTRIBUTE = 128
#: most devices one import takes
MAX_IMPORT = 10_000
#: most device ids remembered as known (the bridge's cache; cleared when full)
_KNOWN_MAX = 100_000
_ID_KEYS = ("id", "device_id", "device", "mac", "address")
_NAME_KEYS = ("name", "deviceName", "device_name", "label")
_MODEL_KEYS = ("model", "sku", "model_id")
_LIST_KEYS = ("devices", "data", "items")


class DeviceStore(Protocol):
    """What the registry needs from an adapter (``server/store/devices.py``).

    Methods raise :class:`~beamwarden.server.errors.StoreUnavailable` when the database cannot be
    reached.
    """

    async def get_device(self, key: str) -> DeviceRow | None:
        """The device whose device id, or else vendor id, is ``key``."""
        ...

    async def list_devices(
        self, limit: int, after: str | None, claimed: bool | None = None
    ) -> list[DeviceRow]:
        """Devices ordered by device id, strictly after ``after``."""
        ...

    async def history(self, device_id: str, limit: int = 1000) -> list[AttributeChange]:
        """Attribute changes, oldest first."""
        ...

    async def add_seen(self, seen: Sequence[SeenDevice]) -> list[str]:
        """Create unknown devices unclaimed; return the new ids. Never touches operator fields."""
        ...

    async def touch(self, seen: Sequence[tuple[str, int, str]]) -> None:
        """Record ``(device_id, seen_us, source)`` sightings."""
        ...

    async def change(
        self,
        device_id: str,
        changes: DeviceChanges,
        actor: str | None,
        now_us: int,
        create: NewDevice | None = None,
    ) -> tuple[DeviceRow, list[AttributeChange]]:
        """Apply ``changes`` with history in one transaction (create from ``create`` if absent,
        else NotFound)."""
        ...


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """One line of a device list: a device id and what to set (``None``: leave as it is)."""

    device_id: str
    vendor_id: str | None = None
    model: str | None = None
    name: str | None = None
    room: str | None = None
    site: str | None = None


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A device with its history (for one device's page)."""

    row: DeviceRow
    history: list[AttributeChange]


# --- ids and lists (pure) ----------------------------------------------------------------------


def device_ids(text: str) -> tuple[str, str | None]:
    """A device named any way a gateway or a list names it → ``(ble:<MAC>, vendor id or None)``.

    Accepts ``ble:<MAC>``, ``govee:<8 bytes>``, a MAC (``A4:C1:38:12:34:56``) or Govee's 8-byte
    id (``1F:80:A4:C1:38:12:34:56``). Raises :class:`InvalidRequest` otherwise.
    """
    value = text.strip()
    lower = value.lower()
    try:
        if lower.startswith("ble:"):
            return ble_device_id(value[4:]), None
        if lower.startswith("govee:"):
            return govee_device_ids(value[6:])
        try:
            return ble_device_id(value), None
        except DecodeError:
            return govee_device_ids(value)
    except DecodeError:
        raise InvalidRequest(
            f"{value[:60]!r} is not a device id (a MAC, Govee's 8-byte id, ble:… or govee:…)",
            code="invalid_device_id",
        ) from None


def _checked_text(value: Any, what: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}: {what} is text", code="invalid_device_list")
    value = " ".join(value.split())
    if len(value) > MAX_ATTRIBUTE:
        raise InvalidRequest(
            f"{where}: {what} is longer than {MAX_ATTRIBUTE} characters",
            code="invalid_device_list",
        )
    return value or None  # an empty cell sets nothing


def _first(item: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if item.get(key) not in (None, ""):
            return item[key]
    return None


def entry_of(item: dict[str, Any], where: str) -> DeviceEntry:
    """One device list item (a JSON object or a CSV row) → a :class:`DeviceEntry`."""
    raw_id = _first(item, _ID_KEYS)
    if not isinstance(raw_id, str):
        raise InvalidRequest(
            f"{where}: no device id (one of {', '.join(_ID_KEYS)})", code="invalid_device_list"
        )
    try:
        device_id, vendor_id = device_ids(raw_id)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc.message}", code="invalid_device_list") from None
    return DeviceEntry(
        device_id,
        vendor_id,
        model=_checked_text(_first(item, _MODEL_KEYS), "model", where),
        name=_checked_text(_first(item, _NAME_KEYS), "name", where),
        room=_checked_text(item.get("room"), "room", where),
        site=_checked_text(item.get("site"), "site", where),
    )


def parse_device_list(data: bytes, fmt: Literal["json", "csv"]) -> list[DeviceEntry]:
    """A device list file → its entries, all or nothing (:class:`InvalidRequest` names the item)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequest("the device list is not UTF-8", code="invalid_device_list") from None
    items: list[Any]
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        try:
            items = list(reader)
        except csv.Error as exc:
            raise InvalidRequest(
                f"the CSV cannot be read: {exc}", code="invalid_device_list"
            ) from None
        start = 2  # line numbers: the header is line 1
    else:
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            raise InvalidRequest(
                "the device list is not JSON", code="invalid_device_list"
            ) from None
        if isinstance(doc, dict):
            doc = next((doc[k] for k in _LIST_KEYS if isinstance(doc.get(k), list)), None)
        if not isinstance(doc, list):
            raise InvalidRequest(
                'a JSON device list is an array, or an object with "devices": [...]',
                code="invalid_device_list",
            )
        items = doc
        start = 0
    if len(items) > MAX_IMPORT:
        raise InvalidRequest(
            f"{len(items)} devices; one import takes at most {MAX_IMPORT}",
            code="invalid_device_list",
        )
    entries: list[DeviceEntry] = []
    for n, item in enumerate(items, start):
        where = f"line {n}" if fmt == "csv" else f"item {n}"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where}: a device is an object", code="invalid_device_list")
        entries.append(entry_of(item, where))
    return entries


# --- the service -------------------------------------------------------------------------------


class DeviceService:
    """The registry: what operators edit and import, and what the bridge reports it heard."""

    def __init__(self, store: DeviceStore, activity: ActivityLog, clock: Clock):
        self._store = store
        self._activity = activity
        self._clock = clock
        self._known: set[str] = set()
        #: device id → (last seen, source), written by :meth:`flush_seen`
        self._seen: dict[str, tuple[int, str]] = {}

    # --- reading -------------------------------------------------------------------------------

    async def get(self, key: str) -> DeviceView:
        """The device named ``key`` (device id, vendor id, or any spelling of its MAC)."""
        row = await self._store.get_device(key)
        if row is None:
            try:
                device_id, vendor_id = device_ids(key)
            except InvalidRequest:
                device_id, vendor_id = key, None
            row = await self._store.get_device(device_id)
            if row is None and vendor_id is not None:
                row = await self._store.get_device(vendor_id)
        if row is None:
            raise NotFound(f"no device {key!r}", code="unknown_device")
        return DeviceView(row, await self._store.history(row.device_id))

    async def list_devices(
        self, limit: int, after: str | None, claimed: bool | None = None
    ) -> list[DeviceRow]:
        return await self._store.list_devices(limit, after, claimed)

    # --- operators -----------------------------------------------------------------------------

    async def edit(self, key: str, changes: DeviceChanges, actor: str) -> DeviceView:
        """Rename, move, claim or unclaim a device; every change is kept in its history."""
        _check_changes(changes)
        device_id = (await self.get(key)).row.device_id
        row, done = await self._store.change(device_id, changes, actor, to_us(self._clock.now()))
        if done:
            await self._activity.record(
                "device_changed",
                f"device {device_id}: "
                + ", ".join(f"{c.attribute.value} {c.previous!r} → {c.value!r}" for c in done),
                actor=actor,
                data={
                    "device_id": device_id,
                    "changes": {
                        c.attribute.value: {"before": c.previous, "after": c.value} for c in done
                    },
                },
            )
        return DeviceView(row, await self._store.history(device_id))

    async def import_entries(
        self, entries: Sequence[DeviceEntry], actor: str, *, claim: bool = True, source: str = ""
    ) -> ImportOutcome:
        """Create or update the listed devices (claimed, unless ``claim`` is false).

        Never removes anything: a device missing from the list keeps its mapping; an empty list
        is refused (it is far more often an upstream failure than an intended wipe).
        """
        if not entries:
            raise InvalidRequest(
                "the device list is empty; nothing was changed", code="empty_device_list"
            )
        now_us = to_us(self._clock.now())
        created = updated = unchanged = 0
        for entry in entries:
            existed = await self._store.get_device(entry.device_id) is not None
            changes = DeviceChanges(
                name=entry.name, room=entry.room, site=entry.site, claimed=True if claim else None
            )
            _, done = await self._store.change(
                entry.device_id,
                changes,
                actor,
                now_us,
                create=NewDevice(entry.device_id, entry.vendor_id, entry.model),
            )
            self._known.add(entry.device_id)
            if not existed:
                created += 1
            elif done:
                updated += 1
            else:
                unchanged += 1
        outcome = ImportOutcome(created, updated, unchanged)
        await self._activity.record(
            "devices_imported",
            f"device list{f' from {source}' if source else ''}: {created} new, {updated} updated, "
            f"{unchanged} unchanged",
            actor=actor,
            data={"created": created, "updated": updated, "unchanged": unchanged, "source": source},
        )
        return outcome

    # --- the bridge ----------------------------------------------------------------------------

    async def observe(self, seen: Sequence[SeenDevice]) -> list[str]:
        """Devices a gateway heard: unknown ones are created unclaimed (and logged once); every
        sighting is remembered for :meth:`flush_seen`. Returns the ids that were new."""
        for device in seen:
            last = self._seen.get(device.device_id)
            if last is None or device.seen_us > last[0]:
                self._seen[device.device_id] = (device.seen_us, device.source)
        unknown = [d for d in seen if d.device_id not in self._known]
        if not unknown:
            return []
        created = await self._store.add_seen(unknown)
        if len(self._known) + len(unknown) > _KNOWN_MAX:
            self._known.clear()
        self._known.update(d.device_id for d in unknown)
        by_id = {d.device_id: d for d in unknown}
        await self._activity.record_many(
            [
                Activity(
                    "device_discovered",
                    f"device {device_id} heard by {d.source}; unclaimed until an operator claims it",
                    actor=f"bridge:{d.source}",
                    data={"device_id": device_id, "vendor_id": d.vendor_id, "model": d.model},
                )
                for device_id in created
                for d in (by_id[device_id],)
            ]
        )
        return created

    async def flush_seen(self) -> int:
        """Write the sightings remembered since the last flush; returns how many devices."""
        if not self._seen:
            return 0
        seen, self._seen = self._seen, {}
        try:
            await self._store.touch([(d, us, src) for d, (us, src) in seen.items()])
        except Exception:
            for d, (us, src) in seen.items():  # keep them for the next flush
                last = self._seen.get(d)
                if last is None or us > last[0]:
                    self._seen[d] = (us, src)
            raise
        return len(seen)


def _check_changes(changes: DeviceChanges) -> None:
    for name in ("name", "room", "site"):
        value = getattr(changes, name)
        if value is not None and len(value) > MAX_ATTRIBUTE:
            raise InvalidRequest(
                f"{name} is longer than {MAX_ATTRIBUTE} characters", code="invalid_device_change"
            )
    if not changes.wanted():
        raise InvalidRequest(
            "nothing to change: give name, room, site or claimed", code="invalid_device_change"
        )
