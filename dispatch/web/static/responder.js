// Responder app (phone first): sign in with a token, go on and off duty, stream the position (the
// browser's geolocation or a simulated one for demos), get alerts that ring, accept or decline,
// then see the exact place, the AED to fetch and a line to follow. The websocket reconnects by
// itself; pending alerts come again on reconnect, so a dropped connection loses nothing.
//
// Installed as an app (manifest + service worker `/responder-sw.js`), it also opens with no network
// and shows the last known state (kept in IndexedDB by keep.js), and alerts reach a locked phone as
// Web Push notifications the worker shows and answers. An SMS link `?alert=<id>&code=<code>` opens
// one alert to accept or decline with its one-time code, without signing in.

import { api, checkToken, onSubmit, storedToken, storeToken, openSocket } from "./lib/api.js";
import { clock, distance, duration, language, loadLanguage, localisedFields, mountHelp, mountLanguageSwitch, t, term, translatePage, useTimeZone } from "./lib/i18n.js";
import { markLineHtml, replayedMarks } from "./lib/arrival.js";
import { fromWgs84 } from "./lib/datum.js";
import { createMap, loadConfig, pinIcon } from "./lib/map.js";
import { mountPrivacy } from "./lib/privacy.js";
import { mountServicePanel } from "./lib/service-panel.js";
import { mountDebrief } from "./lib/debrief.js";

const SCREEN = "responder";
const keep = window.rescueKeep;
const params = new URLSearchParams(location.search);
const RESEND_MS = 20000;
const $ = (id) => document.getElementById(id);
const state = {
  token: null, config: null, me: null, socket: null, retry: 0, onDuty: false,
  fix: null, source: null, watch: null, alerts: new Map(), current: null, mission: null, missionMap: null,
  code: null, installPrompt: null, confirmed: new Set(), refreshService: () => {}, debrief: null,
};

const say = (text) => ($("status").textContent = text);
const fail = (err) => ($("error").textContent = err instanceof Error ? err.message : String(err));
const clearError = () => ($("error").textContent = "");
const call = (path, opts = {}) => api(path, { ...opts, token: state.token });

// --- connection ---------------------------------------------------------------------------------
function setConnection(kind, text) {
  const badge = $("connection");
  badge.className = `badge ${kind}`;
  badge.textContent = text;
}

function connect() {
  if (!state.token) return;
  setConnection("connecting", t("connection.connecting"));
  const socket = openSocket("/v1/ws/responder", { crs: state.config.map_crs }, state.token);
  state.socket = socket;
  socket.onopen = () => {
    state.retry = 0;
    setConnection("online", t("connection.online"));
    keep.forget().catch(() => {}); // the socket sends every pending alert and mission again now
    refreshProfile().catch(() => {});
    if (state.onDuty && state.fix) sendFix();
  };
  socket.onmessage = (msg) => onFrame(JSON.parse(msg.data));
  socket.onclose = (e) => {
    if (state.socket !== socket) return;
    if (e.code === 4401 || e.code === 4403) {
      setConnection("offline", t("connection.refused"));
      fail(t("connection.refused_why", { code: e.code, reason: e.reason }));
      return;
    }
    setConnection("offline", t("connection.reconnecting"));
    state.retry = Math.min(state.retry + 1, 4);
    setTimeout(connect, 500 * 2 ** state.retry);
  };
}

function send(frame) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    fail(t("connection.not_sent"));
    return false;
  }
  state.socket.send(JSON.stringify(frame));
  return true;
}

function onFrame(frame) {
  if (frame.type === "alert") onAlert(frame);
  else if (frame.type === "incident") onMission(frame);
  else if (frame.type === "cancel") onCancel(frame);
  else if (frame.type === "mark") onMark(frame);
  else if (frame.type === "error") {
    fail(t("connection.frame_refused", { code: frame.code, message: frame.message }));
    setAnswerButtons(false);
  }
}

