// First-party beacon: records impressions and clicks of recommended items and add-to-cart
// clicks, and sends them in batches to the events API. Plain ES2017, no dependencies.
// Without a token (no consent) it records nothing.
(function () {
  "use strict";

  const FLUSH_EVERY_MS = 5000;
  // sendBeacon payloads are capped (about 64 KiB per page); small batches stay well under.
  const MAX_BATCH = 50;
  const ALLOWED_TYPES = ["impression", "click", "add_to_cart"];
  const ITEM_SELECTOR = "[data-pp-item][data-pp-placement]:not([data-pp-event])";

  function meta(name) {
    const element = document.querySelector('meta[name="' + name + '"]');
    return element ? element.getAttribute("content") || "" : "";
  }

  const token = meta("pp-beacon-token");
  const url = meta("pp-beacon-url") || "/api/events/";

  if (!token) {
    window.ppBeacon = {
      enabled: false,
      track: function () { return null; },
      flush: function () { return false; },
    };
    return;
  }

  function randomUUID() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    const bytes = new Uint8Array(16);
    if (c && typeof c.getRandomValues === "function") {
      c.getRandomValues(bytes);
    } else {
      for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return (
      hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" +
      hex.slice(16, 20) + "-" + hex.slice(20)
    );
  }

  function sessionId() {
    try {
      let id = window.sessionStorage.getItem("pp-session");
      if (!id) {
        id = randomUUID();
        window.sessionStorage.setItem("pp-session", id);
      }
      return id;
    } catch (error) {
      return ""; // storage disabled: events still count, just without a session
    }
  }

  const session = sessionId();
  let queue = [];
  let timer = null;

  function track(type, item, placement, extraContext) {
    if (ALLOWED_TYPES.indexOf(type) === -1 || !item) return null;
    const event = {
      event_id: randomUUID(),
      type: type,
      item: String(item),
      placement: String(placement || "").slice(0, 64),
      session_id: session,
      timestamp: new Date().toISOString(),
      context: Object.assign({ page: window.location.pathname }, extraContext || {}),
    };
    queue.push(event);
    if (queue.length >= MAX_BATCH) {
      flush();
    } else if (timer === null) {
      timer = window.setTimeout(flush, FLUSH_EVERY_MS);
    }
    return event;
  }

  function send(events) {
    const body = JSON.stringify({ token: token, events: events });
    if (navigator.sendBeacon) {
      try {
        if (navigator.sendBeacon(url, new Blob([body], { type: "application/json" }))) {
          return true;
        }
      } catch (error) {
        // Some browsers refuse non-form Blob types here: fall through to fetch.
      }
    }
    if (window.fetch) {
      window.fetch(url, {
        method: "POST",
        body: body,
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        keepalive: true,
      }).catch(function () {
        // Best effort: analytics must never break the page.
      });
      return true;
    }
    return false;
  }

  function flush() {
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    let sent = true;
    while (queue.length) {
      const batch = queue.slice(0, MAX_BATCH);
      if (!send(batch)) {
        sent = false;
        break; // keep them; event_ids make a later resend safe
      }
      queue = queue.slice(batch.length);
    }
    return sent;
  }

  // Recommended items say which model version put them where; those ride along.
  function recommendationContext(element) {
    const data = element.dataset;
    if (!data.ppRank) return {};
    const version = parseInt(data.ppVersion || "", 10);
    return {
      model: data.ppModel || "",
      model_version: Number.isFinite(version) ? version : null,
      rank: parseInt(data.ppRank, 10) || null,
    };
  }

  function remember(item, placement, context) {
    try {
      window.sessionStorage.setItem(
        "pp-rec:" + item, JSON.stringify({ placement: placement, context: context })
      );
    } catch (error) {
      // storage disabled: the add-to-cart is still logged, only not credited
    }
  }

  function remembered(item) {
    try {
      const value = JSON.parse(window.sessionStorage.getItem("pp-rec:" + item) || "null");
      return value && typeof value.placement === "string" ? value : null;
    } catch (error) {
      return null;
    }
  }

  // Impressions: once per element, when at least half of it has been on screen.
  const seen = new WeakSet();
  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        const element = entry.target;
        if (!entry.isIntersecting || entry.intersectionRatio < 0.5 || seen.has(element)) return;
        seen.add(element);
        observer.unobserve(element);
        track(
          "impression", element.dataset.ppItem, element.dataset.ppPlacement,
          recommendationContext(element)
        );
      });
    }, { threshold: 0.5 })
    : null;

  function observe(root) {
    if (!observer || !root.querySelectorAll) return;
    if (root.matches && root.matches(ITEM_SELECTOR)) observer.observe(root);
    root.querySelectorAll(ITEM_SELECTOR).forEach(function (element) {
      if (!seen.has(element)) observer.observe(element);
    });
  }

  function start() {
    observe(document);
    if (observer && "MutationObserver" in window) {
      // Recommendation blocks may be added after load.
      new MutationObserver(function (mutations) {
        mutations.forEach(function (mutation) {
          mutation.addedNodes.forEach(function (node) {
            if (node.nodeType === 1) observe(node);
          });
        });
      }).observe(document.body, { childList: true, subtree: true });
    }
  }

  document.addEventListener("click", function (event) {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const cart = target.closest('[data-pp-event="add_to_cart"]');
    if (cart) {
      // Credit the recommendation that led here, if one did in this session.
      const origin = remembered(cart.dataset.ppItem);
      track(
        "add_to_cart", cart.dataset.ppItem,
        origin ? origin.placement : cart.dataset.ppPlacement, origin ? origin.context : {}
      );
      return;
    }
    const card = target.closest("[data-pp-item]");
    if (card && !card.hasAttribute("data-pp-event")) {
      const context = recommendationContext(card);
      track("click", card.dataset.ppItem, card.dataset.ppPlacement, context);
      if (context.rank) remember(card.dataset.ppItem, card.dataset.ppPlacement, context);
    }
  }, true);

  // The last chance to send before the page goes away (bfcache-friendly: no unload).
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush();
  });
  window.addEventListener("pagehide", flush);

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }

  window.ppBeacon = { enabled: true, track: track, flush: flush };
})();
