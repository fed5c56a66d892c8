"""Room: agent (wiring). The ``pi-log`` command line: run, check, queue stats|peek|dead-letters.

Exit codes: 0 done, 1 an invalid config or a refused start (another agent on the state directory),
2 wrong usage. Problems are printed one per line on stderr, never as a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from beamwarden.agent.clock import SystemClock
from beamwarden.agent.config import AgentConfig, load_config
from beamwarden.agent.drivers.base import SensorContext
from beamwarden.agent.errors import AgentError, ConfigError
from beamwarden.agent.observe import agent_observability
from beamwarden.agent.queue import ReadingQueue
from beamwarden.agent.runner import QUEUE_FILE, Agent
from beamwarden.obs import Observability

app = typer.Typer(help="pi-log: the Beamwarden node agent.", no_args_is_help=True)
queue_app = typer.Typer(help="Look into the durable queue.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
out = Console()
err = Console(stderr=True)

ConfigArg = Annotated[Path, typer.Argument(help="the agent's TOML config")]


def _fail(problems: list[str], headline: str) -> NoReturn:
    err.print(f"[red]{headline}[/red]")
    for problem in problems:
        err.print(f"  {problem}", markup=False, highlight=False)
    raise typer.Exit(1)


def _config(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(exc.problems, f"{exc.source}: the config is invalid")


@app.command()
def check(config: ConfigArg) -> None:
    """Validate the config and build every driver, without reading or sending anything."""
    cfg = _config(config)
    problems: list[str] = []
    table = Table("sensor", "type", "driver", "interval", "timeout", "enabled")
    for spec in cfg.sensors:
        context = SensorContext(cfg.node_id, spec.sensor_type, spec.sensor_id, SystemClock())
        try:
            spec.driver_class(spec.driver_config, context)
        except Exception as exc:
            problems.append(f"sensor[{spec.index}].driver: {spec.driver_name} cannot start: {exc}")
        table.add_row(
            spec.sensor_id,
            spec.sensor_type,
            spec.driver_name,
            f"{spec.interval_s:g} s",
            f"{spec.timeout_s:g} s",
            "yes" if spec.enabled else "no",
        )
    if problems:
        _fail(problems, f"{config}: the config is invalid")
    out.print(f"node {cfg.node_id} → {cfg.api_url}; state in {cfg.state_dir}")
    out.print(table)
    out.print("[green]config OK[/green]")


@app.command()
def run(
    config: ConfigArg,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Run the agent until SIGTERM or Ctrl-C."""
    cfg = _config(config)
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    obs = agent_observability()
    obs.install(level=log_level)  # the journal keeps reading stderr; obs keeps the newest records
    try:
        asyncio.run(_run(cfg, obs))
    except AgentError as exc:
        _fail([str(exc)], "pi-log cannot start")
    finally:
        obs.close()


async def _run(cfg: AgentConfig, obs: Observability) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Agent(cfg, obs=obs).run(stop)


def _open_queue(config: Path) -> ReadingQueue:
    cfg = _config(config)
    path = cfg.state_dir / QUEUE_FILE
    if not path.exists():
        _fail([f"no queue at {path} (the agent creates it on its first run)"], "no queue yet")
    try:
        return ReadingQueue(path, cfg.queue.max_rows, cfg.queue.max_bytes)
    except AgentError as exc:
        _fail([str(exc)], "the queue cannot be opened")


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@queue_app.command()
def stats(
    config: ConfigArg,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Depth, size, age of the oldest reading, drops and dead letters."""
    queue = _open_queue(config)
    try:
        s = queue.stats()
    finally:
        queue.close()
    facts = {
        "stream": s.stream,
        "readings": s.rows,
        "bytes": s.bytes,
        "oldest_enqueued_at": _when(s.oldest_enqueued_at),
        "last_seq": s.last_seq,
        "acked_total": s.acked_total,
        "dropped_total": s.dropped_rows,
        "dropped_bytes": s.dropped_bytes,
        "dead_letters": s.dead_letters,
    }
    if as_json:
        print(json.dumps(facts))
        return
    table = Table("", "")
    for key, value in facts.items():
        table.add_row(key, str(value))
    out.print(table)


@queue_app.command()
def peek(
    config: ConfigArg,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1)] = 10,
) -> None:
    """The oldest queued readings, as they will be sent."""
    queue = _open_queue(config)
    try:
        for item in queue.peek(limit):
            print(f"{_when(item.enqueued_at)}\t{queue.wire_item(item).decode()}")
    finally:
        queue.close()


@queue_app.command("dead-letters")
def dead_letters(
    config: ConfigArg,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1)] = 20,
) -> None:
    """Readings the server refused as invalid, newest first, with the reason."""
    queue = _open_queue(config)
    try:
        letters = queue.dead_letters(limit)
    finally:
        queue.close()
    for letter in letters:
        print(f"{letter.reading_id}\t{_when(letter.failed_at)}\t{letter.error}")
        print(f"\t{letter.body.decode('utf-8', 'replace')}")
    if not letters:
        err.print("no dead letters")


def main() -> None:
    app()


if __name__ == "__main__":  # python -m beamwarden.agent.cli (how `beamwarden demo` starts it)
    main()
