// Baton dashboard: times in the reader's timezone, live elapsed times, and error notices for
// htmx requests. Plain JS, no framework; htmx does the rest.
(function () {
  "use strict";
  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"], [4.35, "week"], [12, "month"], [Infinity, "year"]];

  function ago(date) {
    let value = (date.getTime() - Date.now()) / 1000;
    for (const [size, unit] of steps) {
      if (Math.abs(value) < size) return relative.format(Math.round(value), unit);
      value /= size;
    }
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s";
    const m = Math.floor(seconds / 60), s = seconds % 60;
    if (m < 60) return m + " min " + String(s).padStart(2, "0") + " s";
    return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
  }

  function localize(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) continue;
      el.title = full.format(date);
      el.textContent = el.dataset.style === "relative" ? ago(date) : dateTime.format(date);
    }
  }

  // Sizes and depths come as data attributes, set here through the CSSOM: the
  // Content-Security-Policy allows no inline style attribute (docs/security.md).
  function size(root) {
    const each = (selector, apply) => {
      if (root.matches && root.matches(selector)) apply(root);
      for (const el of root.querySelectorAll(selector)) apply(el);
    };
    const percent = (value) => Math.min(100, Math.max(0, parseFloat(value) || 0)) + "%";
    each("[data-width]", (el) => { el.style.width = percent(el.dataset.width); });
    each("[data-left]", (el) => { el.style.marginLeft = percent(el.dataset.left); });
    each("[data-depth]", (el) => { el.style.setProperty("--depth", String(parseInt(el.dataset.depth, 10) || 0)); });
  }

  function tick() {
    for (const el of document.querySelectorAll("[data-running-since]")) {
      el.textContent = duration((Date.now() - new Date(el.dataset.runningSince)) / 1000);
    }
    for (const el of document.querySelectorAll('time[data-style="relative"]')) {
      el.textContent = ago(new Date(el.getAttribute("datetime")));
    }
  }

  function say(message) {
    const box = document.getElementById("notice");
    if (!box) return;
    const p = document.createElement("p");
    p.className = "notice notice-error";
    p.textContent = "⚠ " + message;
    box.replaceChildren(p);
  }

  // Live parts poll every second ("every 1s"), but not while the tab is hidden. (Here, not as an
  // htmx trigger filter: "[!document.hidden]" is evaluated as a string, which the CSP refuses.)
  document.addEventListener("htmx:beforeRequest", function (event) {
    const trigger = event.detail.elt && event.detail.elt.getAttribute("hx-trigger");
    if (document.hidden && trigger && trigger.trim().startsWith("every ")) event.preventDefault();
  });

  let offline = false;
  document.addEventListener("htmx:beforeSwap", function (event) {
    const xhr = event.detail.xhr;
    if (xhr.status >= 400 && xhr.getResponseHeader("HX-Retarget")) {
      // A refusal in words from Baton (403, 409): show it in the notice area.
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (xhr.status >= 400) {
      say("Baton answered " + xhr.status + " (" + (xhr.statusText || "error") + "). Reload the page; if it happens again, tell a Baton admin.");
    }
  });
  // A notice's "×" button removes it.
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest('[data-dismiss="notice"]');
    const notice = button && button.closest(".notice");
    if (notice) notice.remove();
  });

  // An action's notice comes out of band for #notice; should the button that asked have left the
  // page meanwhile (a poll replaced it), htmx finds no target from there: put it in the page's.
  document.addEventListener("htmx:oobErrorNoTarget", function (event) {
    const content = event.detail.content;
    const box = document.getElementById("notice");
    if (box && content && content.id === "notice") box.replaceChildren(...content.childNodes);
  });

  document.addEventListener("htmx:sendError", function () {
    offline = true;
    say("Baton cannot be reached right now; live updates resume by themselves when it is back.");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (offline && event.detail.successful) {
      offline = false;
      const box = document.getElementById("notice");
      if (box) box.replaceChildren();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
    size(document);
    if (window.htmx) window.htmx.onLoad(function (root) { localize(root); size(root); });
    setInterval(tick, 1000);
  });
})();
