"""Room: server (wiring). The ``beamwarden`` command line: serve, migrate, nodes, tokens, readings, demo.

Like ``app.py`` it may construct concrete adapters: a command that needs the database migrates it,
opens the store, builds the services, does its work and closes the store. Settings come from
``--config`` (TOML), then ``BEAMWARDEN_*`` variables (``settings.load_settings``).

Output: a secret (a new token) is printed alone on stdout, so ``TOKEN=$(beamwarden nodes add …)``
works; what a person reads about it goes to stderr. An error the server raises (unknown node,
existing node, database unavailable, …) is one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any, NoReturn, TypeVar

import typer
import uvicorn
import uvloop
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from sqlalchemy.engine import make_url

from beamwarden import __version__
from beamwarden.obs.cli import app as obs_app
from beamwarden.protocol import NodeStatus, Scope, is_ident
from beamwarden.protocol.vocabulary import FIELD_NAME_RE
from beamwarden.server.app import create_app, service_config, store_config
from beamwarden.server.cli_alerts import alerts_app, checkins_app, geiger_app, retention_app
from beamwarden.server.cli_devices import bridge, devices_app
from beamwarden.server.demo import runner
from beamwarden.server.demo.agents import Cycle
from beamwarden.server.errors import ServerError, StoreUnavailable
from beamwarden.server.logs import configure_logging
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.presence import open_presence
from beamwarden.server.records import (
    FLAG_SERVER_TIMESTAMP,
    FLAG_TIMESTAMP_SUSPECT,
    ReadingFilter,
    ReadingRow,
    TokenRow,
    from_us,
    to_us,
)
from beamwarden.server.services.clock import SystemClock
from beamwarden.server.services.container import Services
from beamwarden.server.services.registry import NodeView
from beamwarden.server.services.users import UserService
from beamwarden.server.settings import ServerSettings, load_settings
from beamwarden.server.store import open_store, upgrade
from beamwarden.server.store.users import UserSqlStore
from beamwarden.server.user_records import Role, UserRow

T = TypeVar("T")

#: the database ``beamwarden demo`` uses unless told otherwise (never the server's own)
DEMO_DATABASE_URL = "sqlite:///./data/demo.db"
#: where ``beamwarden demo`` keeps its agents' configs, queues and logs
DEMO_AGENTS_DIR = Path("data/demo-agents")
#: the fixed columns of ``readings export``, before one column per payload field
EXPORT_COLUMNS = (
    "node_id",
    "sensor_id",
    "sensor_type",
    "timestamp",
    "received_at",
    "reading_id",
    "source",
    "timestamp_source",
    "timestamp_suspect",
)
_STATUS_STYLE = {
    NodeStatus.ONLINE: "green",
    NodeStatus.DEGRADED: "yellow",
    NodeStatus.OFFLINE: "red",
    NodeStatus.UNKNOWN: "dim",
}

app = typer.Typer(
    name="beamwarden",
    help="Beamwarden: the fleet server for sensor nodes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
nodes_app = typer.Typer(help="The node inventory.", no_args_is_help=True)
tokens_app = typer.Typer(help="User API tokens and enrolment keys.", no_args_is_help=True)
readings_app = typer.Typer(help="Stored readings.", no_args_is_help=True)
users_app = typer.Typer(help="People who log in to the dashboard.", no_args_is_help=True)
app.add_typer(nodes_app, name="nodes")
app.add_typer(tokens_app, name="tokens")
app.add_typer(readings_app, name="readings")
app.add_typer(users_app, name="users")
app.add_typer(obs_app, name="obs")
app.add_typer(devices_app, name="devices")
app.command("bridge")(bridge)
app.add_typer(alerts_app, name="alerts")
app.add_typer(checkins_app, name="checkins")
app.add_typer(geiger_app, name="geiger")
app.add_typer(retention_app, name="retention")

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass(frozen=True, slots=True)
class _Options:
    config: Path | None


# --- plumbing --------------------------------------------------------------------------------


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def settings_of(ctx: typer.Context, **overrides: Any) -> ServerSettings:
    """The settings (``--config``, environment), with the command's options that were given."""
    options = ctx.find_object(_Options)
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(options.config if options else None, **given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid settings: {problems}")
    except (OSError, ValueError) as exc:  # an unreadable file, TOML errors (a ValueError)
        fail(f"cannot read the settings: {exc}")


def safe_url(url: str) -> str:
    """A database URL fit to print: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: the store says so in its own words
        return url.split("@")[-1]


@contextlib.asynccontextmanager
async def open_services(settings: ServerSettings) -> AsyncIterator[Services]:
    """Migrate the database (unless ``migrate_on_start`` is off), open the store, build the
    services; close the store at the end."""
    try:
        if settings.migrate_on_start:
            await asyncio.to_thread(upgrade, settings.database_url)
    except ServerError:
        raise
    except Exception as exc:  # the database is down, unreachable, or the URL is wrong
        raise StoreUnavailable(
            f"cannot open the database {safe_url(settings.database_url)}: {_reason(exc)}"
        ) from exc
    store = await open_store(store_config(settings))
    presence = open_presence(
        settings.presence_url, settings.presence_prefix, settings.presence_timeout_s
    )
    try:
        yield Services.build(
            store,
            SystemClock(),
            ServerMetrics(),
            service_config(settings),
            presence,
            user_store=UserSqlStore(store.engine, settings.db_query_timeout_s),
        )
    finally:
        await presence.close()
        await store.close()


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a ``ServerError`` becomes one line on stderr and exit 1."""
    try:
        return asyncio.run(work)
    except ServerError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        fail("interrupted", 130)


def check_node_id(node_id: str) -> str:
    if not is_ident(node_id):
        fail(
            f"invalid node id {node_id!r}: 1–64 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or a digit"
        )
    return node_id


def when(us: int | None) -> str:
    """A stored time for a table: UTC to the second."""
    return "" if us is None else from_us(us).strftime("%Y-%m-%d %H:%M:%SZ")


def new_table(*columns: str) -> Table:
    """A table whose cells fold rather than lose text when the terminal is narrow."""
    return Table(*(Column(c, overflow="fold") for c in columns))


def show(table: Table) -> None:
    """Print a table on stdout: as wide as the terminal, or as wide as it needs into a pipe."""
    wide = None if sys.stdout.isatty() else 1000  # rich would otherwise fold at 80 columns
    Console(highlight=False, width=wide).print(table)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


# --- the app ---------------------------------------------------------------------------------


def _version(value: bool) -> None:
    if value:
        typer.echo(f"beamwarden {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A TOML file of settings (default: $BEAMWARDEN_CONFIG); the environment wins.",
            dir_okay=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = _Options(config)


def _exit_quietly(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (setting: host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (setting: port).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes (setting: workers).")
    ] = None,
) -> None:
    """Serve the API (HTTPS when tls_certfile and tls_keyfile are set)."""
    settings = settings_of(ctx, host=host, port=port, workers=workers)
    configure_logging(settings.log_level, settings.log_format)
    target: Any
    if settings.workers == 1:
        target = create_app(settings)
    else:
        # each worker builds its own app from the environment: hand it the same settings
        if settings.migrate_on_start:
            try:
                upgrade(settings.database_url)
            except Exception as exc:
                fail(
                    f"cannot migrate the database {safe_url(settings.database_url)}: {_reason(exc)}"
                )
        options = ctx.find_object(_Options)
        if options is not None and options.config is not None:
            os.environ["BEAMWARDEN_CONFIG"] = str(options.config)
        os.environ["BEAMWARDEN_MIGRATE_ON_START"] = "false"
        for name, value in (("host", host), ("port", port)):
            if value is not None:
                os.environ[f"BEAMWARDEN_{name.upper()}"] = str(value)
        target = "beamwarden.server.app:app_from_environment"
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again: Ctrl-C
    # comes back as KeyboardInterrupt, SIGTERM reaches this handler; both end with exit code 0
    signal.signal(signal.SIGTERM, _exit_quietly)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            target,
            factory=settings.workers > 1,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="httptools",
            ssl_certfile=settings.tls_certfile,
            ssl_keyfile=settings.tls_keyfile,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            log_config=None,
            access_log=False,
        )


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Bring the database to the newest schema."""
    settings = settings_of(ctx)
    try:
        upgrade(settings.database_url)
    except Exception as exc:
        fail(f"cannot migrate the database {safe_url(settings.database_url)}: {_reason(exc)}")
    stderr.print(f"database {escape(safe_url(settings.database_url))} is at the newest schema")


# --- nodes -----------------------------------------------------------------------------------


@nodes_app.command("add")
def nodes_add(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="The node id, e.g. beamrider-0001.")],
    role: Annotated[str, typer.Option(help="pi-log, logexp, beamwarden, mqtt-bridge, …")],
    relay: Annotated[
        bool, typer.Option("--relay", help="May also write for other registered nodes.")
    ] = False,
) -> None:
    """Add a node and print its token (once)."""
    check_node_id(node)
    if not is_ident(role):
        fail(f"invalid role {role!r}: the alphabet of node ids (pi-log, mqtt-bridge, …)")
    settings = settings_of(ctx)

    async def work() -> str:
        async with open_services(settings) as services:
            _, token = await services.registry.add_node(node, role, relay)
            return token.secret

    secret = run(work())
    typer.echo(secret)
    stderr.print(
        f"node {escape(node)} added (role {escape(role)}{', relay' if relay else ''}). "
        "Its token is shown this once: the node sends it as "
        '"Authorization: Bearer <token>" (put it in the agent\'s config).'
    )


@nodes_app.command("list")
def nodes_list(ctx: typer.Context) -> None:
    """The nodes with their status."""
    settings = settings_of(ctx)

    async def work() -> list[NodeView]:
        views: list[NodeView] = []
        async with open_services(settings) as services:
            while page := await services.registry.list(
                500, views[-1].row.node_id if views else None
            ):
                views.extend(page)
        return views

    views = run(work())
    table = new_table("node", "role", "status", "last heartbeat", "host", "ip", "version")
    for view in views:
        row = view.row
        status = "revoked" if row.revoked_us is not None else view.status.value
        style = "dim" if row.revoked_us is not None else _STATUS_STYLE[view.status]
        table.add_row(
            escape(row.node_id),
            escape(row.role),
            f"[{style}]{status}[/]",
            age(view.heartbeat_age_seconds),
            escape(row.hostname or ""),
            escape(row.ip_address or ""),
            escape(row.software_version or ""),
        )
    show(table)
    if not views:
        stderr.print("no nodes yet: add one with `beamwarden nodes add NODE --role ROLE`")


@nodes_app.command("show")
def nodes_show(ctx: typer.Context, node: Annotated[str, typer.Argument()]) -> None:
    """Everything known about one node."""
    check_node_id(node)
    settings = settings_of(ctx)

    async def work() -> NodeView:
        async with open_services(settings) as services:
            return await services.registry.get(node)

    view = run(work())
    row = view.row
    fields: list[tuple[str, object]] = [
        ("node", row.node_id),
        ("role", row.role),
        ("status", "revoked" if row.revoked_us is not None else view.status.value),
        ("display name", row.display_name),
        ("site", row.site),
        ("room", row.room),
        ("operator tags", row.operator_tags),
        ("hostname", row.hostname),
        ("ip address", row.ip_address),
        ("software version", row.software_version),
        ("reported tags", row.reported_tags),
        ("created", iso(from_us(row.created_us))),
        ("registered", row.registered_us and iso(from_us(row.registered_us))),
        (
            "last heartbeat",
            f"{iso(view.last_heartbeat)} ({age(view.heartbeat_age_seconds)})"
            if view.last_heartbeat
            else "never",
        ),
        ("heartbeat interval", f"{row.interval_seconds:g} s"),
        ("uptime", None if row.uptime_seconds is None else f"{row.uptime_seconds:.0f} s"),
        ("instance", row.instance_id),
        ("state", row.state.value if row.state else None),
        ("protocol version", row.protocol_version),
        (
            "clock offset",
            None
            if row.clock_offset_seconds is None
            else f"{row.clock_offset_seconds:+.3f} s ({row.clock_samples} samples)",
        ),
        ("enrolment open", "yes" if row.enrolment_open else "no"),
        ("revoked", row.revoked_us and iso(from_us(row.revoked_us))),
    ]
    table = Table(show_header=False, box=None, pad_edge=False)
    for name, value in fields:
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
        table.add_row(f"[bold]{name}[/]", escape("" if value is None else str(value)))
    show(table)


@nodes_app.command("revoke")
def nodes_revoke(ctx: typer.Context, node: Annotated[str, typer.Argument()]) -> None:
    """Revoke a node and all its tokens."""
    check_node_id(node)
    settings = settings_of(ctx)

    async def work() -> None:
        async with open_services(settings) as services:
            await services.registry.revoke(node)

    run(work())
    stderr.print(f"node {escape(node)} revoked: its tokens no longer work")


@nodes_app.command("enrol")
def nodes_enrol(ctx: typer.Context, node: Annotated[str, typer.Argument()]) -> None:
    """Let an existing node id enrol again, once (e.g. a re-imaged node)."""
    check_node_id(node)
    settings = settings_of(ctx)

    async def work() -> None:
        async with open_services(settings) as services:
            await services.registry.open_enrolment(node)

    run(work())
    stderr.print(
        f"node {escape(node)} may enrol again, once, with an enrolment key "
        "(`beamwarden tokens add --scope enrol`); its old tokens stop working then"
    )


# --- tokens ----------------------------------------------------------------------------------

_TOKEN_HINT = {
    Scope.READ: 'use it as "Authorization: Bearer <token>" to read the API (curl -H …)',
    Scope.METRICS: 'Prometheus sends it as "Authorization: Bearer <token>" to scrape /metrics',
    Scope.ADMIN: 'use it as "Authorization: Bearer <token>"; it may do everything: keep it safe',
    Scope.ENROL: "a new node registers with it once (POST /api/nodes/register) and gets its token",
}


@tokens_app.command("add")
def tokens_add(
    ctx: typer.Context,
    scope: Annotated[str, typer.Option(help="read, metrics, admin or enrol.")],
    name: Annotated[str | None, typer.Option(help="What it is for (default: the scope).")] = None,
) -> None:
    """Create a user API token or an enrolment key and print it (once)."""
    try:
        wanted = Scope(scope)
    except ValueError:
        fail(f"unknown scope {scope!r}: read, metrics, admin or enrol")
    settings = settings_of(ctx)

    async def work() -> tuple[TokenRow, str]:
        async with open_services(settings) as services:
            issued = await services.credentials.issue(wanted, name or wanted.value)
            return issued.row, issued.secret

    row, secret = run(work())
    typer.echo(secret)
    hint = _TOKEN_HINT.get(wanted, "")
    stderr.print(
        f"token {row.id} ({wanted.value}, {escape(repr(row.name))}) created, shown this once; {hint}"
    )


@tokens_app.command("list")
def tokens_list(ctx: typer.Context) -> None:
    """Every token (never a secret): id, kind, name, scopes, node, created, revoked."""
    settings = settings_of(ctx)

    async def work() -> list[TokenRow]:
        async with open_services(settings) as services:
            return await services.credentials.list_tokens()

    table = new_table("id", "kind", "name", "scopes", "node", "created", "revoked")
    for row in run(work()):
        table.add_row(
            str(row.id),
            row.kind,
            escape(row.name),
            ",".join(sorted(s.value for s in row.scopes)),
            escape(row.node_id or ""),
            when(row.created_us),
            when(row.revoked_us),
            style="dim" if row.revoked_us is not None else None,
        )
    show(table)


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context, token_id: Annotated[int, typer.Argument(metavar="ID")]
) -> None:
    """Revoke a token by its id (see `tokens list`)."""
    settings = settings_of(ctx)

    async def work() -> TokenRow:
        async with open_services(settings) as services:
            return await services.credentials.revoke(token_id)

    row = run(work())
    stderr.print(f"token {row.id} ({row.kind} {escape(row.name)}) revoked")


# --- users -----------------------------------------------------------------------------------


def _users(services: Services) -> UserService:
    assert services.users is not None  # open_services builds it
    return services.users


def _read_password(password_stdin: bool, generate: bool) -> tuple[str, bool]:
    """The new password: from stdin, generated (then printed), or typed twice."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if generate:
        return secrets.token_urlsafe(15), True
    return typer.prompt("password", hide_input=True, confirmation_prompt=True), False


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]
Generate = Annotated[
    bool, typer.Option("--generate", help="Make a random password and print it once.")
]


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    admin: Annotated[
        bool, typer.Option("--admin", help="May change things (default: viewer).")
    ] = False,
    password_stdin: PasswordStdin = False,
    generate: Generate = False,
) -> None:
    """Add a dashboard user (a viewer unless --admin); asks for the password twice."""
    settings = settings_of(ctx)
    password, show_it = _read_password(password_stdin, generate)
    role = Role.ADMIN if admin else Role.VIEWER

    async def work() -> None:
        async with open_services(settings) as services:
            await _users(services).add_user(name, password, role, actor="cli")

    run(work())
    if show_it:
        typer.echo(password)
    stderr.print(
        f"user {escape(name)} ({role.value}) added" + (", password shown once" if show_it else "")
    )


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """Every user: name, role, created, last login, disabled."""
    settings = settings_of(ctx)

    async def work() -> list[UserRow]:
        async with open_services(settings) as services:
            return await _users(services).list_users()

    table = new_table("name", "role", "created", "last login", "disabled")
    for user in run(work()):
        table.add_row(
            escape(user.username),
            user.role.value,
            when(user.created_us),
            when(user.last_login_us),
            when(user.disabled_us),
            style="dim" if user.disabled_us is not None else None,
        )
    show(table)


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    password_stdin: PasswordStdin = False,
    generate: Generate = False,
) -> None:
    """Set a user's password (ends their sessions)."""
    settings = settings_of(ctx)
    password, show_it = _read_password(password_stdin, generate)

    async def work() -> None:
        async with open_services(settings) as services:
            await _users(services).set_password(name, password, actor="cli")

    run(work())
    if show_it:
        typer.echo(password)
    stderr.print(f"password of {escape(name)} set; their sessions ended")


