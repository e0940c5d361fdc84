// The responder app's service worker: it keeps the app shell so /responder opens with no network,
// and it is what wakes a locked phone: on a Web Push it shows a notification that stays until
// answered, sends the receipt, and answers Accept / Decline from the notification's buttons with no
// page open. The push payload is `dispatch.frames.alert_frame` (category, distance, ETA, approximate
// place): the exact place is never in it, and the notification never shows more than the payload.
//
// Language: the notification speaks the language the page shows (the page keeps its choice in
// IndexedDB as "lang", see responder.js), from the same catalogues as the pages (/static/i18n/).
//
// Authentication: the worker answers with the responder's token, which the page keeps in IndexedDB
// when the person signs in (see keep.js), or with the alert's one-time code when the payload has one.

importScripts("/static/keep.js");

const CACHE = "rescue-responder-shell-v4";
const PAGE = "/responder";
const SHELL = [
  PAGE,
  "/responder.webmanifest",
  "/v1/web/config",
  "/static/keep.js",
  "/static/common.css",
  "/static/responder.css",
  "/static/responder.js",
  "/static/lib/api.js",
  "/static/lib/datum.js",
  "/static/lib/map.js",
  "/static/lib/i18n.js",
  "/static/lib/html.js",
  "/static/lib/when.js",
  "/static/lib/debrief.js",
  "/static/lib/privacy.js",
  "/static/lib/service-panel.js",
  "/static/service-panel.css",
  "/static/aftercare.css",
  "/static/lib/arrival.js",
  "/static/arrival.css",
  "/static/i18n/zh-CN.json",
  "/static/i18n/en.json",
  "/static/vendor/leaflet/leaflet.css",
  "/static/vendor/leaflet/leaflet.js",
  "/static/icons/responder-192.png",
  "/static/icons/responder-512.png",
  "/static/icons/badge-96.png",
];
const NETWORK_WAIT_MS = 3000; // a phone in a lift: after this, show the kept copy rather than wait
const VIBRATE = [500, 200, 500, 200, 1000, 400, 500, 200, 500];
const LANGUAGES = ["zh-CN", "en"];

// --- the app shell ------------------------------------------------------------------------------
self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

function shellKey(request) {
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return null;
  if (request.mode === "navigate" && url.pathname === PAGE) return PAGE; // ?alert=… opens the same page
  return SHELL.includes(url.pathname) ? url.pathname : null;
}

// Network first (a new deployment shows at once, as the pages' no-cache promises), the kept copy
// when the network fails or is too slow; every good answer refreshes the kept copy.
async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  const fresh = fetch(request).then(async (response) => {
    if (response.ok) await cache.put(key, response.clone());
    return response;
  });
  const slow = new Promise((resolve) => setTimeout(resolve, NETWORK_WAIT_MS, null));
  const first = await Promise.race([fresh.catch(() => null), slow]);
  if (first) return first;
  const kept = await cache.match(key);
  return kept || fresh;
}

self.addEventListener("fetch", (event) => {
  const key = shellKey(event.request);
  if (key) event.respondWith(networkFirst(event.request, key));
});

// --- talking to the service ---------------------------------------------------------------------
async function authHeaders(frame) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const token = await self.rescueKeep.get("token");
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (frame.code) headers["X-Alert-Code"] = frame.code;
  return headers;
}

async function post(path, frame, body) {
  const response = await fetch(path, { method: "POST", headers: await authHeaders(frame), body: JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `HTTP ${response.status}`;
    throw new Error(detail);
  }
  return data;
}

async function tellPages(message) {
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const page of pages) page.postMessage(message);
}

// --- words: the page's language, the pages' catalogues --------------------------------------------
// The worker cannot import the pages' lib/i18n.js (a classic worker, for keep.js), so it fills the
// same catalogues' {placeholders} here; the catalogue comes from the kept shell when offline.
async function catalogue() {
  const kept = await self.rescueKeep.get("lang").catch(() => null);
  const lang = LANGUAGES.includes(kept) ? kept : "en";
  const path = `/static/i18n/${lang}.json`;
  // the kept copy first: a ringing phone must not wait on the network (pages' fetches refresh it)
  const response = (await caches.match(path)) || (await fetch(path));
  const messages = await response.json();
  const number = (value, digits = 0) => new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
  const t = (key, params = {}) => (messages[key] ?? key).replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  const distance = (m) => (m >= 1000 ? t("unit.km", { n: number(m / 1000, 1) }) : t("unit.m", { n: number(Math.round(m)) }));
  const term = (group, code) => messages[`${group}.${code}`] ?? String(code).replaceAll("_", " ");
  return { t, number, distance, term };
}

// --- push: show the alert, then confirm it was shown -----------------------------------------
const capitalised = (text) => text.charAt(0).toUpperCase() + text.slice(1);

