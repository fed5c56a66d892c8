// Beamwarden dashboard: live panels without page reloads. No framework, no inline script (CSP).
// An element with data-refresh-url is re-fetched every body[data-refresh-ms] milliseconds (with the
// query of the form named by data-refresh-query) and its content replaced. Forms marked
// data-live-target refresh that panel as the user types, keeping the URL in step.
"use strict";

(function () {
  const body = document.body;
  const every = Number(body.dataset.refreshMs || 5000);

  function queryOf(panel) {
    const sel = panel.dataset.refreshQuery;
    const form = sel ? document.querySelector(sel) : null;
    if (!form) return window.location.search.replace(/^\?/, "");
    const params = new URLSearchParams(new FormData(form));
    for (const [k, v] of [...params.entries()]) if (!v) params.delete(k);
    const after = new URLSearchParams(window.location.search).get("after");
    if (after && !panel.dataset.resetPage) params.set("after", after);
    return params.toString();
  }

  async function refresh(panel) {
    if (panel.dataset.busy) return;
    panel.dataset.busy = "1";
    try {
      const q = queryOf(panel);
      const url = panel.dataset.refreshUrl + (q ? "?" + q : "");
      const res = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (res.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search)); return; }
      if (!res.ok) { panel.classList.add("stale"); return; }
      panel.classList.remove("stale");
      const html = await res.text();
      if (panel.innerHTML !== html) panel.innerHTML = html;
      panel.dispatchEvent(new CustomEvent("bw:refreshed", { bubbles: true }));
    } catch (e) {
      panel.classList.add("stale");
    } finally {
      delete panel.dataset.busy;
    }
  }

  const panels = [...document.querySelectorAll("[data-refresh-url]")];
  if (panels.length && every > 0) {
    setInterval(() => { if (!document.hidden) panels.forEach(refresh); }, every);
  }

  for (const form of document.querySelectorAll("form[data-live-target]")) {
    const panel = document.getElementById(form.dataset.liveTarget);
    let timer = null;
    const go = () => {
      const params = new URLSearchParams(new FormData(form));
      for (const [k, v] of [...params.entries()]) if (!v) params.delete(k);
      history.replaceState(null, "", params.toString() ? "?" + params : location.pathname);
      panel.dataset.resetPage = "1";
      refresh(panel).then(() => delete panel.dataset.resetPage);
    };
    form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(go, 250); });
    form.addEventListener("submit", (ev) => { ev.preventDefault(); go(); });
  }

  // Buttons that ask before they act: <button data-confirm="Really?">
  document.addEventListener("click", (ev) => {
    const el = ev.target.closest("[data-confirm]");
    if (el && !window.confirm(el.dataset.confirm)) ev.preventDefault();
  });
})();
