// Embeddable recommendation widget: fills <div data-recs-placement="..."> elements with
// cards from the recommendations API, on the platform's own pages or on another site.
// Plain ES2017, no dependencies. API data only ever reaches the page as text nodes and
// checked URLs: titles are scraped text.
(function () {
  "use strict";

  if (window.ppRecommendations) return; // the snippet was pasted twice

  const SELECTOR = "[data-recs-placement]";
  const PLACEMENTS = ["home", "item", "category", "email"];
  const DEFAULT_K = 8;
  const MAX_K = 50;
  const TIMEOUT_MS = 8000;
  const STYLE_ID = "pp-recs-style";
  // Low specificity (one class each) and inserted first in <head>: host styles win.
  const CSS = [
    ".pp-recs{display:block;margin:0 0 1.5em}",
    ".pp-recs-title{font-size:1.15em;margin:0 0 .6em}",
    ".pp-recs-list{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));",
    "gap:16px;list-style:none;margin:0;padding:0}",
    ".pp-recs-card{margin:0;min-width:0}",
    ".pp-recs-link{display:block;color:inherit;text-decoration:none}",
    ".pp-recs-image,.pp-recs-placeholder{display:block;width:100%;aspect-ratio:2/3;",
    "object-fit:cover;border-radius:4px;background:#eee}",
    ".pp-recs-placeholder{display:flex;align-items:center;justify-content:center;",
    "font-size:2em;color:#999}",
    ".pp-recs-name{display:block;font-weight:600;margin-top:.4em;overflow-wrap:anywhere}",
    ".pp-recs-price{display:block;margin-top:.2em}",
    ".pp-recs-reason{display:block;margin-top:.2em;font-size:.85em;opacity:.75}",
  ].join("");

  // By default the API lives where this script was loaded from.
  const script = document.currentScript;
  const defaultApi = new URL(
    "/api/recommendations/", script && script.src ? script.src : window.location.href
  ).href;

  const generation = new WeakMap(); // element -> number of its latest render()
  let warned = false;

  function warnOnce(message, detail) {
    if (warned || !window.console) return;
    warned = true;
    window.console.warn("[pp-recs] " + message + " (fallback content kept)", detail || "");
  }

  function safeUrl(value, base) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value, base);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  function requestUrl(element) {
    const data = element.dataset;
    const placement = data.recsPlacement || "";
    if (PLACEMENTS.indexOf(placement) === -1) {
      throw new Error("unknown data-recs-placement " + JSON.stringify(placement));
    }
    const api = safeUrl(data.recsApi || defaultApi, window.location.href);
    if (!api) throw new Error("data-recs-api must be an http(s) URL");
    const url = new URL(api);
    const k = parseInt(data.recsK || "", 10);
    url.searchParams.set("placement", placement);
    url.searchParams.set(
      "k", String(Number.isFinite(k) ? Math.min(Math.max(k, 1), MAX_K) : DEFAULT_K)
    );
    if (data.recsItem) url.searchParams.set("item", data.recsItem);
    if (data.recsCategory) url.searchParams.set("category", data.recsCategory);
    return url.href;
  }

  function fetchJson(url) {
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timer = controller
      ? window.setTimeout(function () { controller.abort(); }, TIMEOUT_MS)
      : null;
    function stopTimer() {
      if (timer !== null) window.clearTimeout(timer);
    }
    return window.fetch(url, {
      method: "GET",
      credentials: "include", // the platform's visitor cookie, where the browser sends it
      headers: { Accept: "application/json" },
      signal: controller ? controller.signal : undefined,
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status + " from " + url);
      return response.json();
    }).then(function (payload) {
      stopTimer();
      return payload;
    }, function (error) {
      stopTimer();
      throw error;
    });
  }

  function injectStyles() {
    if (document.getElementById(STYLE_ID)) return;
    const style = document.createElement("style");
    style.id = STYLE_ID;
    style.textContent = CSS;
    const head = document.head || document.documentElement;
    head.insertBefore(style, head.firstChild);
  }

  function node(tag, className, text) {
    const element = document.createElement(tag);
    element.className = className;
    if (text) element.textContent = text;
    return element;
  }

  function price(item) {
    if (item.price === null || item.price === undefined || item.price === "") return null;
    const amount = Number(item.price);
    const line = node("span", "pp-recs-price");
    const text = Number.isFinite(amount) ? amount.toFixed(2) : String(item.price);
    line.appendChild(node("span", "pp-recs-amount", text));
    if (item.currency) {
      line.appendChild(document.createTextNode(" "));
      line.appendChild(node("span", "pp-recs-currency", String(item.currency)));
    }
    return line;
  }

  function card(item, section, base) {
    const title = String(item.title || "");
    const source = item.source || {};
    const href = safeUrl(item.url, base);
    const link = node(href ? "a" : "div", "pp-recs-link");
    if (href) link.href = href;
    // What the beacon reads to credit impressions and clicks to this recommendation.
    link.dataset.ppItem = String(item.id);
    link.dataset.ppPlacement = section;
    link.dataset.ppRank = String(item.rank || "");
    link.dataset.ppModel = String(source.model || "");
    const version = source.version;
    link.dataset.ppVersion = version === null || version === undefined ? "" : String(version);
    const image = safeUrl(item.image_url, base);
    if (image) {
      const img = node("img", "pp-recs-image");
      img.src = image;
      img.alt = "";
      img.loading = "lazy";
      img.decoding = "async";
      link.appendChild(img);
    } else {
      const placeholder = node("span", "pp-recs-placeholder", title.charAt(0).toUpperCase());
      placeholder.setAttribute("aria-hidden", "true");
      link.appendChild(placeholder);
    }
    link.appendChild(node("span", "pp-recs-name", title));
    const amount = price(item);
    if (amount) link.appendChild(amount);
    if (item.reason) link.appendChild(node("span", "pp-recs-reason", String(item.reason)));
    const entry = node("li", "pp-recs-card");
    entry.appendChild(link);
    return entry;
  }

  function build(element, payload, base) {
    const items = payload && Array.isArray(payload.items) ? payload.items : [];
    if (!items.length) return null;
    const section = String(payload.section || payload.placement || "");
    const fragment = document.createDocumentFragment();
    // data-recs-title overrides the API's heading; data-recs-title="" hides it.
    const heading = element.hasAttribute("data-recs-title")
      ? element.getAttribute("data-recs-title")
      : String(payload.title || "");
    if (heading) fragment.appendChild(node("h2", "pp-recs-title", heading));
    const list = node("ul", "pp-recs-list");
    items.forEach(function (item) {
      if (item && item.id !== undefined && item.id !== null) {
        list.appendChild(card(item, section, base));
      }
    });
    fragment.appendChild(list);
    element.dataset.recsSection = section;
    return fragment;
  }

  // Resolves true when cards were rendered; never rejects, never throws.
  function render(element) {
    if (!element || element.nodeType !== 1) return Promise.resolve(false);
    const mine = (generation.get(element) || 0) + 1;
    generation.set(element, mine);
    element.dataset.recsState = "loading";
    let url;
    try {
      if (!window.fetch) throw new Error("this browser has no fetch()");
      url = requestUrl(element);
    } catch (error) {
      element.dataset.recsState = "failed";
      warnOnce(error.message);
      return Promise.resolve(false);
    }
    return fetchJson(url).then(function (payload) {
      if (generation.get(element) !== mine) return false; // a newer render() owns it
      const content = build(element, payload, url);
      if (!content) {
        element.dataset.recsState = "empty";
        return false;
      }
      injectStyles();
      while (element.firstChild) element.removeChild(element.firstChild);
      element.appendChild(content);
      element.classList.add("pp-recs");
      element.dataset.recsState = "rendered";
      return true;
    }).catch(function (error) {
      if (generation.get(element) === mine) element.dataset.recsState = "failed";
      warnOnce("could not load recommendations", error);
      return false;
    });
  }

  function renderAll(root) {
    const scope = root && root.querySelectorAll ? root : document;
    const found = Array.prototype.slice.call(scope.querySelectorAll(SELECTOR));
    if (scope.matches && scope.matches(SELECTOR)) found.unshift(scope);
    return Promise.all(found.filter(function (element) {
      return !element.dataset.recsState;
    }).map(render));
  }

  window.ppRecommendations = { render: render, renderAll: renderAll };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { renderAll(document); });
  } else {
    renderAll(document);
  }
})();