// --- alerts -------------------------------------------------------------------------------------
function ring() {
  if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 800]);
  try {
    const audio = new (window.AudioContext || window.webkitAudioContext)();
    [0, 0.45, 0.9].forEach((at) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.25;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + at);
      osc.stop(audio.currentTime + at + 0.3);
    });
  } catch {
    // no sound allowed before a user gesture: the screen and vibration still alert
  }
}

function onAlert(frame) {
  state.alerts.set(frame.alert_id, frame);
  keep.putAlert(frame).catch(() => {});
  if (!state.current) showAlert(frame);
}

// The receipt: this alert is on screen. Only it marks the alert delivered (a socket the server
// wrote into may be half-open); without it the server tries push, SMS, then a call.
function confirmShown(frame) {
  if (state.confirmed.has(frame.alert_id)) return;
  state.confirmed.add(frame.alert_id);
  const receipt = { type: "received", alert_id: frame.alert_id };
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(receipt));
  else alertCall(frame.alert_id, "received", state.code ? {} : { channel: "app" }).catch(() => state.confirmed.delete(frame.alert_id));
}

// What the alert asks. Roles are decided when the person accepts: before that, an alert says
// whether they may be asked to bring an AED, and which (alerts decided at sending still say it).
function alertTask(frame) {
  const where = (aed) => (aed ? ` “${aed.name}”${aed.location_detail ? ` (${aed.location_detail})` : ""}` : "");
  if (frame.role === "fetch_aed") return t("task.fetch_aed", { aed: where(frame.aed) });
  if (frame.role === "cpr" || !frame.may_fetch_aed) return t("task.cpr");
  return t("task.may_fetch_aed", { aed: where(frame.aed_option) });
}

function showAlert(frame) {
  state.current = frame;
  const title = t("alert.title", { category: term("category", frame.category), distance: distance(frame.distance_m) });
  $("alert-title").textContent = title;
  $("alert-role").textContent = alertTask(frame);
  $("alert-facts").textContent = t("alert.facts", { eta: duration(frame.eta_s) });
  $("alert").classList.remove("hidden");
  setAnswerButtons(false);
  $("accept").focus();
  ring();
  confirmShown(frame);
  say(t("alert.say", { title }));
  tickExpiry();
}

// The HTTP answer endpoints, signed with the alert's one-time code (SMS link) or the token.
function alertCall(alertId, what, body) {
  const headers = state.code?.alert_id === alertId ? { "X-Alert-Code": state.code.code } : {};
  return api(`/v1/alerts/${alertId}/${what}`, { method: "POST", body, token: state.code ? null : state.token, headers });
}

async function closeNotification(alertId) {
  const reg = await navigator.serviceWorker?.getRegistration("/responder");
  for (const n of (await reg?.getNotifications({ tag: alertId })) || []) n.close();
}

// One countdown for the alert on screen; when it runs out the next pending alert (if any) shows.
let expiryTimer = null;
function tickExpiry() {
  clearTimeout(expiryTimer);
  const frame = state.current;
  if (!frame) return;
  const left = Math.round((new Date(frame.expires_at) - Date.now()) / 1000);
  if (left <= 0) {
    say(t("alert.expired"));
    dropAlert(frame.alert_id);
    return;
  }
  $("alert-expiry").textContent = t("alert.answer_within", { left: duration(left) });
  expiryTimer = setTimeout(tickExpiry, 1000);
}

function dropAlert(alertId) {
  state.alerts.delete(alertId);
  keep.dropAlert(alertId).catch(() => {});
  closeNotification(alertId).catch(() => {});
  if (state.current?.alert_id === alertId) {
    state.current = null;
    $("alert").classList.add("hidden");
    const next = [...state.alerts.values()].find((a) => new Date(a.expires_at) > Date.now());
    if (next) showAlert(next);
  }
}

function setAnswerButtons(busy) {
  $("accept").disabled = busy;
  $("decline").disabled = busy;
}

