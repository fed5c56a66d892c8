"""Where the server's time goes: a py-spy profile (collapsed stacks) summarised by phase.

Not a figure of its own: the ingest benchmarks call :func:`summarize` when run with
``--profile DIR`` (py-spy samples the server of each backend's first run), and it can be run on any
``py-spy record --format raw`` output:

    .venv/bin/pip install py-spy
    .venv/bin/py-spy record --pid SERVER_PID --rate 100 --format raw -o /tmp/server.txt
    .venv/bin/python bench/profile_summary.py /tmp/server.txt              # by phase (JSON)
    .venv/bin/python bench/profile_summary.py /tmp/server.txt 'beamwarden'  # inclusive, per frame

py-spy runs with ``--nonblocking`` (it does not pause the server); samples of waiting threads are
dropped (:data:`IDLE_LEAF`; py-spy's own idle detection misses them). Each sample counts once, in the phase of its
innermost frame that belongs to one of :data:`PHASES`: ``store`` (our store adapter, SQLAlchemy,
asyncpg, aiosqlite), ``parse+validate`` (``beamwarden.protocol``, msgspec), ``auth`` (token
lookup), ``body`` (reading and un-gzipping the body), ``ingest service`` (stamping, group commit,
the route), ``middleware+metrics+logging`` (request id, Prometheus, logs),
``threadpool hop (anyio)`` (FastAPI running a sync ``def`` dependency in a worker thread),
``framework`` (FastAPI, Starlette, pydantic), ``http server`` (uvicorn, httptools), ``event loop``
(asyncio) and ``event loop (uvloop/httptools C code)`` (no Python frame above the loop: waiting
in epoll, or uvloop/httptools at work). The phases
add up to 100 %. ``top_self_pct`` lists the frames where samples end (self time).
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: (phase, pattern matched against one frame "function (path:line)"; py-spy writes paths relative
#: to their package root: "decode_readings (beamwarden/protocol/readings.py:130)")
_P = r"[(/]"
PHASES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "store",
        re.compile(rf"{_P}beamwarden/server/store/|{_P}(sqlalchemy|asyncpg|aiosqlite|sqlite3)/"),
    ),
    ("parse+validate", re.compile(rf"{_P}beamwarden/protocol/|{_P}msgspec/")),
    (
        "auth",
        re.compile(
            rf"{_P}beamwarden/server/services/credentials\.py|^(get_principal|presented_token) "
            rf"|{_P}hashlib\.py|{_P}fastapi/security/"
        ),
    ),
    ("body", re.compile(rf"{_P}beamwarden/server/api/body\.py|{_P}(zlib|gzip)")),
    (
        "ingest service",
        re.compile(
            rf"{_P}beamwarden/server/services/ingest\.py|{_P}beamwarden/fleet/"
            rf"|{_P}beamwarden/server/api/readings\.py|{_P}beamwarden/server/records\.py"
        ),
    ),
    (
        "middleware+metrics+logging",
        re.compile(
            rf"{_P}prometheus_client/|{_P}beamwarden/server/(metrics|logs|context)\.py"
            rf"|{_P}logging/|{_P}beamwarden/server/api/middleware\.py|{_P}uuid\.py"
        ),
    ),
    (
        "threadpool hop (anyio)",
        re.compile(rf"{_P}anyio/|{_P}concurrent/futures/|{_P}threading\.py|{_P}queue\.py"),
    ),
    (
        "framework",
        re.compile(rf"{_P}(fastapi|starlette|pydantic|pydantic_core)/|{_P}(typing|inspect)\.py"),
    ),
    ("http server", re.compile(rf"{_P}(uvicorn|httptools|h11)/")),
    ("event loop", re.compile(rf"{_P}(asyncio|uvloop)/|{_P}selectors\.py")),
)
#: the frames every sample of the serving thread starts with (the CLI, uvicorn.run, the loop)
_ROOT_END = "Runner.run (asyncio/runners.py"


def _strip_root(frames: list[str]) -> list[str]:
    for i, frame in enumerate(frames):
        if _ROOT_END in frame:
            return frames[i + 1 :]
    return frames


def phase_of(frames: list[str]) -> str:
    """The phase of the innermost frame that belongs to one (the leaf first)."""
    frames = _strip_root(frames)
    if not frames:
        return LOOP_C
    for frame in reversed(frames):
        short = _short(frame)
        for name, pattern in PHASES:
            if pattern.search(short):
                return name
    return "other"


def _short(frame: str) -> str:
    func, _, where = frame.strip().partition(" (")
    where = re.sub(r"^.*/(site-packages|src|lib/python[0-9.]+)/", "", where)
    return f"{func} ({where}" if where else func


#: leaves of threads that wait (a worker thread's queue, the aiosqlite thread between calls)
IDLE_LEAF = re.compile(
    r"^(Condition\.wait \(threading\.py|Queue\.get \(queue\.py"
    r"|_worker \(concurrent/futures/thread\.py:81"
    r"|_connection_worker_thread \(aiosqlite/core\.py:59)"
)
LOOP_C = "event loop (uvloop/httptools C code)"


def summarize(path: Path, top: int = 12) -> dict[str, Any]:
    """Phase shares (%) and the hottest self frames of a ``py-spy record --format raw`` file.

    Samples of waiting threads (:data:`IDLE_LEAF`) are dropped; the shares are of the rest.
    ``serving_thread_busy_pct``: the share of the serving thread's samples that are in Python
    code (the rest are in uvloop's C code: waiting in epoll, or parsing and writing sockets).
    """
    phases: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = idle = main = main_loop = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, sep, count_text = line.rpartition(" ")
        if not sep or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = _short(frames[-1])
        if IDLE_LEAF.match(leaf):
            idle += count
            continue
        total += count
        phase = phase_of(frames)
        if any(_ROOT_END in f for f in frames):
            main += count
            main_loop += count if phase == LOOP_C else 0
        phases[phase] += count
        leaves[leaf] += count
    if total == 0:
        return {"samples": 0, "idle_samples": idle}
    return {
        "file": str(path),
        "samples": total,
        "idle_samples": idle,
        "serving_thread_busy_pct": round(100 * (main - main_loop) / main, 1) if main else None,
        "phases_pct": {k: round(100 * v / total, 1) for k, v in phases.most_common()},
        "top_self_pct": [[k, round(100 * v / total, 1)] for k, v in leaves.most_common(top)],
    }


def inclusive(path: Path, pattern: str = "", top: int = 40) -> list[tuple[str, float]]:
    """Inclusive shares (%) of the non-idle samples per frame (function and file, not line),
    for frames matching ``pattern``: how much of the time is spent in or below each."""
    counts: Counter[str] = Counter()
    total = 0
    wanted = re.compile(pattern)
    for line in path.read_text(errors="replace").splitlines():
        stack, sep, count_text = line.rpartition(" ")
        if not sep or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if IDLE_LEAF.match(_short(frames[-1])):
            continue
        count = int(count_text)
        total += count
        seen = {re.sub(r":\d+\)$", ")", _short(f)) for f in frames}
        for name in seen:
            if wanted.search(name):
                counts[name] += count
    return [(k, round(100 * v / total, 1)) for k, v in counts.most_common(top)] if total else []


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: profile_summary.py PY_SPY_RAW_FILE [FRAME_REGEX]")
    if len(sys.argv) == 3:
        for name, share in inclusive(Path(sys.argv[1]), sys.argv[2]):
            print(f"{share:5.1f} %  {name}")
    else:
        print(json.dumps(summarize(Path(sys.argv[1]))))
