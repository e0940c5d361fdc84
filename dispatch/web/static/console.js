// Dispatcher console: the city map with responders and AEDs, opening an incident by clicking the
// map, the alerted responders with roles and ETAs, and every acceptance, arrival and escalation as
// it happens over the dispatcher websocket.

import { api, checkToken, onSubmit, shortId, storeToken, openSocket, resumeSession } from "./lib/api.js";
import { timelineHtml } from "./lib/arrival.js";
import { escapeHtml } from "./lib/html.js";
import { clock, distance, duration, loadLanguage, mountHelp, mountLanguageSwitch, t, term, translatePage, useTimeZone } from "./lib/i18n.js";
import { createMap, drawDistricts, loadConfig, pinIcon, reachRadiusM } from "./lib/map.js";
import { listClosed, showOutcome } from "./lib/outcome.js";

const SCREEN = "dispatcher";
const CATEGORY_STYLE = {
  sanitation_worker: ["#0b4f8a", "S"],
  city_inspector: ["#6a1b9a", "I"],
  park_security: ["#1b5e20", "P"],
  auxiliary_staff: ["#8a4b00", "X"],
  volunteer: ["#ad1457", "V"],
  medical_professional: ["#a4161a", "M"],
  other: ["#37474f", "O"],
};
const $ = (id) => document.getElementById(id);
const state = { token: null, config: null, map: null, selected: null, socket: null, names: new Map(), resolved: new Map(), considered: new Map(), retry: 0, aedAsk: 0, responderAsk: 0, shown: null };
// Below this zoom a whole city's AEDs (23,000 in the demo) would bury the map and the responders
// under pins, and one answer could only hold an arbitrary part of them: the console asks for AEDs
// from street level up, and clusters them until they can be told apart.
const AED_MIN_ZOOM = 13;
const layers = {};

function say(text) {
  $("status").textContent = text;
}
function fail(err) {
  $("error").textContent = err instanceof Error ? err.message : String(err);
}
function clearError() {
  $("error").textContent = "";
}
const call = (path, opts = {}) => api(path, { ...opts, token: state.token });
const crs = () => state.config.map_crs;

// --- map layers ---------------------------------------------------------------------------------
function setUpMap() {
  const map = createMap($("map"), state.config);
  state.map = map;
  layers.responders = L.markerClusterGroup({ maxClusterRadius: 45, disableClusteringAtZoom: 16 }).addTo(map);
  layers.aeds = L.markerClusterGroup({
    chunkedLoading: true,
    maxClusterRadius: 40,
    disableClusteringAtZoom: 16,
    showCoverageOnHover: false,
    iconCreateFunction: (cluster) => L.divIcon({ className: "pin aed-cluster", html: `<span>${cluster.getChildCount()}</span>`, iconSize: [30, 30] }),
  }).addTo(map);
  layers.incidents = L.layerGroup().addTo(map);
  layers.draft = L.layerGroup().addTo(map);
  map.on("click", (e) => placeDraft(e.latlng.lat, e.latlng.lng));
  map.on("moveend", () => Promise.all([refreshResponders(), refreshAeds()]).catch(fail));
  $("show-responders").addEventListener("change", (e) => toggle(layers.responders, e.target.checked));
  $("show-aeds").addEventListener("change", (e) => toggle(layers.aeds, e.target.checked));
  $("legend").innerHTML = Object.entries(CATEGORY_STYLE)
    .map(([name, [color, letter]]) => `<li><span class="pin" style="background:${color}">${letter}</span>${escapeHtml(term("responder_category", name))}</li>`)
    .join("");
}

function toggle(layer, on) {
  if (on) layer.addTo(state.map);
  else layer.remove();
}

function placeDraft(lat, lng) {
  $("lat").value = lat.toFixed(6);
  $("lng").value = lng.toFixed(6);
  layers.draft.clearLayers();
  L.marker([lat, lng], { icon: pinIcon("incident", "+"), title: t("console.pin_new"), keyboard: false }).addTo(layers.draft);
  $("category").focus();
}