@users_app.command("role")
def users_role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    role: Annotated[str, typer.Argument(metavar="ROLE", help="admin or viewer")],
) -> None:
    """Make a user an admin or a viewer."""
    try:
        wanted = Role(role)
    except ValueError:
        fail(f"unknown role {role!r}: admin or viewer")
    settings = settings_of(ctx)

    async def work() -> None:
        async with open_services(settings) as services:
            await _users(services).set_role(name, wanted, actor="cli")

    run(work())
    stderr.print(f"{escape(name)} is now {wanted.value}")


@users_app.command("disable")
def users_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Stop a user from logging in (ends their sessions)."""
    _set_disabled(ctx, name, True)


@users_app.command("enable")
def users_enable(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Let a disabled user log in again."""
    _set_disabled(ctx, name, False)


def _set_disabled(ctx: typer.Context, name: str, disabled: bool) -> None:
    settings = settings_of(ctx)

    async def work() -> None:
        async with open_services(settings) as services:
            await _users(services).set_disabled(name, disabled, actor="cli")

    run(work())
    stderr.print(f"user {escape(name)} {'disabled' if disabled else 'enabled'}")


# --- readings --------------------------------------------------------------------------------


def parse_time(text: str | None, option: str) -> datetime | None:
    """ISO-8601; a time without a zone is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option}: not an ISO-8601 time, e.g. 2025-03-14 or 2025-03-14T12:00:00Z: {text!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def export_record(row: ReadingRow) -> dict[str, Any]:
    """One reading as an export row: the fixed columns, then its payload fields (a field whose
    name is a fixed column's is called ``payload.<name>``)."""
    out: dict[str, Any] = {
        "node_id": row.node_id,
        "sensor_id": row.sensor_id,
        "sensor_type": row.sensor_type,
        "timestamp": iso(from_us(row.ts_us)),
        "received_at": iso(from_us(row.received_us)),
        "reading_id": row.reading_id,
        "source": row.source,
        "timestamp_source": "server" if row.flags & FLAG_SERVER_TIMESTAMP else "node",
        "timestamp_suspect": bool(row.flags & FLAG_TIMESTAMP_SUSPECT),
    }
    for name, value in row.payload.items():
        out[f"payload.{name}" if name in out else name] = value
    return out


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


@contextlib.contextmanager
def open_output(output: str) -> Iterator[IO[str]]:
    """stdout for ``-``; otherwise ``FILE.part``, renamed to ``FILE`` only when complete."""
    if output == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(output)
    part = path.with_name(path.name + ".part")
    try:
        with part.open("w", encoding="utf-8", newline="") as f:
            yield f
        part.replace(path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        fail(f"cannot write {output}: {exc.strerror or exc}")
    except BaseException:
        part.unlink(missing_ok=True)
        raise


@readings_app.command("export")
def readings_export(
    ctx: typer.Context,
    node: Annotated[str | None, typer.Option(help="Only this node.")] = None,
    sensor: Annotated[str | None, typer.Option(help="Only this sensor id.")] = None,
    sensor_type: Annotated[
        str | None, typer.Option("--type", help="Only this sensor type (geiger, climate, …).")
    ] = None,
    field: Annotated[
        str | None, typer.Option(help="Only readings that have this payload field.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this time on (ISO-8601; no zone: UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Before this time (ISO-8601; no zone: UTC).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or ndjson.")] = "csv",
    output: Annotated[str, typer.Option("--output", "-o", help="A file, or - for stdout.")] = "-",
) -> None:
    """Export readings, one row each, oldest first (streamed, never all in memory)."""
    if fmt not in ("csv", "ndjson"):
        fail(f"--format is csv or ndjson, not {fmt!r}")
    if field is not None and FIELD_NAME_RE.fullmatch(field) is None:
        fail(f"--field is a payload field name such as temperature_c, not {field!r}")
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    flt = ReadingFilter(
        node_id=node,
        sensor_id=sensor,
        sensor_type=sensor_type,
        field=field,
        since_us=None if start is None else to_us(start),
        until_us=None if end is None else to_us(end),
    )
    settings = settings_of(ctx)
    show_progress = output != "-" and sys.stderr.isatty()

    async def work() -> int:
        async with open_services(settings) as services:
            total = await services.queries.count(flt)
            with (
                Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=stderr,
                    disable=not show_progress,
                ) as progress,
                open_output(output) as out,
            ):
                if fmt == "ndjson":
                    task = progress.add_task("exporting", total=total)
                    return await _write_ndjson(services, flt, out, progress, task)
                scan = progress.add_task("collecting field names", total=total)
                fields: dict[str, None] = {}
                async for row in services.queries.export(flt):
                    for name in row.payload:
                        fields[name if name not in EXPORT_COLUMNS else f"payload.{name}"] = None
                    progress.advance(scan)
                task = progress.add_task("exporting", total=total)
                return await _write_csv(services, flt, out, sorted(fields), progress, task)

    written = run(work())
    if output != "-":
        stderr.print(f"{written} readings written to {escape(output)}")


async def _write_ndjson(
    services: Services, flt: ReadingFilter, out: IO[str], progress: Progress, task: TaskID
) -> int:
    written = 0
    async for row in services.queries.export(flt):
        out.write(json.dumps(export_record(row), separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
        written += 1
        progress.advance(task)
    return written


async def _write_csv(
    services: Services,
    flt: ReadingFilter,
    out: IO[str],
    fields: list[str],
    progress: Progress,
    task: TaskID,
) -> int:
    columns = [*EXPORT_COLUMNS, *fields]
    known = set(columns)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    written = 0
    late: set[str] = set()
    async for row in services.queries.export(flt):
        record = export_record(row)
        late.update(k for k in record if k not in known)
        writer.writerow([csv_value(record.get(c)) for c in columns])
        written += 1
        progress.advance(task)
    if late:  # readings stored between the two passes: say so, never hide it
        stderr.print(
            f"warning: fields that appeared during the export are not in the CSV: "
            f"{escape(', '.join(sorted(late)))}; export again (or use --format ndjson)"
        )
    return written


# --- demo ------------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8000,
    database_url: Annotated[str, typer.Option(help="The demo's own database.")] = DEMO_DATABASE_URL,
    nodes: Annotated[
        int, typer.Option(min=1, max=50, help="Demo nodes, one pi-log each (kinds in turn).")
    ] = 4,
    agents_dir: Annotated[
        Path, typer.Option(help="Each agent's config, state and log, in a folder per node.")
    ] = DEMO_AGENTS_DIR,
    flaky_up: Annotated[float, typer.Option(hidden=True, min=1)] = runner.FLAKY.up_s,
    flaky_down: Annotated[float, typer.Option(hidden=True, min=1)] = runner.FLAKY.down_s,
    duration: Annotated[float | None, typer.Option(hidden=True, min=0)] = None,
) -> None:
    """The server on SQLite and a real pi-log agent per demo node (Ctrl-C stops them all)."""
    settings = settings_of(
        ctx, database_url=database_url, host="127.0.0.1", port=port, log_format="text"
    )
    configure_logging(settings.log_level, settings.log_format)

    async def work() -> None:
        async with open_services(settings) as services:
            plan = await runner.prepare(services, nodes)
        flaky = Cycle(up_s=flaky_up, down_s=flaky_down)
        await runner.run(settings, plan, agents_dir, flaky=flaky, duration_s=duration)

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop:
            loop.run(work())
    except ServerError as exc:
        fail(exc.message)
    except KeyboardInterrupt:  # before the demo's own signal handlers were in place
        fail("interrupted", 130)


def main() -> None:
    """The ``beamwarden`` console script."""
    app()
