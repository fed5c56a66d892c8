"""A 7-day 1 Hz series (604 800 readings) charted in the browser: time until the chart is drawn.

Figure (issue 8, "Figures and tests"): a 7-day 1 Hz chart renders in < 1 s in the browser.

One sensor gets a week of readings at 1 Hz ending now (written through the store's own
``write_readings`` in transactions of ``--batch``, then rolled up, like the rollup job would have
done as they arrived); a ``beamwarden serve`` subprocess serves the dashboard; Debian's Chromium
(Playwright, headless, 1280×900) logs in and opens the node's page. Two times, each the median of
``--runs``, in the page's own clock (``performance.now()``; charts.js stamps ``data-drawn-at`` in
uPlot's ``draw`` hook):

* ``navigation_ms``: from the start of navigation to ``/nodes/<node>?range=7d`` until the
  week's chart is drawn (HTML, uPlot, charts.js, the JSON sized to the chart's width, drawing);
* ``click_ms``: on the page showing 24 h, from the click on "7 d" until the week is drawn.

``series_ms`` is the median time of the week's ``/ui/series`` request (Resource Timing), the
server's share. Prints ONE JSON line; progress on stderr.

    .venv/bin/python bench/bench_dashboard_chart.py
    .venv/bin/python bench/bench_dashboard_chart.py --backends sqlite,postgresql --runs 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import _harness as h

NODE = "bench-node"
SENSOR = "week"
FIELD = "temperature_c"
DAYS = 7
BAR_MS = 1000.0
CHROMIUM = "/usr/bin/chromium"
CHART = f'.chart[data-series-url*="sensor_id={SENSOR}"]'


def _us(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


async def fill(url: str, end: datetime, batch: int) -> dict[str, Any]:
    """Write the week ending at ``end``, then roll it up; the seconds each took."""
    from beamwarden.protocol import Reading
    from beamwarden.server.records import ReadingBatch
    from beamwarden.server.store import StoreConfig, open_store, upgrade

    await asyncio.to_thread(upgrade, url)
    store = await open_store(StoreConfig(url, query_timeout=600.0))
    start = end - timedelta(days=DAYS)
    try:
        await store.create_node(NODE, "bench", _us(start))
        t0 = _us(start)
        total = DAYS * 86_400
        started = time.perf_counter()
        for first in range(0, total, batch):
            seconds = range(first, min(first + batch, total))
            times = [t0 + s * 1_000_000 for s in seconds]
            readings = [
                Reading(NODE, SENSOR, "climate", {FIELD: 20.0 + (s % 600) / 100}, None, f"w:{s}")
                for s in seconds
            ]
            await store.write_readings(
                [ReadingBatch(NODE, times[-1], readings, times, [0] * len(times))]
            )
        written = time.perf_counter() - started
        started = time.perf_counter()
        while await store.roll_up(_us(end) + 3_600_000_000, 20_000):
            pass
        rolled = time.perf_counter() - started
    finally:
        await store.close()
    return {"readings": total, "write_s": round(written, 1), "rollup_s": round(rolled, 1)}


def drawn_after(page: Any, draws: int, timeout_ms: float = 30_000) -> None:
    page.wait_for_function(
        "([sel, n]) => { const el = document.querySelector(sel);"
        " return el && Number(el.dataset.draws || 0) > n; }",
        arg=[CHART, draws],
        timeout=timeout_ms,
    )


def chart_attr(page: Any, name: str) -> str:
    value: str = page.eval_on_selector(CHART, f"el => el.dataset.{name} || ''")
    return value


def week_request_ms(page: Any) -> float | None:
    """The duration of the newest ``/ui/series`` request for the week (Resource Timing)."""
    value = page.evaluate(
        """() => { const e = performance.getEntriesByType('resource')
              .filter(r => r.name.includes('/ui/series') && r.name.includes('range=7d'));
              return e.length ? e[e.length - 1].duration : null; }"""
    )
    return None if value is None else float(value)


def measure(server: h.Server, password: str, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    base = server.base_url
    navigation: list[float] = []
    clicks: list[float] = []
    series: list[float] = []
    points = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(base + "/login")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            for i in range(runs + 1):  # the first of each is a warm-up
                page.goto(f"{base}/nodes/{NODE}?range=7d")
                drawn_after(page, 0)
                if i:
                    navigation.append(float(chart_attr(page, "drawnAt")))
                    if (ms := week_request_ms(page)) is not None:
                        series.append(ms)
                page.goto(f"{base}/nodes/{NODE}?range=24h")
                drawn_after(page, 0)
                draws = int(chart_attr(page, "draws"))
                started = page.evaluate(
                    "() => { const t = performance.now();"
                    " document.querySelector(\"[data-range-button='7d']\").click(); return t; }"
                )
                drawn_after(page, draws)
                if i:
                    clicks.append(float(chart_attr(page, "drawnAt")) - float(started))
                    if (ms := week_request_ms(page)) is not None:
                        series.append(ms)
                url = chart_attr(page, "lastUrl")
                week = page.evaluate(f"fetch({url!r}).then(r => r.json())")
                points = int(week["points"])
                if (
                    "range=7d" not in url
                    or points < 100
                    or points > int(url.split("width=")[1].split("&")[0])
                ):
                    raise h.BenchError(f"not the week's chart: {url}, {points} points")
            if errors:
                raise h.BenchError(f"console errors: {errors[:3]}")
        finally:
            browser.close()
    return {
        "navigation_ms": round(statistics.median(navigation), 1),
        "click_ms": round(statistics.median(clicks), 1),
        "series_ms": round(statistics.median(series), 1) if series else None,
        "navigation_max_ms": round(max(navigation), 1),
        "click_max_ms": round(max(clicks), 1),
        "points": points,
    }


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with h.database(backend) as db:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        h.log(f"dashboard_chart:{backend}: writing {DAYS * 86_400:,} readings, then rolling up")
        build = asyncio.run(fill(db.url, end, args.batch))
        h.log(f"dashboard_chart:{backend}: {build}")
        with h.serve(db) as server:
            password = h.cli(server.env, "users", "add", "bench", "--generate").strip()
            result = measure(server, password, args.runs)
    h.log(f"dashboard_chart:{backend}: {result}")
    worst = max(result["navigation_ms"], result["click_ms"])
    return {
        "median": result,
        "bars": {"navigation_ms": f"< {BAR_MS:g}", "click_ms": f"< {BAR_MS:g}"},
        "meets_bars": worst < BAR_MS,
        "build": build,
    }


def main(argv: Sequence[str] | None = None) -> int:
    h.install_signal_handlers()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backends", default="sqlite")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--batch", type=int, default=5000, help="readings per write transaction")
    args = p.parse_args(argv)
    backends = h.parse_backends(args.backends, ("sqlite", "postgresql"))
    result = h.header(
        "dashboard_chart",
        {"days": DAYS, "readings": DAYS * 86_400, "runs": args.runs, "viewport": "1280x900"},
    )
    result["results"] = {b: bench_backend(b, args) for b in backends}
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
