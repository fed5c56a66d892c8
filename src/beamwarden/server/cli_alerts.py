"""Room: server (wiring). The CLI of issue 7: ``beamwarden alerts``, ``checkins``, ``geiger``,
``retention``.

Mounted by :mod:`beamwarden.server.cli` (``app.add_typer``). Like the rest of the CLI it opens the
database, builds the services (here with the alert adapters, :func:`app.build_alerting`), does
its work and closes. ``alerts check FILE`` needs no database. A slug (a secret) is printed alone
on stdout; what a person reads goes to stderr.
"""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from beamwarden.fleet.alerts import RuleError, parse_rules
from beamwarden.server.api.alerts import summarise_geiger
from beamwarden.server.app import build_alerting, build_retention
from beamwarden.server.services.alerts import FiringAlert
from beamwarden.server.services.queries import parse_bucket
from beamwarden.server.services.stream_retention import StreamStatus

if TYPE_CHECKING:
    from types import ModuleType

alerts_app = typer.Typer(help="Alert rules and what is firing.", no_args_is_help=True)
checkins_app = typer.Typer(help="Check-ins of scheduled jobs.", no_args_is_help=True)
geiger_app = typer.Typer(help="Geiger analytics over stored readings.", no_args_is_help=True)


def _cli() -> ModuleType:
    """The main CLI module (imported late: it imports this one to mount it)."""
    from beamwarden.server import cli

    return cli


@alerts_app.command("check")
def alerts_check(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="A TOML file of rules.", exists=True, dir_okay=False)
    ],
) -> None:
    """Validate a rules file; name the rule and key at fault (a ``notify`` channel must be one
    of the server's ``notify_urls``: pass the server's ``--config``)."""
    cli = _cli()
    channels = cli.settings_of(ctx).notify_urls
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
        ruleset = parse_rules(doc, channels)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RuleError) as exc:
        cli.fail(f"{file}: {exc}")
    table = cli.new_table("rule", "kind", "severity", "for", "repeat", "notify")
    for rule in ruleset.rules:
        repeat = "" if rule.repeat is None else f"{rule.repeat:g} s"
        notify = ", ".join(rule.notify) or "(all)"
        table.add_row(rule.name, rule.kind, rule.severity, f"{rule.for_:g} s", repeat, notify)
    cli.show(table)
    cli.stderr.print(
        f"{file}: {len(ruleset.rules)} rules, {len(ruleset.silences)} silences, "
        f"{len(ruleset.maintenance)} maintenance windows: valid"
    )


@alerts_app.command("list")
def alerts_list(ctx: typer.Context) -> None:
    """The alerts firing now."""
    cli = _cli()
    settings = cli.settings_of(ctx)

    async def work() -> list[FiringAlert]:
        async with cli.open_services(settings) as services:
            alerting = build_alerting(settings, services, services.store, services.clock)
            return await alerting.alerts.firing()

    firing = cli.run(work())
    table = cli.new_table("rule", "subject", "severity", "since", "value", "notified")
    for a in firing:
        since = "" if a.since is None else cli.iso(a.since)
        value = "" if a.value is None else f"{a.value:g}"
        table.add_row(
            a.rule, a.subject, a.severity, since, value, "no (silenced)" if a.silenced else "yes"
        )
    cli.show(table)


@checkins_app.command("add")
def checkins_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the job is, e.g. nightly-backup.")],
    every: Annotated[str | None, typer.Option(help="An interval: 1d, 6h, 90m.")] = None,
    cron: Annotated[str | None, typer.Option(help="Five cron fields, UTC: '30 2 * * *'.")] = None,
    grace: Annotated[str, typer.Option(help="Lateness allowed before alerting.")] = "5m",
) -> None:
    """Add a check and print its slug (once): the job POSTs to /api/checkins/<slug>."""
    cli = _cli()
    settings = cli.settings_of(ctx)

    async def work() -> str:
        async with cli.open_services(settings) as services:
            alerting = build_alerting(settings, services, services.store, services.clock)
            made = await alerting.alerts.checkins.create(name, every=every, cron=cron, grace=grace)
            return made.slug

    slug = cli.run(work())
    typer.echo(slug)
    cli.stderr.print(
        f"check-in {name} added. Its slug is shown this once; the job reports with "
        f"`curl -fsS -X POST <server>/api/checkins/<slug>` (append /fail on failure)."
    )


@checkins_app.command("list")
def checkins_list(ctx: typer.Context) -> None:
    """The checks, their schedule and whether they alert."""
    cli = _cli()
    settings = cli.settings_of(ctx)

    async def work() -> list[tuple[Any, ...]]:
        async with cli.open_services(settings) as services:
            alerting = build_alerting(settings, services, services.store, services.clock)
            now = services.clock.now()
            rows = []
            for check in await alerting.alerts.checkins.list():
                due, alerting_now, why = alerting.alerts.checkins.status(check, now)
                rows.append((check, due, alerting_now, why))
            return rows

    table = cli.new_table("name", "schedule", "grace", "last ping", "next due", "alerting")
    for check, due, alerting_now, why in cli.run(work()):
        schedule = f"every {check.every_s:g} s" if check.every_s is not None else check.cron
        last = (
            ""
            if check.last_ping_us is None
            else f"{cli.when(check.last_ping_us)} {check.last_status}"
        )
        table.add_row(
            check.name,
            schedule,
            f"{check.grace_s:g} s",
            last,
            "" if due is None else cli.iso(due),
            why if alerting_now else "no",
        )
    cli.show(table)