async function refreshResponders() {
  const ask = ++state.responderAsk; // only the latest view's answer is drawn
  // only the view: the service reads just the pages of its live index under it
  const b = state.map.getBounds();
  const bbox = [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()].map((v) => v.toFixed(6)).join(",");
  let data;
  try {
    data = await call(`/v1/responders/live?bbox=${bbox}&crs=${crs()}`);
  } catch (err) {
    if (err.status !== 422 || ask !== state.responderAsk) throw err;
    layers.responders.clearLayers(); // a view wider than the service reads at once (a province)
    $("responder-count").textContent = t("console.zoom_in");
    return;
  }
  if (ask !== state.responderAsk) return;
  layers.responders.clearLayers();
  for (const f of data.features) {
    const [lng, lat] = f.geometry.coordinates;
    const p = f.properties;
    const [color, letter] = CATEGORY_STYLE[p.category] || CATEGORY_STYLE.other;
    const icon = L.divIcon({ className: `pin responder${p.dispatchable ? "" : " stale"}`, html: `<span style="background:${color}">${letter}</span>`, iconSize: [20, 20] });
    const kind = p.category ? term("responder_category", p.category) : t("role.responder");
    const mode = term("mode", p.mode);
    const marker = L.marker([lat, lng], { icon, title: `${kind} ${shortId(p.id)} (${mode})`, keyboard: false });
    marker.bindPopup(`${escapeHtml(kind)} ${shortId(p.id)}<br>${escapeHtml(mode)}${p.dispatchable ? "" : ` — ${escapeHtml(t("console.position_stale"))}`}`);
    layers.responders.addLayer(marker);
  }
  $("responder-count").textContent = data.features.length;
}

async function refreshAeds() {
  if (!state.token) return;
  const ask = ++state.aedAsk; // only the latest view's answer is drawn
  if (state.map.getZoom() < AED_MIN_ZOOM) {
    layers.aeds.clearLayers();
    $("aed-count").textContent = t("console.zoom_in");
    return;
  }
  const b = state.map.getBounds();
  const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(",");
  const data = await call(`/v1/aeds?bbox=${bbox}&crs=${crs()}`);
  if (ask !== state.aedAsk) return;
  const markers = [];
  for (const f of data.features) {
    const [lng, lat] = f.geometry.coordinates;
    const p = f.properties;
    const open = p.open_now !== false && p.status === "active";
    const marker = L.marker([lat, lng], { icon: pinIcon(open ? "aed-open" : "aed-closed", "A"), title: t("console.aed_title", { name: p.name }), keyboard: false });
    marker.bindPopup(`<strong>${escapeHtml(p.name)}</strong><br>${escapeHtml(t(open ? "aed.open_now" : "aed.closed"))}<br>${escapeHtml(p.opening_hours || t("aed.hours_unknown"))}`);
    markers.push(marker);
  }
  layers.aeds.clearLayers();
  layers.aeds.addLayers(markers);
  $("aed-count").textContent = data.features.length;
}

// --- incidents ----------------------------------------------------------------------------------
async function openIncident() {
  clearError();
  const body = {
    lat: Number($("lat").value),
    lng: Number($("lng").value),
    crs: crs(),
    category: $("category").value,
    place: $("place").value,
  };
  if ($("address").value.trim()) body.address = $("address").value.trim();
  if ($("note").value.trim()) body.note = $("note").value.trim();
  if ($("reach").value) body.reach_s = Number($("reach").value);
  $("open-incident").disabled = true;
  try {
    const incident = await call("/v1/incidents", { method: "POST", body });
    layers.draft.clearLayers();
    state.considered.set(incident.id, incident.aeds || []);
    say(t("console.opened", { n: incident.alerts.length }) + (incident.coverage.covered ? "" : ` ${t("console.nobody_in_time")}`));
    await selectIncident(incident.id);
    await refreshOpenList();
  } catch (err) {
    fail(err);
  } finally {
    $("open-incident").disabled = false;
  }
}

async function responderName(id) {
  if (!state.names.has(id)) {
    const lookup = call(`/v1/responders/${id}`)
      .then((r) => `${r.name} (${term("responder_category", r.category)})`)
      .catch(() => shortId(id))
      .then((name) => {
        state.resolved.set(id, name);
        return name;
      });
    state.names.set(id, lookup);
  }
  return state.names.get(id);
}

