"""Shared helpers of the benchmarks in ``bench/`` (not a benchmark itself).

What they do, so that every ``bench_*.py`` measures the same way:

* :func:`database` makes a throwaway database: a SQLite file in a temporary folder, or a
  PostgreSQL database created on ``127.0.0.1:5432`` (``$BEAMWARDEN_BENCH_PG``, default
  ``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped afterwards (``WITH (FORCE)``).
  Backend ``discard`` is SQLite with ``BEAMWARDEN_INGEST_SINK=discard``: readings are parsed and
  validated and then thrown away (the store is still needed for the node token).
* :func:`serve` starts ``.venv/bin/beamwarden serve --port <free port>`` as a subprocess with
  ``BEAMWARDEN_*`` settings in its environment, logging to a temporary file, waits for
  ``/api/health/ready`` and always stops it (SIGTERM, then SIGKILL after a grace period).
* :func:`cli` runs the ``beamwarden`` command line with the same environment, and
  :func:`node_token` / :func:`user_token` pick the printed token out of its output.
* :func:`run_ingest_load` runs ``<repo>/../shared/bench/ingest_load.py`` (with the venv's python,
  which has uvloop) against the server with ``--server-pid`` and returns its one JSON line.
* :func:`profiler` samples the server with ``py-spy record --format raw`` while a load runs; see
  ``bench/profile_summary.py`` for turning the samples into "where the time goes".

Everything stays on loopback, every wait has a deadline, and every server and database made here
is stopped or dropped in a ``finally`` (SIGTERM to the benchmark itself also runs those).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
#: The venv of the repository; falls back to the interpreter running the benchmark.
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
BEAMWARDEN = str(VENV_BIN / "beamwarden") if (VENV_BIN / "beamwarden").exists() else "beamwarden"
LOAD_GENERATOR = Path(
    os.environ.get(
        "BEAMWARDEN_BENCH_LOADGEN", str(REPO.parent / "shared" / "bench" / "ingest_load.py")
    )
)
#: Cache of built databases (gitignored).
CACHE_DIR = REPO / ".bench"
PG_ADMIN_URL = os.environ.get(
    "BEAMWARDEN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgresql", "discard")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

#: How long a server may take to answer ``/api/health/ready`` (it migrates the database first).
READY_TIMEOUT_S = 120.0
#: How long a stopping server may take before it is killed.
STOP_GRACE_S = 20.0
#: How long one CLI command may take.
CLI_TIMEOUT_S = 120.0

_TOKEN_RE = re.compile(r"\bbw[a-z]_[A-Za-z0-9_-]{20,}")


class BenchError(RuntimeError):
    """A benchmark could not run (the server did not start, the CLI failed, ...)."""


# --- small things --------------------------------------------------------------------------------


def install_signal_handlers() -> None:
    """Make SIGTERM/SIGHUP run the ``finally`` blocks (stop servers, drop databases)."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the one JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "loadavg_before": round(os.getloadavg()[0], 2),
    }