function answer(response) {
  const frame = state.current;
  if (!frame) return;
  clearError();
  const bySocket = !state.code && state.socket?.readyState === WebSocket.OPEN;
  if (bySocket) send({ type: "ack", alert_id: frame.alert_id, response });
  else answerOverHttp(frame, response);
  setAnswerButtons(true);
  if (response === "decline") {
    say(t("alert.declined"));
    dropAlert(frame.alert_id);
  } else {
    say(t("alert.accepted"));
  }
}

// Without a socket (an SMS link, or the connection is down) the answer goes over HTTP; an accept
// answers with the exact place at once.
async function answerOverHttp(frame, response) {
  try {
    const result = await alertCall(frame.alert_id, "answer", { response });
    if (result?.incident) onMission(result.incident);
  } catch (err) {
    fail(err);
    if (!state.alerts.has(frame.alert_id)) onAlert(frame); // not answered: show it again
    setAnswerButtons(false);
  }
}

// --- the mission after accepting ----------------------------------------------------------------
// Frames over HTTP (an SMS link, the worker's answer) are in WGS-84; the socket's come in the map's datum.
function inMapDatum(frame) {
  const crs = state.config.map_crs;
  if (!frame.crs || frame.crs === crs) return frame;
  const move = (p) => {
    const [lat, lng] = fromWgs84(p.lat, p.lng, crs);
    return { ...p, lat, lng };
  };
  return { ...move(frame), crs, aed: frame.aed ? move(frame.aed) : frame.aed };
}

function onMission(incident) {
  const frame = inMapDatum(incident);
  state.mission = frame;
  keep.put("mission", frame).catch(() => {});
  dropAlert(frame.alert_id);
  $("mission").classList.remove("hidden");
  $("mission-title").textContent = t(frame.role === "fetch_aed" ? "mission.role_fetch_aed" : "mission.role_cpr");
  $("mission-where").textContent = frame.address || t("mission.patient_at", { lat: frame.lat.toFixed(5), lng: frame.lng.toFixed(5) });
  $("mission-note").textContent = frame.note ? t("mission.note", { note: frame.note }) : "";
  $("mission-aed").textContent = frame.aed ? t("mission.aed", { name: frame.aed.name, where: frame.aed.location_detail ? ` — ${frame.aed.location_detail}` : "" }) : "";
  $("mission-state").textContent = state.token ? t("mission.status", { status: term("alert_status", frame.status) }) : t("mission.sign_in_to_report");
  $("en-route").disabled = !state.token;
  $("on-scene").disabled = !state.token;
  if (state.marksOf !== frame.alert_id) $("arrival-marks").innerHTML = replayedMarks(frame).map(markLineHtml).join("");
  state.marksOf = frame.alert_id;
  $("aed-picked-up").classList.toggle("hidden", frame.role !== "fetch_aed" || Boolean(frame.marks?.aed_picked_up));
  $("aed-picked-up").disabled = !state.token;
  drawMission();
  say(t("mission.say"));
  $("en-route").focus();
}

function drawMission() {
  const frame = state.mission;
  if (!frame) return;
  if (!state.missionMap) state.missionMap = createMap($("mission-map"), state.config);
  const map = state.missionMap;
  map.eachLayer((layer) => {
    if (!(layer instanceof L.TileLayer)) map.removeLayer(layer);
  });
  const line = [];
  if (state.fix) {
    const me = fromWgs84(state.fix.lat, state.fix.lng, state.config.map_crs);
    L.marker(me, { icon: pinIcon("me", t("mission.pin_me")), title: t("mission.you") }).addTo(map);
    line.push(me);
  }
  if (frame.aed) {
    L.marker([frame.aed.lat, frame.aed.lng], { icon: pinIcon("aed-target", "A"), title: t("mission.pin_aed") }).addTo(map);
    line.push([frame.aed.lat, frame.aed.lng]);
  }
  L.marker([frame.lat, frame.lng], { icon: pinIcon("patient", "!"), title: t("mission.pin_patient") }).addTo(map);
  line.push([frame.lat, frame.lng]);
  const path = L.polyline(line, { color: "#0b4f8a", weight: 5, dashArray: "8 6" }).addTo(map);
  map.invalidateSize();
  if (line.length > 1) map.fitBounds(path.getBounds(), { padding: [30, 30] });
  else map.setView(line[0], 17);
}

