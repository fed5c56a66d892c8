"""Room: server/store (adapter). :class:`DeviceSqlStore`: the device registry on SQLite and PostgreSQL.

Imports ``beamwarden.server.device_records``, ``beamwarden.server.errors``, SQLAlchemy and the
drivers; never services. Built from the store's :class:`~sqlalchemy.ext.asyncio.AsyncEngine`
(``DeviceSqlStore(store.engine)``), it satisfies
:class:`beamwarden.server.services.devices.DeviceStore`.

An edit writes the device row and one ``device_attributes`` row per attribute that changed in
the same transaction, so the history never disagrees with the row. Devices heard by a gateway are
inserted with ``ON CONFLICT DO NOTHING`` (two bridges, or a bridge and an import, may race); an
operator's name, room or site is never touched by a sighting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from beamwarden.server.device_records import (
    AttributeChange,
    DeviceAttribute,
    DeviceChanges,
    DeviceRow,
    NewDevice,
    SeenDevice,
)
from beamwarden.server.errors import NotFound

from .adapter import EngineAdapter
from .schema import device_attributes, devices

__all__ = ["DeviceSqlStore"]

_D = devices.c
_H = device_attributes.c


def _device(row: Row[Any]) -> DeviceRow:
    return DeviceRow(
        device_id=row.device_id,
        created_us=row.created_us,
        updated_us=row.updated_us,
        vendor_id=row.vendor_id,
        model=row.model,
        name=row.name,
        room=row.room,
        site=row.site,
        claimed=bool(row.claimed),
        last_seen_us=row.last_seen_us,
        last_source=row.last_source,
    )


def _text(value: str | bool | None) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class DeviceSqlStore(EngineAdapter):
    """The ``DeviceStore`` port on one SQLAlchemy async engine (the readings store's)."""

    def _insert_ignore(self, rows: list[dict[str, Any]]) -> Any:
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        return (
            dialect.insert(devices)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["device_id"])
        )

    # -- reading -----------------------------------------------------------------------------

    async def get_device(self, key: str) -> DeviceRow | None:
        """The device whose device id, or else vendor id, is ``key``."""
        async with self._read() as conn:
            row = (await conn.execute(select(devices).where(_D.device_id == key))).first()
            if row is None:
                row = (
                    await conn.execute(
                        select(devices).where(_D.vendor_id == key).order_by(_D.id).limit(1)
                    )
                ).first()
        return None if row is None else _device(row)

    async def list_devices(
        self, limit: int, after: str | None, claimed: bool | None = None
    ) -> list[DeviceRow]:
        """Devices ordered by device id, strictly after ``after``; only (un)claimed ones if asked."""
        stmt = select(devices).order_by(_D.device_id).limit(limit)
        if after is not None:
            stmt = stmt.where(_D.device_id > after)
        if claimed is not None:
            stmt = stmt.where(_D.claimed == claimed)
        async with self._read() as conn:
            return [_device(r) for r in (await conn.execute(stmt)).all()]

    async def history(self, device_id: str, limit: int = 1000) -> list[AttributeChange]:
        """The device's attribute changes, oldest first (at most the ``limit`` newest)."""
        stmt = (
            select(_H.attribute, _H.value, _H.previous, _H.since_us, _H.actor)
            .select_from(device_attributes.join(devices, _D.id == _H.device_ref))
            .where(_D.device_id == device_id)
            .order_by(_H.id.desc())
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            AttributeChange(
                device_id,
                DeviceAttribute(r.attribute),
                r.value,
                r.previous,
                r.since_us,
                r.actor,
            )
            for r in reversed(rows)
        ]

    # -- writing -----------------------------------------------------------------------------

    async def add_seen(self, seen: Sequence[SeenDevice]) -> list[str]:
        """Create the devices not stored yet, unclaimed; return the ids that were new.

        A known device keeps everything an operator set; a vendor id or model it lacked is filled.
        """
        if not seen:
            return []
        wanted = {d.device_id: d for d in seen}
        async with self._write() as conn:
            known = {
                r.device_id: r
                for r in (
                    await conn.execute(
                        select(_D.device_id, _D.vendor_id, _D.model).where(
                            _D.device_id.in_(list(wanted))
                        )
                    )
                ).all()
            }
            fresh = [
                {
                    "device_id": d.device_id,
                    "vendor_id": d.vendor_id,
                    "model": d.model,
                    "claimed": False,
                    "created_us": d.seen_us,
                    "updated_us": d.seen_us,
                    "last_seen_us": d.seen_us,
                    "last_source": d.source[:128],
                }
                for d in wanted.values()
                if d.device_id not in known
            ]
            if fresh:
                await conn.execute(self._insert_ignore(fresh))
            for device_id, row in known.items():
                d = wanted[device_id]
                fill: dict[str, Any] = {}
                if row.vendor_id is None and d.vendor_id is not None:
                    fill["vendor_id"] = d.vendor_id
                if row.model is None and d.model is not None:
                    fill["model"] = d.model[:64]
                if fill:
                    await conn.execute(
                        update(devices).where(_D.device_id == device_id).values(**fill)
                    )
        return [str(r["device_id"]) for r in fresh]

    async def touch(self, seen: Sequence[tuple[str, int, str]]) -> None:
        """Record ``(device_id, seen_us, source)`` sightings (a later one never goes back)."""
        if not seen:
            return
        stmt = (
            update(devices)
            .where(
                _D.device_id == bindparam("d_id"),
                or_(_D.last_seen_us.is_(None), _D.last_seen_us < bindparam("d_us")),
            )
            .values(last_seen_us=bindparam("d_us"), last_source=bindparam("d_source"))
        )
        params = [{"d_id": d, "d_us": us, "d_source": src[:128]} for d, us, src in seen]
        async with self._write() as conn:
            await conn.execute(stmt, params)

    async def change(
        self,
        device_id: str,
        changes: DeviceChanges,
        actor: str | None,
        now_us: int,
        create: NewDevice | None = None,
    ) -> tuple[DeviceRow, list[AttributeChange]]:
        """Apply ``changes`` and record each attribute that changed, in one transaction.

        A device not stored is created from ``create`` (claimed or not as ``changes`` says), or
        :class:`NotFound` when ``create`` is ``None``. Returns the row and what changed.
        """
        async with self._write() as conn:
            select_row = select(devices).where(_D.device_id == device_id)
            if self.dialect == "postgresql":
                select_row = select_row.with_for_update()
            row = (await conn.execute(select_row)).first()
            if row is None:
                if create is None:
                    raise NotFound(f"no device {device_id!r}", code="unknown_device")
                await conn.execute(
                    self._insert_ignore(
                        [
                            {
                                "device_id": device_id,
                                "vendor_id": create.vendor_id,
                                "model": create.model,
                                "claimed": False,
                                "created_us": now_us,
                                "updated_us": now_us,
                            }
                        ]
                    )
                )
                row = (await conn.execute(select_row)).one()
            elif create is not None:
                fill = {
                    k: v
                    for k, v in (("vendor_id", create.vendor_id), ("model", create.model))
                    if v is not None and getattr(row, k) is None
                }
                if fill:
                    await conn.execute(update(devices).where(_D.id == row.id).values(**fill))
            values: dict[str, Any] = {}
            history: list[dict[str, Any]] = []
            done: list[AttributeChange] = []
            for attribute, wanted in changes.wanted().items():
                before = getattr(row, attribute.value)
                after: str | bool | None = (
                    bool(wanted) if attribute is DeviceAttribute.CLAIMED else _text(wanted)
                )
                if attribute is DeviceAttribute.CLAIMED:
                    before = bool(before)
                if before == after:
                    continue
                values[attribute.value] = after
                history.append(
                    {
                        "device_ref": row.id,
                        "attribute": attribute.value,
                        "value": _text(after),
                        "previous": _text(before),
                        "since_us": now_us,
                        "actor": actor,
                    }
                )
                done.append(
                    AttributeChange(
                        device_id, attribute, _text(after), _text(before), now_us, actor
                    )
                )
            if values:
                values["updated_us"] = now_us
                await conn.execute(update(devices).where(_D.id == row.id).values(**values))
                await conn.execute(device_attributes.insert(), history)
            final = (await conn.execute(select_row)).one()
        return _device(final), done

    async def count_devices(self, claimed: bool | None = None) -> int:
        stmt = select(func.count()).select_from(devices)
        if claimed is not None:
            stmt = stmt.where(_D.claimed == claimed)
        async with self._read() as conn:
            return int((await conn.execute(stmt)).scalar_one())