def header(bench: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The common head of every benchmark's JSON line."""
    return {
        "bench": bench,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_revision(),
        "server": {k: v for k, v in SERVER_SOURCE.items() if k != "src"},
        "machine": machine(),
        "params": dict(params),
    }


def median(values: Sequence[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def medians(runs: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, float | None]:
    return {key: median([run.get(key) for run in runs]) for key in keys}


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    """``--env KEY=VALUE`` options → a dict (keys must be ``BEAMWARDEN_*``)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("BEAMWARDEN_"):
            raise SystemExit(f"--env takes BEAMWARDEN_NAME=VALUE, not {pair!r}")
        out[key] = value
    return out


def parse_backends(text: str, allowed: Sequence[str] = BACKENDS) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    bad = [b for b in names if b not in allowed]
    if not names or bad:
        raise SystemExit(f"--backends is a comma-separated subset of {','.join(allowed)}")
    return names


def emit(result: Mapping[str, Any]) -> None:
    """Print THE one JSON line of a benchmark."""
    print(json.dumps(result, separators=(",", ":")), flush=True)


#: What the server subprocesses run: the work tree (default) or a pinned commit (pin_commit).
SERVER_SOURCE: dict[str, str] = {"source": "work tree"}


def pin_commit(rev: str) -> None:
    """Run the server and the CLI from commit ``rev`` instead of the work tree: its ``src/`` is
    exported (``git archive``) to a temporary folder that goes first on ``PYTHONPATH`` of every
    subprocess (the venv's dependencies stay). The folder is removed at exit."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    folder = Path(tempfile.mkdtemp(prefix="bw-bench-src-"))
    atexit.register(shutil.rmtree, folder, True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", sha, "src"],
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, timeout=120, check=True)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(folder / "src") + (os.pathsep + old if old else "")
    SERVER_SOURCE.clear()
    SERVER_SOURCE.update({"source": "commit", "commit": sha[:10], "src": str(folder / "src")})


def source_root() -> Path:
    """The ``src`` folder the server runs from (the work tree's, or a pinned commit's)."""
    return Path(SERVER_SOURCE.get("src", str(REPO / "src")))


# --- databases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    """A throwaway database and the server settings that select it."""

    backend: str  # sqlite | postgresql | discard
    url: str
    env: dict[str, str] = field(default_factory=dict)


def pg_url(dbname: str) -> str:
    u = urlsplit(PG_ADMIN_URL)
    return u._replace(path="/" + dbname).geturl()


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise BenchError(f"refusing a database that is not on loopback: {url}")


def pg_admin(*statements: str) -> list[list[Any]]:
    """Run statements on the admin database (autocommit, as CREATE/DROP DATABASE need); return
    the rows of the last one."""
    _check_loopback(PG_ADMIN_URL)

    async def run() -> list[list[Any]]:
        import asyncpg  # type: ignore[import-untyped,unused-ignore]

        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            rows: list[Any] = []
            for statement in statements:
                rows = await conn.fetch(statement, timeout=600)
            return [list(r) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(run())


def quote_ident(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]{1,63}", name):
        raise BenchError(f"not a safe database name: {name!r}")
    return f'"{name}"'


def pg_database_exists(name: str) -> bool:
    rows = pg_admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    return bool(rows)


def pg_drop(name: str) -> None:
    pg_admin(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


@contextlib.contextmanager
def database(backend: str, template: str | None = None) -> Iterator[Database]:
    """A throwaway database for ``backend``; gone afterwards, whatever happens.

    ``template``: for PostgreSQL a database to copy (``CREATE DATABASE … TEMPLATE``), for SQLite a
    file to copy.
    """
    if backend == "postgresql":
        name = f"bw_bench_{os.getpid()}_{secrets.token_hex(3)}"
        suffix = f" TEMPLATE {quote_ident(template)}" if template else ""
        pg_admin(f"CREATE DATABASE {quote_ident(name)}{suffix}")
        try:
            yield Database(backend, pg_url(name))
        finally:
            try:
                pg_drop(name)
            except Exception as exc:
                log(f"could not drop database {name}: {exc}")
        return
    if backend not in ("sqlite", "discard"):
        raise BenchError(f"unknown backend {backend!r}")
    folder = Path(tempfile.mkdtemp(prefix="bw-bench-db-"))
    try:
        path = folder / "bench.db"
        if template:
            shutil.copyfile(template, path)
            wal = Path(f"{template}-wal")
            if wal.exists() and wal.stat().st_size:
                shutil.copyfile(wal, Path(f"{path}-wal"))
        env = {"BEAMWARDEN_INGEST_SINK": "discard"} if backend == "discard" else {}
        yield Database(backend, f"sqlite:///{path}", env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the server ----------------------------------------------------------------------------------


@dataclass
class Server:
    """A running ``beamwarden serve`` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log_path: Path
    db: Database

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The process that serves HTTP: the CLI's own process, or its only child if it forks.
        SQLite's readings writer (a child process of the server, ``sqlite_writer=process``) is
        not it: its CPU is not in ``server_cpu_s``, but in ``machine_cpu_busy_cores``."""
        children = [c for c in _children(self.proc.pid) if not _is_sqlite_writer(c)]
        return children[0] if len(children) == 1 else self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _is_sqlite_writer(pid: int) -> bool:
    try:
        return b"sqlite_writer_process" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(t) for t in text)
    return out


def server_env(db: Database, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAMWARDEN_")}
    env.update(
        {
            "BEAMWARDEN_DATABASE_URL": db.url,
            "BEAMWARDEN_HOST": "127.0.0.1",
            # stdout of the CLI must be plain text a script can read
            "NO_COLOR": "1",
            "TERM": "dumb",
            "COLUMNS": "400",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(db.env)
    env.update(extra or {})
    return env


def cli(env: Mapping[str, str], *args: str, timeout: float = CLI_TIMEOUT_S) -> str:
    """Run ``beamwarden ARGS`` with ``env``; return its stdout (raise with its output on failure)."""
    try:
        done = subprocess.run(
            [BEAMWARDEN, *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`beamwarden {' '.join(args)}` took more than {timeout} s") from exc
    if done.returncode != 0:
        raise BenchError(
            f"`beamwarden {' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def find_token(text: str) -> str:
    """The token a CLI command printed (``bwn_…``, ``bwu_…``, ``bwe_…``)."""
    found = _TOKEN_RE.findall(text)
    if not found:
        raise BenchError(f"no token in the CLI's output:\n{text}")
    token: str = found[-1]
    return token


def node_token(env: Mapping[str, str], node: str = "bench-node", role: str = "bench") -> str:
    """``beamwarden nodes add NODE --role ROLE``: the node's token."""
    return find_token(cli(env, "nodes", "add", node, "--role", role))


def user_token(env: Mapping[str, str], scope: str = "read") -> str:
    """``beamwarden tokens add --scope SCOPE``: a user API token."""
    return find_token(cli(env, "tokens", "add", "--scope", scope))


def http_get(url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None) -> int:
    """Status of a GET (0 when nothing answers)."""
    if urlsplit(url).hostname not in LOOPBACK:
        raise BenchError(f"refusing a non-loopback URL: {url}")
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    # the server runs in its own session (process group = its pid): signal that group only
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        log(f"server {proc.pid} did not stop within {STOP_GRACE_S} s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def serve(
    db: Database, extra_env: Mapping[str, str] | None = None, migrate_first: bool = True
) -> Iterator[Server]:
    """``beamwarden serve`` on a free loopback port, ready; stopped afterwards, whatever happens."""
    port = free_port()
    env = server_env(db, {"BEAMWARDEN_PORT": str(port), **(extra_env or {})})
    if migrate_first:  # so that start-up is quick and a migration error is reported plainly
        cli(env, "migrate")
    log_dir = Path(tempfile.mkdtemp(prefix="bw-bench-log-"))
    log_path = log_dir / "server.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [BEAMWARDEN, "serve", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(proc, port, env, log_path, db)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        ready = f"{server.base_url}/api/health/ready"
        while True:
            if proc.poll() is not None:
                raise BenchError(
                    f"the server exited with {proc.returncode} at start:\n{server.log_tail()}"
                )
            if http_get(ready, timeout=2.0) == 200:
                break
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the server was not ready within {READY_TIMEOUT_S} s:\n{server.log_tail()}"
                )
            time.sleep(0.1)
        yield server
    finally:
        _stop(proc)
        if os.environ.get("BEAMWARDEN_BENCH_KEEP_LOGS"):
            log(f"server log kept: {log_path}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)


# --- load --------------------------------------------------------------------------------------


def run_ingest_load(
    server: Server,
    token: str,
    *,
    readings: int,
    batch: int,
    conc: int,
    reading_ids: bool = True,
    max_seconds: float = 300.0,
    node: str = "bench-node",
    label: str = "",
    path: str = "/api/readings",
) -> dict[str, Any]:
    """One run of ``ingest_load.py`` (JSON format) against ``server``; its JSON line as a dict."""
    if not LOAD_GENERATOR.exists():
        raise BenchError(f"the load generator is missing: {LOAD_GENERATOR}")
    args = [
        PYTHON,
        str(LOAD_GENERATOR),
        "--url",
        f"{server.base_url}{path}",
        "--format",
        "json",
        "--node",
        node,
        "--header",
        f"Authorization: Bearer {token}",
        "-n",
        str(readings),
        "-b",
        str(batch),
        "-c",
        str(conc),
        "--max-seconds",
        str(max_seconds),
        "--server-pid",
        str(server.pid),
        "--label",
        label,
    ]
    if reading_ids:
        args.append("--reading-ids")
    return run_json(args, timeout=max_seconds + 300)


def run_json(args: Sequence[str], timeout: float, show_stderr: bool = False) -> dict[str, Any]:
    """Run a command that prints one JSON line last; return it (its exit code is not judged:
    ``ingest_load.py`` exits 1 when any request failed, which the result shows).
    ``show_stderr``: let its stderr (progress) through instead of keeping it for errors."""
    try:
        done = subprocess.run(
            list(args),
            stdout=subprocess.PIPE,
            stderr=None if show_stderr else subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(
            f"{args[1] if len(args) > 1 else args[0]} took more than {timeout} s"
        ) from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(
            f"no JSON from {args[:2]} (exit {done.returncode}):\n{(done.stderr or '')[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --- profiling ---------------------------------------------------------------------------------


@contextlib.contextmanager
def profiler(pid: int, out: Path | None, rate: int = 100) -> Iterator[None]:
    """Sample ``pid`` with ``py-spy record --format raw`` (collapsed stacks) into ``out`` while
    the block runs; no-op when ``out`` is None. py-spy: ``.venv/bin/pip install py-spy``."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy", path=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    if spy is None:
        raise BenchError("py-spy is not installed: .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)  # let it attach before the load starts
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log(f"profile written: {out}")
