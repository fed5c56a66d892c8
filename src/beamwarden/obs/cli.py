"""Room: obs (stands alone; network and files). The ``obs`` command line, a typer app.

The lead mounts it as ``beamwarden obs``; ``python -m beamwarden.obs.cli`` runs it alone.

* ``tail URL [--level L] [--since 10m] [--follow]``: log records from the ``/logs`` endpoint of
  ``URL`` (where the endpoints are mounted, e.g. ``http://host:8000/obs``), one line each;
  ``--follow`` keeps asking for what came after the last one (by cursor).
* ``metrics URL [--format table|json]``: the current metric values (``/metrics.json``).
* ``query DB [--since] [--level] [--limit] [--format table|json]``: log records straight from a
  SQLite store file, opened read-only.

Errors (unreachable URL, a 4xx/5xx answer, a bad parameter, a missing file) are one line on
stderr and exit code 1 (2 for usage errors), never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import InvalidLevel, InvalidQuery
from .levels import parse_level
from .query import LogQuery, parse_since
from .sqlite_store import SqliteStore

app = typer.Typer(
    name="obs",
    help="Read the logs and metrics of an app that uses beamwarden.obs.",
    no_args_is_help=True,
    add_completion=False,
)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def _fail(message: str, code: int = 1) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _time(ts: object) -> str:
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ts)


def format_log_line(item: dict[str, Any]) -> str:
    """``2026-11-22T12:00:00.123Z INFO     app: message key=value …``"""
    attrs = item.get("attrs") or {}
    extra = " ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in attrs.items() if k != "exception"
    )
    line = (
        f"{_time(item.get('ts'))} {str(item.get('level', '?')).upper():<8} "
        f"{item.get('logger', '')}: {item.get('message', '')}"
    )
    if extra:
        line += f"  {extra}"
    if "exception" in attrs:
        line += "\n" + str(attrs["exception"]).rstrip()
    return line


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise _fail(f"{response.status_code} from {response.request.url}: {message}")


def read_log_lines(
    client: httpx.Client, base: str, params: dict[str, str]
) -> Iterator[dict[str, Any]]:
    """The records of one ``/logs`` request, as they stream in."""
    with client.stream("GET", _url(base, "/logs"), params=params) as response:
        if response.status_code >= 400:
            response.read()
            _check(response)
        for line in response.iter_lines():
            if line.strip():
                yield json.loads(line)


def follow_logs(
    client: httpx.Client,
    base: str,
    params: dict[str, str],
    *,
    follow: bool,
    interval: float,
    polls: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, Any]]:
    """Records from ``since``; with ``follow``, then every ``interval`` seconds what came after
    the last one (``polls`` > 0 stops after that many requests)."""
    done = 0
    while True:
        for item in read_log_lines(client, base, params):
            if "error" in item and "id" not in item:
                raise _fail(f"the server stopped the stream: {item['error']}")
            params = {k: v for k, v in params.items() if k != "since"} | {"cursor": str(item["id"])}
            yield item
        done += 1
        if not follow or (polls and done >= polls):
            return
        sleep(interval)


@app.command()
def tail(
    url: Annotated[str, typer.Argument(help="Where the endpoints are, e.g. http://host:8000/obs")],
    level: Annotated[str | None, typer.Option(help="Lowest level shown")] = None,
    since: Annotated[str, typer.Option(help="Epoch seconds, ISO-8601 or a duration")] = "10m",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep showing new records")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --follow")] = 2.0,
    limit: Annotated[int, typer.Option(help="Most records per request")] = 1000,
    polls: Annotated[int, typer.Option(hidden=True)] = 0,
) -> None:
    """Show log records of an app, and with --follow the new ones as they come."""
    params = {"since": since, "limit": str(limit)}
    if level:
        params["level"] = level
    try:
        with httpx.Client(timeout=30.0) as client:
            for item in follow_logs(
                client, url, params, follow=follow, interval=interval, polls=polls
            ):
                print(format_log_line(item), flush=True)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot read {url}: {exc}") from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


def _value(value: object) -> str:
    if isinstance(value, dict):
        return f"count={value['counts'][-1]} sum={value['sum']:g}"
    return f"{value:g}" if isinstance(value, float) else str(value)


@app.command()
def metrics(
    url: Annotated[str, typer.Argument(help="Where the endpoints are, e.g. http://host:8000/obs")],
    format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.TABLE,
) -> None:
    """Show the current value of every metric series of an app."""
    try:
        response = httpx.get(_url(url, "/metrics.json"), timeout=30.0)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot read {url}: {exc}") from None
    _check(response)
    items: list[dict[str, Any]] = response.json()["items"]
    items.sort(key=lambda i: (i["name"], _labels(i["labels"])))
    if format is OutputFormat.JSON:
        for item in items:
            print(json.dumps(item))
        return
    table = Table("metric", "labels", "kind", "value")
    for item in items:
        table.add_row(
            escape(item["name"]),
            escape(_labels(item["labels"])),
            item["kind"],
            _value(item["value"]),
        )
    Console().print(table)


@app.command()
def query(
    db: Annotated[Path, typer.Argument(help="A SQLite file written by SqliteStore")],
    since: Annotated[str | None, typer.Option(help="Epoch seconds, ISO-8601 or a duration")] = None,
    level: Annotated[str | None, typer.Option(help="Lowest level shown")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 100,
    format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.TABLE,
) -> None:
    """Show log records stored in a SQLite file (read-only)."""
    try:
        log_query = LogQuery(
            since=parse_since(since, time.time()) if since is not None else None,
            min_level=parse_level(level) if level is not None else None,
            limit=limit,
        )
    except (InvalidQuery, InvalidLevel) as exc:
        raise _fail(str(exc), 2) from None
    try:
        store = SqliteStore(db, readonly=True)
    except FileNotFoundError:
        raise _fail(f"no such file: {db}") from None
    try:
        records = store.read_logs(log_query)
    except Exception as exc:
        raise _fail(f"cannot read {db}: {exc}") from None
    finally:
        store.close()
    if format is OutputFormat.JSON:
        for record in records:
            print(json.dumps(record.as_json(), ensure_ascii=False))
        return
    table = Table("id", "time", "level", "logger", "message")
    for record in records:
        table.add_row(
            str(record.id),
            _time(record.ts),
            record.level.label,
            escape(record.logger),
            escape(record.message),
        )
    Console().print(table)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