function reportStatus(status) {
  if (!state.mission) return;
  clearError();
  if (send({ type: "status", alert_id: state.mission.alert_id, status })) {
    $("mission-state").textContent = t("mission.status", { status: term("alert_status", status) });
    say(t(`mission.say_${status}`));
  }
}

// A mark this phone's positions set, or a tap (lib/arrival.js), listed as it happens.
function onMark(frame) {
  if (state.mission?.alert_id !== frame.alert_id) return;
  $("arrival-marks").insertAdjacentHTML("beforeend", markLineHtml(frame));
  if (frame.mark === "aed_picked_up") $("aed-picked-up").classList.add("hidden");
  else $("mission-state").textContent = t("mission.status", { status: term("alert_status", frame.mark) });
}

function pickedUpAed() {
  if (!state.mission) return;
  clearError();
  if (send({ type: "status", alert_id: state.mission.alert_id, status: "aed_picked_up" })) say(t("arrival.say_aed_picked_up"));
}

function onCancel(frame) {
  dropAlert(frame.alert_id);
  if (state.mission?.alert_id === frame.alert_id) {
    state.mission = null;
    keep.remove("mission").catch(() => {});
    $("mission").classList.add("hidden");
  }
  say(t("stand_down.say", { why: term("stand_down", frame.reason || "closed") }));
  state.debrief?.check(); // an incident they turned out for may have just ended
}


// --- duty and position --------------------------------------------------------------------------
function renderProfile(profile) {
  keep.put("profile", { ...profile, saved_at: new Date().toISOString() }).catch(() => {});
  state.onDuty = profile.on_duty;
  $("who").textContent = t("duty.who", { name: profile.name, category: term("responder_category", profile.category), mode: term("mode", profile.mode) });
  $("duty").textContent = t(profile.on_duty ? "duty.go_off" : "duty.go_on");
  $("duty").setAttribute("aria-pressed", String(profile.on_duty));
  $("dispatchable").textContent = profile.dispatchable
    ? t("duty.dispatchable")
    : t("duty.not_dispatchable", { why: profile.not_dispatchable_because.map((r) => term("not_dispatchable", r)).join(t("list.sep")) });
}

async function refreshProfile() {
  renderProfile(await call(`/v1/responders/${state.me}`));
}

// The socket does not answer a stored position, so ask the registry a moment later whether this
// phone can now receive alerts (and if not, why: stale position, lapsed certificate...).
let profileTimer = null;
function scheduleProfileRefresh() {
  clearTimeout(profileTimer);
  profileTimer = setTimeout(() => refreshProfile().catch(fail), 700);
}

async function toggleDuty() {
  clearError();
  try {
    const profile = await call(`/v1/responders/${state.me}/duty`, { method: "PUT", body: { on_duty: !state.onDuty } });
    renderProfile(profile);
    say(t(profile.on_duty ? "duty.now_on" : "duty.now_off"));
    state.refreshService();
    if (profile.on_duty && state.fix) sendFix();
  } catch (err) {
    fail(err);
  }
}

function sendFix() {
  if (!state.fix) return;
  if (!state.onDuty) {
    $("position").textContent = t("position.only_on_duty");
    return;
  }
  const frame = { type: "location", lat: state.fix.lat, lng: state.fix.lng, ts: new Date(state.fix.ts).toISOString(), crs: "wgs84" };
  if (state.fix.accuracy_m != null) frame.accuracy_m = Math.min(state.fix.accuracy_m, 100000);
  if (state.fix.mode) frame.mode = state.fix.mode;
  if (state.socket?.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
    $("position").textContent = t("position.sent", { lat: state.fix.lat.toFixed(5), lng: state.fix.lng.toFixed(5), source: t(`position.source_${state.source}`), time: clock(Date.now()) });
    scheduleProfileRefresh();
  } else {
    $("position").textContent = t("position.offline");
  }
  if (state.mission) drawMission();
}