async function selectIncident(id) {
  state.selected = id;
  const incident = await call(`/v1/incidents/${id}?crs=${crs()}`);
  if (state.selected !== id) return;
  await renderIncident(incident);
  for (const li of $("open-list").querySelectorAll("button[data-id]")) li.setAttribute("aria-current", String(li.dataset.id === id));
}

async function renderIncident(incident) {
  $("incident").classList.remove("hidden");
  $("no-incident").classList.add("hidden");
  const where = incident.address || `${incident.lat.toFixed(5)}, ${incident.lng.toFixed(5)}`;
  $("incident-summary").textContent = t("console.summary", { category: term("category", incident.category), where, time: clock(incident.created_at), status: term("incident_status", incident.status) });
  renderOrigin(incident);
  const c = incident.coverage;
  $("incident-coverage").textContent = c.covered
    ? t("console.covered", { responder: duration(c.fastest_eta_s), aed: duration(c.aed_eta_s), reach: duration(incident.reach_s) })
    : t("console.not_covered", { reach: duration(incident.reach_s) });
  const rows = await Promise.all(
    incident.alerts.map(async (a) => {
      const name = await responderName(a.responder_id);
      const status = a.cancel_reason === "enough_responders" ? t("alert_status.stood_down") : term("alert_status", a.status);
      return `<tr data-alert="${a.alert_id}"><td>${escapeHtml(name)}</td><td>${escapeHtml(roleText(a))}</td><td>${duration(a.eta_s)}</td><td>${distance(a.distance_m)}</td><td class="st-${a.status}">${escapeHtml(status)}</td>${reachedCell(a)}</tr>`;
    }),
  );
  // The AEDs matched at opening come only with the opening's answer; remembered per incident.
  const aeds = incident.aeds?.length ? incident.aeds : state.considered.get(incident.id);
  if (aeds === undefined) $("incident-aeds").textContent = "";
  else if (aeds.length === 0) $("incident-aeds").textContent = t("console.no_aed");
  else $("incident-aeds").textContent = t("console.aeds", { list: aeds.map((a) => t(a.open_now ? "console.aed_item" : "console.aed_item_closed", { name: a.name, distance: distance(a.distance_m) })).join(t("list.sep")) });
  $("alerts").innerHTML = rows.join("") || `<tr><td colspan="6">${escapeHtml(t("console.none_alerted"))}</td></tr>`;
  $("events").innerHTML = (incident.events || []).map((e) => `<li>${describeEvent(e)}</li>`).join("");
  $("arrival-timeline").innerHTML = timelineHtml(incident, (id) => state.resolved.get(id) || shortId(id));
  $("close-incident").disabled = incident.status !== "open";
  showOutcome($("outcome"), incident, { call, zone: state.config.timezone, say, fail, clearError }).catch(fail);
  layers.incidents.clearLayers();
  drawReach(incident);
  L.marker([incident.lat, incident.lng], { icon: pinIcon("incident", "!"), title: t("console.pin_incident"), keyboard: false }).addTo(layers.incidents);
  // Go to an incident when it is first shown at city zoom (where AEDs are not drawn) or off the map.
  const first = state.shown !== incident.id;
  state.shown = incident.id;
  if (!state.map.getBounds().contains([incident.lat, incident.lng]) || (first && state.map.getZoom() < AED_MIN_ZOOM)) {
    state.map.setView([incident.lat, incident.lng], 16);
  }
}

// The incident's reach as two circles: how far a responder on foot and one on an e-bike get within
// its reach_s, by the dispatch search's own model. Straight-line circles, not street isochrones: the
// model's circuity already stands for the streets, and it is the same approximation matching uses.
function drawReach(incident) {
  const model = state.config.reach_model;
  for (const mode of ["ebike", "walk"]) {
    const radius = reachRadiusM(model, incident.reach_s, mode);
    L.circle([incident.lat, incident.lng], { radius, className: `reach reach-${mode}`, interactive: false }).addTo(layers.incidents);
  }
  $("incident-reach").textContent = t("console.reach_legend", {
    reach: duration(incident.reach_s),
    walk: distance(reachRadiusM(model, incident.reach_s, "walk")),
    ebike: distance(reachRadiusM(model, incident.reach_s, "ebike")),
  });
}