@geiger_app.command("summary")
def geiger_summary(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="The node id.")],
    sensor: Annotated[str, typer.Option(help="The sensor id.")] = "geiger",
    window: Annotated[str, typer.Option(help="The window ending now: 60s, 5m, 1h.")] = "60s",
    tube: Annotated[str | None, typer.Option(help="SBM-20, SI-29BG, J305, M4011 …")] = None,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.9999)] = 0.95,
    dead_time: Annotated[float | None, typer.Option(help="Tube dead time in seconds.")] = None,
) -> None:
    """CPS statistics, CPM, dose rate and the rate's exact interval, as JSON."""
    cli = _cli()
    cli.check_node_id(node)
    settings = cli.settings_of(ctx)
    try:
        span = timedelta(microseconds=parse_bucket(window))
    except Exception as exc:
        cli.fail(str(getattr(exc, "message", exc)))

    async def work() -> dict[str, Any]:
        async with cli.open_services(settings) as services:
            return await summarise_geiger(
                services,
                node,
                sensor,
                span,
                services.clock.now(),
                tube=tube,
                confidence=confidence,
                dead_time_s=dead_time,
            )

    typer.echo(json.dumps(cli.run(work()), indent=2))


__all__ = ["alerts_app", "checkins_app", "geiger_app"]


# --- retention ---------------------------------------------------------------------------------

retention_app = typer.Typer(
    help="Per-stream retention of readings and rollups.", no_args_is_help=True
)


@retention_app.command("show")
def retention_show(
    ctx: typer.Context,
    node: Annotated[str | None, typer.Option(help="List this node's streams.")] = None,
    sensor: Annotated[
        str | None, typer.Option(help="List the streams with this sensor id.")
    ] = None,
) -> None:
    """The retention policy in force; with --node or --sensor, those streams' retention and what
    has been forgotten."""
    cli = _cli()
    settings = cli.settings_of(ctx)

    async def work() -> tuple[Any, str, list[StreamStatus]]:
        async with cli.open_services(settings) as services:
            retention = build_retention(settings, services, services.store)
            policy, source = await retention.current()
            streams = (
                [] if node is None and sensor is None else await retention.streams(node, sensor)
            )
            return policy, source, streams

    policy, source, streams = cli.run(work())
    cli.stderr.print(
        f"retention ({source}): raw {_days(policy.raw_days)}, 1-minute rollups "
        f"{_days(policy.minute_days)}, 1-hour rollups {_days(policy.hour_days)}"
    )
    table = cli.new_table("override", "matches", "raw", "minutes", "hours")
    for i, o in enumerate(policy.overrides):
        matches = ", ".join(
            f"{key}={'|'.join(values)}"
            for key, values in (
                ("node", o.node),
                ("sensor_type", o.sensor_type),
                ("sensor_id", o.sensor_id),
            )
            if values
        )
        table.add_row(
            str(i), matches, *(_days(d) for d in (o.raw_days, o.minute_days, o.hour_days))
        )
    if policy.overrides:
        cli.show(table)
    if streams:
        table = cli.new_table(
            "node", "sensor", "type", "raw", "minutes", "hours", "raw gone before"
        )
        for s in streams:
            gone = "" if s.raw_gone_before is None else cli.iso(s.raw_gone_before)
            r = s.retention
            table.add_row(
                s.stream.node_id or "(fleet-wide)",
                s.stream.sensor_id,
                s.stream.sensor_type,
                _days(r.raw_days),
                _days(r.minute_days),
                _days(r.hour_days),
                gone,
            )
        cli.show(table)


@retention_app.command("set")
def retention_set(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="A TOML file: raw_days, minute_days, hour_days and [[overrides]].",
            exists=True,
            dir_okay=False,
        ),
    ],
) -> None:
    """Replace the retention policy (like PUT /api/retention); keys the file leaves out take the
    settings' values (pass the server's --config)."""
    cli = _cli()
    settings = cli.settings_of(ctx)
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        cli.fail(f"{file}: {exc}")

    async def work() -> int:
        async with cli.open_services(settings) as services:
            retention = build_retention(settings, services, services.store)
            policy = await retention.replace(doc, "cli")
            return len(policy.overrides)

    overrides = cli.run(work())
    cli.stderr.print(f"retention policy replaced from {file} ({overrides} overrides)")


def _days(days: float | None) -> str:
    if days is None:
        return ""
    return "kept" if days == 0 else f"{days:g} d"
