// Beamwarden dashboard, admin pages: small helpers without inline script (CSP).
// A button with data-copy="#id" copies that element's text (a new API token) to the clipboard.
"use strict";

(function () {
  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    } catch (e) {
      button.textContent = "Select and copy it by hand";
    }
  });
})();