// How the alert reached the phone: the channel of its receipt (only a receipt counts; a socket
// write or a provider's "sent" may never have been seen) and what was tried so far, in order.
function reachedCell(a) {
  const attempts = a.attempts || [];
  const tried = attempts.filter((x) => x.outcome !== "skipped").map((x) => (x.outcome === "sent" ? x.channel : `${x.channel} (${term("outcome", x.outcome)})`));
  const confirmed = a.delivered_via ? `✓ ${a.delivered_via}` : t("console.not_confirmed");
  const title = attempts.map((x) => `${clock(x.at)} ${x.channel}: ${term("outcome", x.outcome)}${x.detail ? ` — ${x.detail}` : ""}`).join("\n");
  const triedText = tried.length ? ` · ${t("console.tried", { channels: tried.join(t("list.sep")) })}` : "";
  return `<td class="reached" title="${escapeHtml(title)}">${escapeHtml(confirmed)}${escapeHtml(triedText)}</td>`;
}

// Roles are decided when a responder accepts: until then an alert says whether it may be an AED run.
function roleText(a) {
  if (a.role === "fetch_aed" || a.role === "cpr") return t(`role_short.${a.role}`);
  return t(a.may_fetch_aed ? "role_short.undecided_may_fetch" : "role_short.undecided");
}

function describeEvent(e) {
  const d = e.data || {};
  const who = d.responder_id ? ` ${escapeHtml(state.resolved.get(d.responder_id) || shortId(d.responder_id))}` : "";
  const role = d.role && d.role !== "undecided" ? ` (${roleText(d)})` : "";
  const via = d.channel ? ` — ${escapeHtml(d.channel)} ${escapeHtml(term("outcome", d.outcome))}` : d.delivered_via ? ` ${escapeHtml(t("console.via", { channel: d.delivered_via }))}` : "";
  return `${clock(e.ts)} ${escapeHtml(term("event", e.kind))}${who}${escapeHtml(role)}${via}`;
}

async function closeIncident() {
  if (!state.selected) return;
  clearError();
  try {
    await call(`/v1/incidents/${state.selected}/close`, { method: "POST", body: { reason: "closed from the console" } });
    say(t("console.closed"));
    await selectIncident(state.selected);
    await refreshOpenList();
  } catch (err) {
    fail(err);
  }
}


// Which centre an incident came from, its tracking id, how exact its place is, and the facts the
// centre changed on its last update, each marked.
function renderOrigin(incident) {
  const origin = $("incident-origin");
  origin.classList.toggle("hidden", !incident.tracking_id);
  if (!incident.tracking_id) return (origin.textContent = "");
  const accuracy = incident.location_uncertainty_m == null ? "" : ` · ${escapeHtml(t("console.place_within", { distance: distance(incident.location_uncertainty_m) }))}`;
  // what the centre's update may change, in a dispatcher's words (cad.eido.Eido.fields)
  const changed = (incident.centre_changed || []).map((f) => `<mark data-changed="${escapeHtml(f)}">${escapeHtml(term("centre_fact", f))}</mark>`);
  origin.innerHTML =
    `${escapeHtml(t("console.from_centre"))} <strong>${escapeHtml(incident.agency)}</strong> · ${escapeHtml(t("console.tracking_id"))} <code>${escapeHtml(incident.tracking_id)}</code>${accuracy}` +
    (changed.length ? ` · ${escapeHtml(t("console.changed"))} ${changed.join(" ")}` : "");
}

async function refreshOpenList() {
  const open = await call(`/v1/incidents?status=open&crs=${crs()}`);
  $("open-list").innerHTML =
    open
      .map((i) => {
        const accepted = i.alerts.filter((a) => ["accepted", "en_route", "on_scene"].includes(a.status)).length;
        const centre = i.agency ? `[${escapeHtml(i.agency)}] ` : "";
        const counts = t("console.accepted_of", { accepted, alerted: i.alerts.length });
        const label = `${centre}${clock(i.created_at)} ${escapeHtml(term("category", i.category))} — ${escapeHtml(i.address || t("console.no_address"))} — ${escapeHtml(counts)}`;
        return `<li><button type="button" class="secondary" data-id="${i.id}" aria-current="${i.id === state.selected}">${label}</button></li>`;
      })
      .join("") || `<li>${escapeHtml(t("console.none_open"))}</li>`;
  await listClosed($("closed-list"), { call, crs: crs(), zone: state.config.timezone });
}

