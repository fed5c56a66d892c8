"""Where the server's time goes: a py-spy profile (collapsed stacks) summarised by phase.

Not a figure of its own: the ingest benchmarks call :func:`summarize` when run with
``--profile DIR`` (py-spy samples the server of each backend's first run), and it can be run on any
``py-spy record --format raw`` output:

    .venv/bin/pip install py-spy
    .venv/bin/py-spy record --pid SERVER_PID --rate 100 --format raw -o /tmp/server.txt
    .venv/bin/python bench/profile_summary.py /tmp/server.txt

Each sample (a stack of the server process while it runs Python, idle threads excluded) counts once,
in the first phase of :data:`PHASES` that any of its frames belongs to, so the phases add up to
100 %: ``store`` (our store adapter, SQLAlchemy, asyncpg, aiosqlite and its SQLite thread), then
``parse+validate`` (``beamwarden.protocol``: msgspec decoding and normalising), ``auth``,
``body`` (reading and un-gzipping the body), ``ingest service`` (stamping, group commit),
``metrics+logging``, ``framework`` (FastAPI, Starlette, pydantic), ``http server`` (uvicorn,
httptools), ``event loop`` (asyncio, uvloop) and ``other``. ``top_self`` lists the frames where the
samples end (self time), the hot spots inside the phases.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: (phase, pattern matched against one frame "function (path:line)"), by priority
PHASES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "store",
        re.compile(r"beamwarden/server/store/|/sqlalchemy/|/asyncpg/|/aiosqlite/|sqlite3"),
    ),
    ("parse+validate", re.compile(r"beamwarden/protocol/|/msgspec/")),
    ("auth", re.compile(r"services/credentials\.py|api/deps\.py|hashlib")),
    ("body", re.compile(r"api/body\.py|zlib|gzip")),
    ("ingest service", re.compile(r"services/ingest\.py|fleet/")),
    (
        "metrics+logging",
        re.compile(
            r"/prometheus_client/|server/metrics\.py|/logging/|server/logs\.py|api/middleware\.py"
        ),
    ),
    ("framework", re.compile(r"/fastapi/|/starlette/|/pydantic|/anyio/")),
    ("http server", re.compile(r"/uvicorn/|/httptools/|/h11/")),
    ("event loop", re.compile(r"/asyncio/|uvloop|selectors\.py")),
)


def _frame_file(frame: str) -> str:
    return frame.rsplit("(", 1)[-1]


def phase_of(frames: list[str]) -> str:
    files = [_frame_file(f) for f in frames]
    for name, pattern in PHASES:
        if any(pattern.search(f) for f in files):
            return name
    return "other"


def summarize(path: Path, top: int = 12) -> dict[str, Any]:
    """Phase shares (%) and the hottest self frames of a ``py-spy --format raw`` file."""
    phases: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, sep, count_text = line.rpartition(" ")
        if not sep or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        phases[phase_of(frames)] += count
        func, _, where = frames[-1].strip().partition(" (")
        where = re.sub(r"^.*/(site-packages|src|lib/python[0-9.]+)/", "", where)
        leaves[f"{func} ({where}" if where else func] += count
    if total == 0:
        return {"samples": 0}
    return {
        "file": str(path),
        "samples": total,
        "phases_pct": {k: round(100 * v / total, 1) for k, v in phases.most_common()},
        "top_self_pct": [[k, round(100 * v / total, 1)] for k, v in leaves.most_common(top)],
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: profile_summary.py PY_SPY_RAW_FILE")
    print(json.dumps(summarize(Path(sys.argv[1]))))