function shareLocation() {
  if (!navigator.geolocation) {
    fail(t("position.no_geolocation"));
    return;
  }
  if (state.watch !== null) {
    navigator.geolocation.clearWatch(state.watch);
    state.watch = null;
    $("share").setAttribute("aria-pressed", "false");
    $("share").textContent = t("position.share");
    return;
  }
  state.watch = navigator.geolocation.watchPosition(
    (pos) => {
      state.source = "gps";
      state.fix = { lat: pos.coords.latitude, lng: pos.coords.longitude, accuracy_m: pos.coords.accuracy, ts: pos.timestamp };
      sendFix();
    },
    (err) => fail(t("position.unavailable", { reason: err.message })),
    { enableHighAccuracy: true, maximumAge: 10000 },
  );
  $("share").setAttribute("aria-pressed", "true");
  $("share").textContent = t("position.stop");
}

function useSimulated() {
  clearError();
  const lat = Number($("sim-lat").value);
  const lng = Number($("sim-lng").value);
  if ($("sim-lat").value === "" || !Number.isFinite(lat) || lat < -90 || lat > 90) return fail(localisedFields("lat: must be within [-90, 90]"));
  if ($("sim-lng").value === "" || !Number.isFinite(lng) || lng < -180 || lng > 180) return fail(localisedFields("lng: must be within [-180, 180]"));
  state.source = "simulated";
  state.fix = { lat, lng, accuracy_m: 5, ts: Date.now(), mode: $("sim-mode").value || null };
  sendFix();
}

function resendPeriodically() {
  setInterval(() => {
    if (!state.onDuty || !state.fix) return;
    if (state.source === "simulated") state.fix.ts = Date.now();
    else if (state.watch !== null) return; // the GPS watch sends fresh fixes itself
    sendFix();
  }, RESEND_MS);
}

// --- the installed app: service worker, notifications, Web Push ---------------------------------
async function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.addEventListener("message", (e) => onWorkerMessage(e.data || {}));
  try {
    await navigator.serviceWorker.register("/responder-sw.js", { scope: "/responder" });
  } catch (err) {
    $("notify-state").textContent = t("install.failed", { reason: err.message });
  }
}

// What the service worker did while this page was open (a push, an answer from the notification).
function onWorkerMessage(msg) {
  if (msg.type === "alert") onAlert(msg.frame);
  else if (msg.type === "cancel") onCancel(msg);
  else if (msg.type === "show-alert") showKeptAlert(msg.alert_id);
  else if (msg.type === "answered" && msg.incident) onMission(msg.incident);
  else if (msg.type === "answered") {
    dropAlert(msg.alert_id);
    say(t("alert.declined_from_notification"));
  }
}

async function showKeptAlert(alertId) {
  const frame = state.alerts.get(alertId) || (await keep.getAlert(alertId));
  if (frame && new Date(frame.expires_at) > Date.now()) {
    state.alerts.set(alertId, frame);
    showAlert(frame);
  }
}

const pushable = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
const installed = () => matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;

async function renderNotifyState() {
  const line = $("notify-state");
  const button = $("notify");
  if (!pushable()) {
    button.classList.add("hidden");
    line.textContent = t("notify.unsupported");
    return;
  }
  const push = await keep.get("push");
  const on = Notification.permission === "granted" && push && push.responder_id === state.me;
  button.classList.toggle("hidden", Boolean(on));
  button.disabled = !state.token;
  line.textContent = on
    ? t(installed() ? "notify.on_installed" : "notify.on")
    : Notification.permission === "denied"
      ? t("notify.blocked")
      : t(state.token ? "notify.off" : "notify.sign_in_first");
}