// --- live feed ----------------------------------------------------------------------------------
function setLive(kind, text) {
  const badge = $("live");
  badge.className = `badge ${kind}`;
  badge.textContent = text;
}

function connect() {
  if (!state.token) return;
  setLive("connecting", t("live.connecting"));
  const socket = openSocket("/v1/ws/dispatch", {}, state.token);
  state.socket = socket;
  socket.onopen = () => {
    state.retry = 0;
    setLive("online", t("live.on"));
  };
  socket.onmessage = (msg) => onEvent(JSON.parse(msg.data)).catch(fail);
  socket.onclose = (e) => {
    if (state.socket !== socket) return;
    if (e.code === 4401 || e.code === 4403) {
      setLive("offline", t("live.refused"));
      fail(t("live.refused_why", { code: e.code, reason: e.reason }));
      return;
    }
    setLive("offline", t("live.retrying"));
    state.retry = Math.min(state.retry + 1, 5);
    setTimeout(connect, 500 * 2 ** state.retry);
  };
}

const ANNOUNCED = ["accepted", "role_assigned", "declined", "en_route", "aed_picked_up", "on_scene", "escalated", "nobody_in_reach", "escalation_exhausted", "closed"];
let refreshTimer = null;

// Events come in bursts (one per alert sent, delivered...): announce the ones a dispatcher acts on
// and redraw once per burst rather than once per event.
async function onEvent(frame) {
  if (frame.type !== "incident_event") return;
  if (ANNOUNCED.includes(frame.kind)) say(`${t("console.incident_id", { id: shortId(frame.incident_id) })}: ${describeEvent(frame)}`);
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    const work = [refreshOpenList()];
    if (state.selected) work.push(selectIncident(state.selected));
    Promise.all(work).catch(fail);
  }, 150);
}

// --- sign-in ------------------------------------------------------------------------------------
async function start(token) {
  clearError();
  const who = await checkToken(token, ["dispatcher"]);
  state.token = token;
  storeToken(SCREEN, token);
  $("signin").classList.add("hidden");
  $("who").textContent = t("signin.as", { who: who.label || t(`role.${who.role}`) });
  $("who").classList.remove("hidden");
  $("signout").classList.remove("hidden");
  connect(); // the live feed first: drawing a big city's layers must not delay it
  const { error } = await drawDistricts(state.map, state.config, token);
  if (error) say(t("map.no_outline", { reason: error.message }));
  await Promise.all([refreshResponders(), refreshAeds(), refreshOpenList()]);
  setInterval(() => refreshResponders().catch(fail), 10000);
}

function signOut() {
  storeToken(SCREEN, null);
  location.reload();
}

async function main() {
  await loadLanguage();
  translatePage();
  mountLanguageSwitch(document.querySelector("header.top"));
  mountHelp(document.querySelector("header.top"), "console");
  state.config = await loadConfig();
  useTimeZone(state.config.timezone);
  $("datum").textContent = state.config.map_crs.toUpperCase();
  $("category").innerHTML = state.config.incident_categories.map((c) => `<option value="${c}">${escapeHtml(term("category", c))}</option>`).join("");
  $("reach").placeholder = t("console.reach_default", { s: state.config.reach_s });
  $("reach").min = state.config.reach_min_s;
  $("reach").max = state.config.reach_max_s;
  setUpMap();
  onSubmit($("incident-form"), openIncident);
  $("close-incident").addEventListener("click", closeIncident);
  for (const list of ["open-list", "closed-list"]) {
    $(list).addEventListener("click", (e) => {
      const id = e.target.closest("button[data-id]")?.dataset.id;
      if (id) selectIncident(id).catch(fail);
    });
  }
  $("signout").addEventListener("click", signOut);
  onSubmit($("signin"), () => start($("token").value.trim()).catch(fail));
  await resumeSession(SCREEN, start, fail);
  document.body.dataset.ready = "true";
}

main().catch(fail);
