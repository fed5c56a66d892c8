"""Room: server (wiring). ``beamwarden devices list|show|rename|claim|import`` and ``beamwarden bridge``.

Mounted by :mod:`beamwarden.server.cli` (``app.add_typer(devices_app, name="devices")`` and
``app.command("bridge")(bridge)``). Like every command there, each opens the database, builds the
services (with the device registry on the store's engine), does its work and closes the store; an
error the server raises is one line on stderr and exit code 1.

``devices import FILE`` reads a JSON or CSV device list (:func:`~beamwarden.server.services.devices.parse_device_list`;
``-`` is stdin): govee2mqtt's ``/api/devices`` answer saved to a file works as it is. An import
adds and updates, never removes; an empty or unreadable list changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Annotated, Literal

import typer
import uvloop
from rich.markup import escape

from beamwarden.server.bridge import BridgeConfig, BridgeConfigError, MqttBridge, bridge_config
from beamwarden.server.device_records import DeviceChanges, DeviceRow
from beamwarden.server.errors import ServerError
from beamwarden.server.logs import configure_logging
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.presence import open_presence
from beamwarden.server.services.clock import SystemClock
from beamwarden.server.services.container import Services
from beamwarden.server.services.devices import DeviceService, parse_device_list
from beamwarden.server.settings import ServerSettings
from beamwarden.server.store import open_store, upgrade
from beamwarden.server.store.devices import DeviceSqlStore

devices_app = typer.Typer(
    help="The device registry: sensors heard fleet-wide (ble:<MAC>).", no_args_is_help=True
)

#: the actor the activity log names for these commands
ACTOR = "cli"


def _cli() -> ModuleType:
    """The main CLI module (imported late: it imports this one to mount it)."""
    from beamwarden.server import cli

    return cli


@contextlib.asynccontextmanager
async def open_registry(settings: ServerSettings) -> AsyncIterator[Services]:
    """Migrate, open the store, build the services with the device registry; close at the end."""
    cli = _cli()
    try:
        if settings.migrate_on_start:
            await asyncio.to_thread(upgrade, settings.database_url)
    except Exception as exc:  # down, unreachable, or a wrong URL
        cli.fail(f"cannot open the database {cli.safe_url(settings.database_url)}: {exc}")
    store = await open_store(cli.store_config(settings))
    presence = open_presence(
        settings.presence_url, settings.presence_prefix, settings.presence_timeout_s
    )
    try:
        yield Services.build(
            store,
            SystemClock(),
            ServerMetrics(),
            cli.service_config(settings),
            presence,
            device_store=DeviceSqlStore(store.engine, settings.db_query_timeout_s),
        )
    finally:
        await presence.close()
        await store.close()


def _registry(services: Services) -> DeviceService:
    assert services.devices is not None  # open_registry always builds it
    return services.devices


def _row_cells(row: DeviceRow) -> list[str]:
    when = _cli().when
    return [
        row.device_id,
        row.name or "",
        row.room or "",
        row.site or "",
        "yes" if row.claimed else "no",
        row.model or "",
        when(row.last_seen_us),
        row.last_source or "",
    ]


@devices_app.command("list")
def devices_list(
    ctx: typer.Context,
    unclaimed: Annotated[bool, typer.Option(help="Only devices nobody claimed yet.")] = False,
) -> None:
    """Every device: id, name, room, site, claimed, model, last heard and by which gateway."""
    cli = _cli()
    settings = cli.settings_of(ctx)

    async def work() -> list[DeviceRow]:
        async with open_registry(settings) as services:
            rows: list[DeviceRow] = []
            after: str | None = None
            while True:
                page = await _registry(services).list_devices(
                    1000, after, False if unclaimed else None
                )
                rows += page
                if len(page) < 1000:
                    return rows
                after = page[-1].device_id

    rows = cli.run(work())
    table = cli.new_table(
        "device", "name", "room", "site", "claimed", "model", "last seen", "source"
    )
    for row in rows:
        table.add_row(*(escape(c) for c in _row_cells(row)))
    cli.show(table)


@devices_app.command("show")
def devices_show(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="ble:<MAC>, govee:<id>, or the MAC.")],
) -> None:
    """One device and the history of its name, room, site and claim."""
    cli = _cli()
    settings = cli.settings_of(ctx)

    async def work() -> None:
        async with open_registry(settings) as services:
            view = await _registry(services).get(device)
        row = view.row
        for label, value in zip(
            ("device", "name", "room", "site", "claimed", "model", "last seen", "source"),
            _row_cells(row),
            strict=True,
        ):
            typer.echo(f"{label:>10}: {value}")
        typer.echo(f"{'vendor id':>10}: {row.vendor_id or ''}")
        for change in view.history:
            typer.echo(
                f"  {cli.when(change.since_us)}  {change.attribute.value}: "
                f"{change.previous!r} → {change.value!r}  ({change.actor or '?'})"
            )

    cli.run(work())


def _edit(ctx: typer.Context, device: str, changes: DeviceChanges) -> None:
    cli = _cli()
    settings = cli.settings_of(ctx)

    async def work() -> DeviceRow:
        async with open_registry(settings) as services:
            return (await _registry(services).edit(device, changes, ACTOR)).row

    row = cli.run(work())
    cli.stderr.print(
        f"device {escape(row.device_id)}: name {escape(repr(row.name))}, room "
        f"{escape(repr(row.room))}, site {escape(repr(row.site))}, "
        f"{'claimed' if row.claimed else 'unclaimed'}"
    )


@devices_app.command("rename")
def devices_rename(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="ble:<MAC>, govee:<id>, or the MAC.")],
    name: Annotated[str, typer.Argument(help="The new name (its series stays the same).")],
) -> None:
    """Rename a device; the old name stays in its history and its series is not split."""
    _edit(ctx, device, DeviceChanges(name=name))


@devices_app.command("claim")
def devices_claim(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="ble:<MAC>, govee:<id>, or the MAC.")],
    name: Annotated[str | None, typer.Option(help="Name it too.")] = None,
    room: Annotated[str | None, typer.Option(help="Its room ('' clears).")] = None,
    site: Annotated[str | None, typer.Option(help="Its site ('' clears).")] = None,
    release: Annotated[bool, typer.Option("--release", help="Unclaim it instead.")] = False,
) -> None:
    """Claim a device heard by a gateway (optionally naming it, placing it in a room and site)."""
    _edit(ctx, device, DeviceChanges(name=name, room=room, site=site, claimed=not release))


@devices_app.command("import")
def devices_import(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A JSON or CSV device list; '-' reads stdin.")],
    fmt: Annotated[
        Literal["auto", "json", "csv"] | None,
        typer.Option("--format", help="auto: by the file's extension (JSON for stdin)."),
    ] = None,
    claim: Annotated[
        bool, typer.Option(help="Mark the listed devices claimed (--no-claim: only name them).")
    ] = True,
) -> None:
    """Import names, rooms and sites (govee2mqtt's device list, or your own JSON/CSV).

    Adds and updates only: a device missing from the list keeps its mapping, and an empty or
    unreadable list changes nothing.
    """
    cli = _cli()
    settings = cli.settings_of(ctx)
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        cli.fail(f"cannot read {file}: {exc.strerror or exc}")
    chosen = fmt or "auto"
    kind: Literal["json", "csv"] = (
        chosen
        if chosen != "auto"
        else ("csv" if file != "-" and file.lower().endswith(".csv") else "json")
    )

    async def work() -> str:
        entries = parse_device_list(data, kind)  # refused before the database is opened
        async with open_registry(settings) as services:
            outcome = await _registry(services).import_entries(
                entries, ACTOR, claim=claim, source=file
            )
        return (
            f"{len(entries)} devices in {file}: {outcome.created} new, {outcome.updated} updated, "
            f"{outcome.unchanged} unchanged; nothing removed"
        )

    cli.stderr.print(escape(cli.run(work())))


def bridge(ctx: typer.Context) -> None:
    """Run the MQTT bridge on its own (settings bridge_*; Ctrl-C stops it).

    It ingests only while it holds the lease bridge:<host:port>: with presence_url on Redis, a
    server's bridge and this one for the same broker take turns, never both.
    """
    cli = _cli()
    settings = cli.settings_of(ctx)
    configure_logging(settings.log_level, settings.log_format)
    try:
        config = bridge_config(settings)
    except BridgeConfigError as exc:
        cli.fail(f"bridge_mqtt_url: {exc}")
    if config is None:
        cli.fail("no broker: set bridge_mqtt_url (BEAMWARDEN_BRIDGE_MQTT_URL=mqtt://host:1883)")
        return
    broker: BridgeConfig = config

    async def work() -> None:
        async with open_registry(settings) as services:
            services.committer.start()
            runner = MqttBridge(services, broker)
            if settings.gc_freeze:  # as serve does: collections then walk only what runs makes
                gc.collect()
                gc.freeze()
            task = asyncio.create_task(runner.run(), name="mqtt-bridge")
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, task.cancel)
            cli.stderr.print(
                f"bridging {escape(broker.broker)} ({escape(', '.join(broker.topics))}) "
                f"as node {escape(broker.name)}; Ctrl-C stops"
            )
            try:
                await task
            except asyncio.CancelledError:
                pass
            finally:
                await services.committer.stop()
            stats = runner.relay.stats
            cli.stderr.print(
                f"stopped: {stats.messages} messages, {stats.stored} readings stored, "
                f"{stats.duplicates} duplicates, {stats.retained} retained skipped"
            )

    try:
        uvloop.run(work())  # the loop serve runs on
    except ServerError as exc:
        cli.fail(exc.message)