function keyBytes(base64url) {
  const raw = atob(base64url.replaceAll("-", "+").replaceAll("_", "/").padEnd(Math.ceil(base64url.length / 4) * 4, "="));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

const sameBytes = (a, b) => a && b && a.byteLength === b.byteLength && new Uint8Array(a).every((x, i) => x === b[i]);

// Subscribe this browser to Web Push with the service's VAPID key and register the subscription
// for the signed-in responder (once per browser and responder; a changed key subscribes again).
async function subscribePush() {
  const reg = await navigator.serviceWorker.ready;
  const { public_key: publicKey } = await call("/v1/push/vapid-public-key");
  const key = keyBytes(publicKey);
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameBytes(sub.options.applicationServerKey, key)) {
    await sub.unsubscribe();
    sub = null;
  }
  sub = sub || (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
  const { endpoint, keys } = sub.toJSON();
  const kept = await keep.get("push");
  if (kept?.endpoint === endpoint && kept.responder_id === state.me) return;
  const made = await call(`/v1/responders/${state.me}/push-subscriptions`, { method: "POST", body: { endpoint, keys } });
  await keep.put("push", { id: made.id, endpoint, responder_id: state.me });
}

async function allowNotifications() {
  clearError();
  try {
    if ((await Notification.requestPermission()) === "granted") {
      await subscribePush();
      say(t("notify.now_on"));
    }
  } catch (err) {
    fail(t("notify.failed", { reason: err.message }));
  }
  await renderNotifyState();
}

// A shared phone must not keep ringing for the person who signed out.
async function forgetPush() {
  const kept = await keep.get("push");
  if (kept?.id && kept.responder_id === state.me) await call(`/v1/responders/${state.me}/push-subscriptions/${kept.id}`, { method: "DELETE" }).catch(() => {});
  const reg = await navigator.serviceWorker?.getRegistration("/responder");
  const sub = await reg?.pushManager?.getSubscription();
  if (sub) await sub.unsubscribe().catch(() => {});
}

function offerInstall() {
  window.addEventListener("beforeinstallprompt", (e) => {
    e.preventDefault(); // our button instead of the mini-infobar, next to the instructions
    state.installPrompt = e;
    $("install").classList.remove("hidden");
  });
  $("install").addEventListener("click", async () => {
    if (!state.installPrompt) return;
    state.installPrompt.prompt();
    await state.installPrompt.userChoice;
    state.installPrompt = null;
    $("install").classList.add("hidden");
  });
  window.addEventListener("appinstalled", () => say(t("install.done")));
}

// --- an SMS link: one alert, answered with its one-time code --------------------------------------
async function openByCode(alertId, code) {
  state.code = { alert_id: alertId, code };
  const read = await api(`/v1/alerts/${encodeURIComponent(alertId)}`, { headers: { "X-Alert-Code": code } });
  if (read.incident) onMission(read.incident);
  else if (["sent", "delivered"].includes(read.status) && new Date(read.alert.expires_at) > Date.now()) onAlert(read.alert);
  else say(t("alert.over", { status: term("alert_status", read.status) }));
}

// --- sign-in ------------------------------------------------------------------------------------
function showSignedIn() {
  $("signin").classList.add("hidden");
  for (const id of ["duty-card", "position-card", "privacy-card", "signout"]) $(id).classList.remove("hidden");
}

// No network: show what was kept the last time (profile, alerts not yet answered, the mission).
async function startOffline(token) {
  const [me, profile] = await Promise.all([keep.get("me"), keep.get("profile")]);
  if (!me || !profile) return false;
  state.token = token;
  state.me = me;
  renderProfile(profile);
  showSignedIn();
  const mission = await keep.get("mission");
  if (mission) onMission(mission);
  for (const frame of await keep.alerts()) onAlert(frame);
  setConnection("offline", t("connection.no_network"));
  say(t("connection.showing_kept", { time: clock(profile.saved_at) }));
  connect();
  return true;
}

async function start(token) {
  clearError();
  let who;
  try {
    who = await checkToken(token, ["responder"]);
  } catch (err) {
    if (err.status === 0 && (await startOffline(token))) return;
    throw err;
  }
  state.token = token;
  state.me = who.responder_id;
  storeToken(SCREEN, token);
  await Promise.all([keep.put("token", token), keep.put("me", state.me), keep.put("lang", language())]); // for the service worker
  await refreshProfile();
  showSignedIn();
  state.refreshService = mountServicePanel($("service-card"), call, state.me);
  state.debrief = mountDebrief($("debrief"), { call, me: state.me, zone: state.config.timezone, say, fail, clearError });
  state.debrief.check();
  connect();
  if (pushable() && Notification.permission === "granted") await subscribePush().catch((err) => fail(t("notify.failed", { reason: err.message })));
  await renderNotifyState();
}

async function signOut() {
  await forgetPush().catch(() => {});
  await keep.clear().catch(() => {});
  storeToken(SCREEN, null);
  location.replace("/responder");
}

// The account was deleted (lib/privacy.js): nothing of it stays on this phone, and the sign-in is back.
async function forgetErasedAccount() {
  const socket = state.socket;
  state.socket = null; // no reconnecting: the token is revoked
  socket?.close();
  if (state.watch !== null) navigator.geolocation.clearWatch(state.watch);
  Object.assign(state, { onDuty: false, fix: null, watch: null });
  await forgetPush().catch(() => {});
  await keep.clear().catch(() => {});
  storeToken(SCREEN, null);
  state.token = null;
  for (const id of ["duty-card", "position-card", "service-card", "privacy-card", "signout", "alert", "mission"]) $(id).classList.add("hidden");
  $("signin").classList.remove("hidden");
  setConnection("offline", t("connection.offline"));
  clearError(); // the server closed the socket of the revoked token: expected, not a failure
  say(t("privacy.erased"));
}

async function main() {
  await loadLanguage();
  translatePage();
  // At the foot, not in the header: on a phone the token field must be the first thing a Tab reaches.
  // The service worker words its notifications in the language this page shows (keep.js: IndexedDB).
  mountLanguageSwitch($("settings"), (lang) => keep.put("lang", lang).catch(() => {}));
  mountHelp($("settings"), "responder");
  keep.put("lang", language()).catch(() => {});
  state.config = await loadConfig();
  useTimeZone(state.config.timezone);
  onSubmit($("signin"), () => start($("token").value.trim()).catch(fail));
  $("signout").addEventListener("click", () => signOut().catch(fail));
  $("duty").addEventListener("click", toggleDuty);
  $("share").addEventListener("click", shareLocation);
  $("sim-send").addEventListener("click", useSimulated);
  $("accept").addEventListener("click", () => answer("accept"));
  $("decline").addEventListener("click", () => answer("decline"));
  $("en-route").addEventListener("click", () => reportStatus("en_route"));
  $("on-scene").addEventListener("click", () => reportStatus("on_scene"));
  $("aed-picked-up").addEventListener("click", pickedUpAed);
  $("notify").addEventListener("click", allowNotifications);
  mountPrivacy($("privacy-card"), { call, me: () => state.me, say, fail, onErased: forgetErasedAccount });
  window.addEventListener("offline", () => setConnection("offline", t("connection.no_network")));
  offerInstall();
  await registerWorker();
  resendPeriodically();
  const [alertId, code] = [params.get("alert"), params.get("code")];
  if (alertId && code) await openByCode(alertId, code).catch(fail);
  const saved = storedToken(SCREEN);
  if (saved && !code) {
    await start(saved).catch((err) => {
      if (err.status !== 0) storeToken(SCREEN, null);
      fail(err);
    });
  }
  if (alertId && !code) await showKeptAlert(alertId);
  await renderNotifyState();
  document.body.dataset.ready = "true";
}

main().catch(fail);