function alertWords(words, frame) {
  const { t, number, distance, term } = words;
  const quoted = (aed) => (aed ? ` “${aed.name}”` : "");
  // roles are decided at the accept: before it, the AED is a maybe (alerts decided at sending say it)
  const task =
    frame.role === "fetch_aed"
      ? t("task.fetch_aed", { aed: quoted(frame.aed) })
      : frame.role !== "cpr" && frame.may_fetch_aed
        ? t("task.may_fetch_aed", { aed: quoted(frame.aed_option) })
        : t("task.cpr");
  return {
    title: t("push.title", { category: capitalised(term("category", frame.category)), distance: distance(frame.distance_m) }),
    body: t("push.body", { minutes: number(Math.max(1, Math.round(frame.eta_s / 60))), task }),
  };
}

function alertOptions(words, frame, body) {
  return {
    body,
    tag: frame.alert_id, // a resend replaces the notification instead of stacking a second one
    renotify: true, // ...and still rings and vibrates again
    requireInteraction: true, // stays until answered
    vibrate: VIBRATE,
    icon: "/static/icons/responder-192.png",
    badge: "/static/icons/badge-96.png",
    timestamp: Date.now(),
    data: { kind: "alert", frame },
    actions: [
      { action: "accept", title: words.t("push.accept") },
      { action: "decline", title: words.t("push.decline") },
    ],
  };
}

async function onPushedAlert(frame) {
  await self.rescueKeep.putAlert(frame);
  const words = await catalogue();
  const text = alertWords(words, frame);
  await self.registration.showNotification(text.title, alertOptions(words, frame, text.body));
  await tellPages({ type: "alert", frame });
  await post(`/v1/alerts/${frame.alert_id}/received`, frame, { channel: "push" }).catch((err) =>
    console.warn(`receipt for ${frame.alert_id} not sent: ${err.message}`),
  );
}

async function onPushedCancel(frame) {
  await self.rescueKeep.dropAlert(frame.alert_id);
  for (const n of await self.registration.getNotifications({ tag: frame.alert_id })) n.close();
  await tellPages({ type: "cancel", alert_id: frame.alert_id, reason: frame.reason });
}

async function onPush(frame) {
  if (frame && frame.type === "alert" && new Date(frame.expires_at) > Date.now()) return onPushedAlert(frame);
  if (frame && frame.type === "cancel") return onPushedCancel(frame);
  // a push must show something (browsers penalise silent pushes): say it, without detail
  const { t } = await catalogue();
  return self.registration.showNotification(t("responder.heading"), { body: t("push.ended"), tag: "rescue-info", icon: "/static/icons/responder-192.png" });
}

self.addEventListener("push", (event) => {
  let frame = null;
  try {
    frame = event.data ? event.data.json() : null;
  } catch {
    frame = null;
  }
  event.waitUntil(onPush(frame));
});

// --- answering from the notification ------------------------------------------------------------
async function openAlert(alertId) {
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const page = pages.find((p) => new URL(p.url).pathname === PAGE);
  if (page) {
    page.postMessage({ type: "show-alert", alert_id: alertId });
    return page.focus().catch(() => page); // focusing needs a real click; the message is what matters
  }
  return self.clients.openWindow(`${PAGE}?alert=${encodeURIComponent(alertId)}`);
}

async function answer(notification, frame, response) {
  const words = await catalogue();
  let result;
  try {
    result = await post(`/v1/alerts/${frame.alert_id}/answer`, frame, { response });
  } catch (err) {
    // keep the buttons: the person can try again (or open the app) — the alert is not answered
    const text = alertWords(words, frame);
    return self.registration.showNotification(text.title, alertOptions(words, frame, words.t("push.not_sent", { reason: err.message, body: text.body })));
  }
  await self.rescueKeep.dropAlert(frame.alert_id);
  notification.close();
  const incident = result && result.incident;
  await tellPages({ type: "answered", alert_id: frame.alert_id, response, incident: incident || null });
  if (response !== "accept" || !incident) return undefined;
  await self.rescueKeep.put("mission", incident);
  const where = incident.address || `${incident.lat.toFixed(5)}, ${incident.lng.toFixed(5)}`;
  return self.registration.showNotification(words.t("push.go_now", { where }), {
    body: incident.role === "fetch_aed" && incident.aed ? words.t("push.go_fetch", { name: incident.aed.name }) : words.t("push.go_patient"),
    tag: frame.alert_id,
    requireInteraction: true,
    icon: "/static/icons/responder-192.png",
    badge: "/static/icons/badge-96.png",
    data: { kind: "mission", alert_id: frame.alert_id },
  });
}

// One handler for a real click and for tests (a headless browser cannot click a system
// notification; tests call this same function inside the worker with the notification it showed).
self.onNotificationClick = async function onNotificationClick(notification, action) {
  const data = notification.data || {};
  if (data.kind === "alert" && (action === "accept" || action === "decline")) return answer(notification, data.frame, action);
  const alertId = data.kind === "alert" ? data.frame.alert_id : data.alert_id;
  if (data.kind === "mission") notification.close(); // the page shows the mission from now on
  return alertId ? openAlert(alertId) : undefined;
};

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(self.onNotificationClick(event.notification, event.action));
});
