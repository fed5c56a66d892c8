"""Room: agent. The agent's TOML config, in the shape of the Pi-Log v2 plan, validated at start.

Example (``docs/agent.md`` documents every key)::

    device_id = "beamrider-0001"            # our node_id
    api_url = "https://beamwarden.example.org"
    device_token = "bwn_…"                  # or: enrolment_key = "bwe_…" (enrols once)
    state_dir = "/var/lib/pi-log"           # queue, enrolled token; the config may be read-only

    [[sensor]]
    type = "geiger"
    driver = "simulator"                    # a registered driver, or "package.module:Class"
    interval_ms = 1000
    id = "geiger-0"                         # optional sensor_id (defaults to the type)

Keys of a ``[[sensor]]`` table other than the common ones (:data:`SENSOR_KEYS`) are the driver's
own and are validated by the driver's config model. Every problem is reported at once, each naming
the table (``sensor[2]`` is the second ``[[sensor]]`` table), the key and what is wrong.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from beamwarden.agent.drivers.base import DriverClass, DriverConfig, load_driver
from beamwarden.agent.errors import ConfigError, DriverError
from beamwarden.protocol.vocabulary import IDENT_PATTERN, SENSOR_ID_RE

Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN, min_length=1, max_length=64)]
SensorId = Annotated[str, StringConstraints(pattern=rf"^{SENSOR_ID_RE.pattern}$")]
DEFAULT_STATE_DIR = Path("/var/lib/pi-log")
_FORBID = ConfigDict(extra="forbid", frozen=True)


class PushSettings(BaseModel):
    """``[push]``: how readings leave the queue for the server."""

    model_config = _FORBID

    #: most readings in one request (the server accepts up to 10 000)
    batch_max: int = Field(1000, ge=1, le=10_000)
    #: a batch smaller than ``batch_max`` waits at most this long for company
    batch_age_s: float = Field(1.0, gt=0, le=300)
    #: readings per second the backlog (what waited through an outage or a restart) drains at,
    #: at most; live readings go first and do not count against it
    backlog_rate: float = Field(5000.0, gt=0)
    #: one request's timeout (connect, write, read)
    timeout_s: float = Field(15.0, gt=0, le=600)
    #: bodies at least this large are sent gzip-compressed
    gzip_min_bytes: int = Field(1024, ge=0)
    #: first and largest delay of the exponential backoff after a 5xx or a network error
    backoff_base_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(120.0, gt=0)
    #: retry interval while the server refuses us for good (401/403/404/other 4xx, 409)
    slow_retry_s: float = Field(180.0, gt=0)
    #: longest ``Retry-After`` honoured (a longer one is cut to this)
    retry_after_max_s: float = Field(900.0, gt=0)


class QueueSettings(BaseModel):
    """``[queue]``: the bounds of the durable queue (drop-oldest beyond them, counted)."""

    model_config = _FORBID

    max_rows: int = Field(1_000_000, ge=1)
    max_bytes: int = Field(256 * 1024 * 1024, ge=4096)


class SensorTable(BaseModel):
    """The common keys of a ``[[sensor]]`` table; every other key belongs to the driver."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Ident
    driver: Annotated[str, StringConstraints(min_length=1)]
    interval_ms: int = Field(1000, gt=0)
    id: SensorId | None = None
    #: a read (or, for a streaming driver, the silence between samples) longer than this fails
    timeout_ms: int | None = Field(None, gt=0)
    enabled: bool = True


#: the keys every ``[[sensor]]`` table may carry, whatever its driver
SENSOR_KEYS = frozenset(SensorTable.model_fields)


