"""obs side by side with observabilipy 1.4.0: log records/s through the stdlib ``logging``
handler into SQLite (issue 6's comparison).

Both sides log the same ``--records`` records from one thread (``logger.info`` with %-args,
one in four with ``extra`` attributes) into a fresh SQLite file, and the clock stops when
everything is stored (ours: ``handler.flush()``; theirs: ``handler.close()``, which waits for its
background writer). Ours runs here; theirs needs Python >= 3.13, so it runs in a throwaway
virtual environment in a temporary folder, made with the first interpreter found among
``--python``, ``$BEAMWARDEN_PY313``, ``python3.13``/``python3.14`` on ``PATH`` and
``uv python find/install 3.13`` (uv on ``PATH`` or as ``python -m uv``); observabilipy is installed
there from PyPI (``pip install observabilipy==1.4.0``) and deleted with the folder. When no such
interpreter can be had, the line says why (``"observabilipy": {"skipped": "..."}``) and still
gives our figure. Nothing third-party is kept.

Run (prints ONE JSON line)::

    .venv/bin/python bench/bench_obs_vs_observabilipy.py [--records 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from beamwarden.obs import ObsHandler, SqliteStore

VERSION = "1.4.0"
EXTRA = {"route": "/api/nodes/{node_id}", "status": 200}

THEIRS = r"""
import json, logging, sqlite3, sys, time
import observabilipy
from observabilipy import ObservabilipyHandler
try:
    from observabilipy import SQLiteLogStorage
except ImportError:
    from observabilipy.adapters.storage.sqlite import SQLiteLogStorage

path, records = sys.argv[1], int(sys.argv[2])
extra = {"route": "/api/nodes/{node_id}", "status": 200}
storage = SQLiteLogStorage(path)
handler = ObservabilipyHandler(storage, background_writer=True)
logger = logging.getLogger("bench.theirs")
logger.propagate = False
logger.setLevel(logging.INFO)
logger.addHandler(handler)
start = time.perf_counter()
for i in range(records):
    if i & 3:
        logger.info("request %d handled in %.1f ms", i, 1.5)
    else:
        logger.info("request %d handled", i, extra=extra)
emitted = time.perf_counter()
handler.close()
done = time.perf_counter()
stored = sqlite3.connect(path).execute("SELECT count(*) FROM logs").fetchone()[0]
print(json.dumps({"records_per_s": records / (done - start),
                  "offered_per_s": records / (emitted - start), "stored": stored,
                  "version": getattr(observabilipy, "__version__", "?"),
                  "python": sys.version.split()[0]}))
"""


def ours(folder: Path, run: int, records: int) -> dict[str, float]:
    store = SqliteStore(folder / f"ours-{run}.db")
    handler = ObsHandler(store)
    logger = logging.getLogger(f"bench.ours.{run}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    start = time.perf_counter()
    for i in range(records):
        if i & 3:
            logger.info("request %d handled in %.1f ms", i, 1.5)
        else:
            logger.info("request %d handled", i, extra=EXTRA)
    emitted = time.perf_counter()
    assert handler.flush(timeout=120)
    done = time.perf_counter()
    logger.removeHandler(handler)
    handler.close()
    stored = store.stats().logs
    store.close()
    return {
        "records_per_s": records / (done - start),
        "offered_per_s": records / (emitted - start),
        "stored": stored,
        "dropped": handler.dropped,
    }


def _version_ok(python: str) -> bool:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info >= (3, 13))"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip() == "True"


def _uv() -> list[str] | None:
    found = shutil.which("uv")
    if found:
        return [found]
    probe = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, text=True, timeout=30
    )
    return [sys.executable, "-m", "uv"] if probe.returncode == 0 else None


def find_python(given: str | None, folder: Path) -> tuple[str | None, list[str]]:
    """A Python >= 3.13 and what was tried (for the skip reason)."""
    tried: list[str] = []
    for candidate in (given, os.environ.get("BEAMWARDEN_PY313")):
        if candidate:
            if _version_ok(candidate):
                return candidate, tried
            tried.append(f"{candidate}: not a Python >= 3.13")
    for name in ("python3.13", "python3.14"):
        found = shutil.which(name)
        if found and _version_ok(found):
            return found, tried
    tried.append("no python3.13/python3.14 on PATH")
    uv = _uv()
    if uv is None:
        tried.append("uv is not installed")
        return None, tried
    env = {**os.environ, "UV_PYTHON_INSTALL_DIR": str(folder / "uv-python")}
    for args in (["python", "find", "3.13"], ["python", "install", "3.13"]):
        try:
            out = subprocess.run([*uv, *args], capture_output=True, text=True, timeout=300, env=env)
        except subprocess.TimeoutExpired:
            tried.append(f"uv {' '.join(args)}: timed out")
            continue
        if out.returncode == 0 and args[1] == "find" and out.stdout.strip():
            return out.stdout.strip(), tried
        if out.returncode == 0 and args[1] == "install":
            again = subprocess.run(
                [*uv, "python", "find", "3.13"], capture_output=True, text=True, env=env
            )
            if again.returncode == 0 and again.stdout.strip():
                return again.stdout.strip(), tried
        if args[1] == "find":
            tried.append("uv python find 3.13: none installed")
            continue
        last = (out.stderr.strip().splitlines() or ["failed"])[-1].strip()
        tried.append(f"uv python install 3.13: {last[:160]}")
    return None, tried


def theirs(python: str, folder: Path, records: int, runs: int) -> dict[str, object]:
    venv = folder / "venv-observabilipy"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"observabilipy=={VERSION}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if pip.returncode != 0:
        return {"skipped": f"pip install observabilipy=={VERSION}: {pip.stderr.strip()[-300:]}"}
    results = []
    for run in range(runs):
        out = subprocess.run(
            [str(venv / "bin" / "python"), "-c", THEIRS, str(folder / f"theirs-{run}.db"),
             str(records)],
            capture_output=True,
            text=True,
            timeout=1800,
        )  # fmt: skip
        if out.returncode != 0:
            return {"skipped": f"their run failed: {out.stderr.strip()[-300:]}"}
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "records_per_s": round(statistics.median(r["records_per_s"] for r in results)),
        "stored": [r["stored"] for r in results],
        "version": results[0]["version"],
        "python": results[0]["python"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", help="a Python >= 3.13 for observabilipy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-obs-vs-") as tmp:
        folder = Path(tmp)
        mine = [ours(folder, run, args.records) for run in range(args.runs)]
        ours_summary = {
            "records_per_s": round(statistics.median(r["records_per_s"] for r in mine)),
            "stored": [int(r["stored"]) for r in mine],
            "dropped": [int(r["dropped"]) for r in mine],
            "python": sys.version.split()[0],
        }
        python, tried = find_python(args.python, folder)
        other: dict[str, object]
        if python is None:
            other = {"skipped": "no Python >= 3.13 could be had here: " + "; ".join(tried)}
        else:
            other = theirs(python, folder, args.records, args.runs)
    result: dict[str, object] = {
        "bench": "obs_vs_observabilipy",
        "what": "log records/s through the stdlib logging handler into SQLite, until stored",
        "records": args.records,
        "runs": args.runs,
        "ours": ours_summary,
        "observabilipy": other,
    }
    speed = other.get("records_per_s")
    if isinstance(speed, int | float) and speed > 0:
        result["ratio"] = round(ours_summary["records_per_s"] / speed, 1)  # type: ignore[operator]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
