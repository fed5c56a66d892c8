// Beamwarden dashboard charts over uPlot. No inline script (CSP): everything comes from data-*.
//
// <figure class="chart" data-series-url="/ui/series?sensor_id=…&field=…"> is drawn from the JSON
// the URL answers: {t, avg, min, max, since, until, bucket_s} — times in epoch seconds, values
// with nulls at gaps — as a mean line over a min/max band (or, with band "garwood", over lo/hi:
// the exact Poisson interval of a Geiger counter's rate). The request carries the plot's width
// in pixels (the server sizes the buckets to it) and the page's range: a [data-chart-range] bar
// with buttons (data-range-button="1h" …) and a custom from/to form drives every chart of the page.
// A chart refetches when its range changes, or when it grows much wider than the data it has.
// Each drawing leaves marks for tests and benchmarks: data-fetches, data-draws, data-drawn-at
// (performance.now()) and a performance mark "bw:chart-drawn".
"use strict";

(function () {
  const charts = [...document.querySelectorAll(".chart[data-series-url]")];
  const bar = document.querySelector("[data-chart-range]");
  let range = { range: bar ? bar.dataset.range || "24h" : "24h" };
  // a link may choose the range: ?range=7d, or ?since=…&until=… (epoch seconds)
  const asked = new URLSearchParams(location.search);
  if (/^[1-9][0-9]{0,3}[mhd]$/.test(asked.get("range") || "")) {
    range = { range: asked.get("range") };
  } else if (asked.get("since") && asked.get("until")) {
    range = { since: Number(asked.get("since")), until: Number(asked.get("until")) };
  }
  const MIN_W = 16, MAX_W = 4000;

  function css(name, fallback) {
    const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function heightFor(width) { return width < 500 ? 170 : 220; }

  function plotWidth(el) {
    const w = Math.round(el.querySelector(".chart-plot").clientWidth || el.clientWidth || 300);
    return Math.max(MIN_W, Math.min(MAX_W, w));
  }

  function urlFor(el, width) {
    const p = new URLSearchParams();
    p.set("width", String(width));
    if (range.since != null) {
      p.set("since", String(range.since));
      p.set("until", String(range.until));
    } else {
      p.set("range", range.range);
    }
    const base = el.dataset.seriesUrl;
    return base + (base.includes("?") ? "&" : "?") + p.toString();
  }

  function say(el, text) { el.querySelector(".chart-status").textContent = text; }

  function bucketText(s) {
    if (s % 86400 === 0) return s / 86400 + " d";
    if (s % 3600 === 0) return s / 3600 + " h";
    if (s % 60 === 0) return s / 60 + " min";
    return s + " s";
  }

  function options(el, width) {
    const accent = css("--accent", "#2358c4");
    const mute = css("--mute", "#6b7485");
    const line = css("--line", "#dde1e7");
    const unit = el.dataset.unit || "";
    const axis = { stroke: mute, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
    return {
      width: width,
      height: heightFor(width),
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => [el._since, el._until] },
      },
      series: [
        {},
        { label: "min", stroke: "transparent", width: 0, points: { show: false } },
        { label: "mean", stroke: accent, width: 1.5, points: { show: false }, value: (u, v) => fmt(v, unit) },
        { label: "max", stroke: "transparent", width: 0, points: { show: false } },
      ],
      bands: [{ series: [3, 1], fill: "rgba(120, 150, 220, 0.25)" }],
      axes: [axis, Object.assign({ size: 56 }, axis)],
      hooks: {
        draw: [() => {
          el.dataset.draws = String(Number(el.dataset.draws || 0) + 1);
          el.dataset.drawnAt = String(performance.now());
          performance.mark("bw:chart-drawn");
        }],
      },
    };
  }

  function fmt(v, unit) {
    if (v == null) return "—";
    const a = Math.abs(v);
    const s = a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(3);
    return unit ? s + " " + unit : s;
  }

  async function load(el) {
    const seq = (el._seq || 0) + 1;
    el._seq = seq;
    const width = plotWidth(el);
    const url = urlFor(el, width);
    el.dataset.fetches = String(Number(el.dataset.fetches || 0) + 1);
    el.dataset.lastUrl = url;
    el.classList.add("loading");
    let body;
    try {
      const res = await fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } });
      if (res.status === 401) {
        window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
        return;
      }
      body = await res.json();
      if (!res.ok) {
        if (seq === el._seq) say(el, (body.error && body.error.message) || "could not load the series");
        return;
      }
    } catch (e) {
      if (seq === el._seq) say(el, "could not load the series");
      return;
    } finally {
      if (seq === el._seq) el.classList.remove("loading");
    }
    if (seq !== el._seq) return; // a newer request is on its way
    el._since = body.since;
    el._until = body.until;
    el._width = width;
    // a Garwood band (a Geiger counter's rate) replaces the min/max band
    const exact = body.band === "garwood";
    const data = exact ? [body.t, body.lo, body.avg, body.hi] : [body.t, body.min, body.avg, body.max];
    say(el, body.points ? body.points + " buckets of " + bucketText(body.bucket_s) : "no data in this range");
    if (!el._plot) {
      const target = el.querySelector(".chart-plot");
      const opts = options(el, width);
      if (exact) {
        const pct = Math.round((body.confidence || 0.95) * 100) + " %";
        opts.series[1].label = "low " + pct;
        opts.series[3].label = "high " + pct;
      }
      el._plot = new uPlot(opts, data, target);
    } else {
      el._plot.setData(data);
    }
  }

  function reloadAll() { charts.forEach(load); }

  function setActive(value) {
    if (!bar) return;
    for (const b of bar.querySelectorAll("[data-range-button]")) {
      const on = b.dataset.rangeButton === value;
      b.classList.toggle("active", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    }
  }

  if (bar) {
    setActive(range.range || null);
    bar.addEventListener("click", (ev) => {
      const b = ev.target.closest("[data-range-button]");
      if (!b) return;
      range = { range: b.dataset.rangeButton };
      bar.dataset.range = range.range;
      setActive(range.range);
      reloadAll();
    });
    const custom = bar.querySelector("[data-range-custom]");
    if (custom) {
      custom.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const since = new Date(custom.elements.from.value).getTime() / 1000;
        const until = new Date(custom.elements.to.value).getTime() / 1000;
        if (!isFinite(since) || !isFinite(until) || since >= until) {
          custom.classList.add("invalid");
          return;
        }
        custom.classList.remove("invalid");
        range = { since: Math.floor(since), until: Math.ceil(until) };
        bar.dataset.range = "custom";
        setActive(null);
        reloadAll();
      });
    }
  }

  // keep each plot as wide as its box; fetch again when it has grown well past its data
  if (window.ResizeObserver) {
    const observer = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const el = entry.target.closest(".chart");
        if (!el || !el._plot) continue;
        const width = plotWidth(el);
        el._plot.setSize({ width: width, height: heightFor(width) });
        clearTimeout(el._resizeTimer);
        if (width > el._width * 1.25) el._resizeTimer = setTimeout(() => load(el), 300);
      }
    });
    charts.forEach((el) => observer.observe(el.querySelector(".chart-plot")));
  }

  // a <select data-submit-on-change> submits its form (the Geiger window)
  for (const select of document.querySelectorAll("select[data-submit-on-change]")) {
    select.addEventListener("change", () => select.form.submit());
  }

  if (typeof uPlot === "undefined") {
    charts.forEach((el) => say(el, "the chart library did not load"));
    return;
  }
  reloadAll();
})();