class AgentFile(BaseModel):
    """The top level of the config file."""

    model_config = _FORBID

    device_id: Ident
    api_url: Annotated[str, StringConstraints(min_length=1)]
    device_token: Annotated[str, StringConstraints(min_length=8)] | None = None
    enrolment_key: Annotated[str, StringConstraints(min_length=8)] | None = None
    role: Ident = "pi-log"
    state_dir: Path = DEFAULT_STATE_DIR
    #: heartbeat interval (telemetry ``interval_seconds``)
    heartbeat_interval_s: float = Field(30.0, ge=1, le=86_400)
    tags: dict[str, str] = Field(default_factory=dict)
    #: testing aid: append ``reading_id <TAB> payload`` for every reading once it is committed
    commit_log: Path | None = None
    #: the local /health and /metrics (Prometheus) endpoint, "127.0.0.1:9105"; empty: off
    http_listen: str = ""
    push: PushSettings = Field(default_factory=PushSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    sensor: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One ``[[sensor]]`` table, resolved: its driver class and validated driver config."""

    index: int  # 1-based, as in error messages: sensor[1] is the first table
    sensor_type: str
    sensor_id: str
    driver_name: str
    driver_class: DriverClass
    driver_config: DriverConfig
    interval_s: float
    timeout_s: float
    enabled: bool

    @property
    def label(self) -> str:
        return f"sensor[{self.index}] {self.sensor_id} ({self.driver_name})"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The whole validated config."""

    node_id: str
    api_url: str
    device_token: str | None
    enrolment_key: str | None
    role: str
    state_dir: Path
    heartbeat_interval_s: float
    tags: dict[str, str]
    commit_log: Path | None
    push: PushSettings
    queue: QueueSettings
    sensors: tuple[SensorSpec, ...]
    #: (host, port) of the local /health and /metrics endpoint; None: off
    http_listen: tuple[str, int] | None = None


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            # list positions are 1-based for a person: sensor[1] is the first [[sensor]] table
            out += f"[{part + 1}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _what(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known key"
    if kind == "string_pattern_mismatch" and (err.get("ctx") or {}).get("pattern") == IDENT_PATTERN:
        return (
            "must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
        )
    msg = err["msg"]
    return msg[0].lower() + msg[1:] if msg else kind


def _problems(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[str]:
    return [f"{_where(prefix + tuple(err['loc']))}: {_what(err)}" for err in exc.errors()]


def _check_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an http:// or https:// URL with a host, e.g. https://beamwarden.example.org"
    return None


def parse_config(data: dict[str, Any], source: str = "config") -> AgentConfig:
    """Validate a parsed TOML document; raise :class:`ConfigError` listing every problem."""
    try:
        top = AgentFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc), source) from None
    problems: list[str] = []
    if (url_problem := _check_url(top.api_url)) is not None:
        problems.append(f"api_url: {url_problem}")
    if top.device_token is None and top.enrolment_key is None:
        problems.append("device_token: is required (or enrolment_key, to enrol this node once)")
    if top.device_token is not None and top.enrolment_key is not None:
        problems.append("enrolment_key: give device_token or enrolment_key, not both")
    listen: tuple[str, int] | None = None
    if top.http_listen:
        listen = loopback_address(top.http_listen)
        if listen is None:
            problems.append(
                f"http_listen: {top.http_listen!r} is not a loopback host:port "
                '(e.g. "127.0.0.1:9105" or "[::1]:9105"; empty turns it off)'
            )
    sensors: list[SensorSpec] = []
    seen_ids: dict[str, int] = {}
    for number, table in enumerate(top.sensor, start=1):
        spec = _sensor(number, table, problems)
        if spec is None:
            continue
        if spec.sensor_id in seen_ids:
            problems.append(
                f"sensor[{number}].id: {spec.sensor_id!r} is already used by "
                f"sensor[{seen_ids[spec.sensor_id]}]; give each table its own id"
            )
        seen_ids.setdefault(spec.sensor_id, number)
        sensors.append(spec)
    if problems:
        raise ConfigError(problems, source)
    return AgentConfig(
        node_id=top.device_id,
        api_url=top.api_url.rstrip("/"),
        device_token=top.device_token,
        enrolment_key=top.enrolment_key,
        role=top.role,
        state_dir=top.state_dir,
        heartbeat_interval_s=top.heartbeat_interval_s,
        tags=dict(top.tags),
        commit_log=top.commit_log,
        push=top.push,
        queue=top.queue,
        sensors=tuple(sensors),
        http_listen=listen,
    )


def loopback_address(text: str) -> tuple[str, int] | None:
    """``"127.0.0.1:9105"`` → ``("127.0.0.1", 9105)``; ``None`` unless a loopback host:port
    (the agent's own endpoint is for systemd and a local Prometheus, never the network)."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65_536:
        return None
    if host == "localhost":
        host = "127.0.0.1"
    try:
        if not ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        return None
    return host, int(port)


def _sensor(number: int, table: dict[str, Any], problems: list[str]) -> SensorSpec | None:
    where = f"sensor[{number}]"
    try:
        common = SensorTable.model_validate(table)
    except ValidationError as exc:
        problems += _problems(exc, ("sensor", number - 1))
        return None
    try:
        driver_class = load_driver(common.driver)
    except DriverError as exc:
        problems.append(f"{where}.driver: {exc}")
        return None
    driver_keys = {k: v for k, v in table.items() if k not in SENSOR_KEYS}
    try:
        driver_config = driver_class.info.config_model.model_validate(driver_keys)
    except ValidationError as exc:
        name = driver_class.info.name
        problems += [
            f"{p} (a key of driver {name!r})" for p in _problems(exc, ("sensor", number - 1))
        ]
        return None
    interval_s = common.interval_ms / 1000
    timeout_s = (
        common.timeout_ms / 1000
        if common.timeout_ms
        else max(10.0, 2 * interval_s, 2 * driver_config.quiet_s())
    )
    return SensorSpec(
        index=number,
        sensor_type=common.type,
        sensor_id=common.id or common.type,
        driver_name=common.driver,
        driver_class=driver_class,
        driver_config=driver_config,
        interval_s=interval_s,
        timeout_s=timeout_s,
        enabled=common.enabled,
    )


def load_config(path: Path) -> AgentConfig:
    """Read and validate a TOML config file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot be read: {exc.strerror or exc}"], str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"is not valid TOML: {exc}"], str(path)) from None
    return parse_config(data, str(path))
