// The programme coordinators' page (issue 22): responders whose debrief asked for support or told
// of an injury, with whom to call (name, phone, team), about which incident, and what they said;
// each is marked done with a note of what was done. The oldest waiting comes first.

import { api, checkToken, onSubmit, storeToken, resumeSession } from "./lib/api.js";
import { escapeHtml } from "./lib/html.js";
import { loadLanguage, mountHelp, mountLanguageSwitch, t, term, translatePage } from "./lib/i18n.js";
import { mountProgramme } from "./lib/programme.js";
import { dateTime } from "./lib/when.js";

const SCREEN = "coordinator";
const $ = (id) => document.getElementById(id);
const state = { token: null, zone: "Asia/Shanghai" };
const say = (text) => ($("status").textContent = text);
const fail = (err) => ($("error").textContent = err instanceof Error ? err.message : String(err));
const clearError = () => ($("error").textContent = "");
const call = (path, opts = {}) => api(path, { ...opts, token: state.token });

function answers(f) {
  const flags = [f.wants_support && t("aftercare.coordinator.wants_support"), f.injured && t("aftercare.coordinator.injured")].filter(Boolean);
  const note = f.note ? `<br><q>${escapeHtml(f.note)}</q>` : "";
  return `<strong>${escapeHtml(flags.join(t("list.sep")))}</strong> · ${escapeHtml(t(`aftercare.debrief.went_${f.went}`))}${note}<br><span class="hint">${escapeHtml(t("aftercare.coordinator.answered", { time: dateTime(f.answered_at, state.zone) }))}</span>`;
}

function action(f) {
  if (f.state === "done") return escapeHtml(t("aftercare.coordinator.done_by", { by: f.done_by, time: dateTime(f.done_at, state.zone), note: f.done_note }));
  return `<form class="mark-done" data-id="${f.debrief_id}" data-name="${escapeHtml(f.responder_name || "")}">
      <label for="note-${f.debrief_id}">${escapeHtml(t("aftercare.coordinator.note_label"))}</label>
      <input id="note-${f.debrief_id}" name="note" type="text" maxlength="2000" required>
      <button type="submit">${escapeHtml(t("aftercare.coordinator.mark_done"))}</button>
    </form>`;
}

function row(f) {
  const who = f.responder_name ? escapeHtml(f.responder_name) : escapeHtml(t("aftercare.coordinator.erased"));
  const phone = f.responder_phone ? `<br><a href="tel:${escapeHtml(f.responder_phone)}">${escapeHtml(f.responder_phone)}</a>` : "";
  const team = f.team ? `<br><span class="hint">${escapeHtml(f.team)}</span>` : "";
  const incident = `${escapeHtml(term("category", f.category))}<br>${escapeHtml(dateTime(f.incident_opened_at, state.zone))}`;
  return `<tr data-debrief="${f.debrief_id}"><td>${who}${phone}${team}</td><td>${incident}</td><td>${answers(f)}</td><td>${action(f)}</td></tr>`;
}

async function refresh() {
  const which = $("state").value;
  const list = await call(`/v1/debriefs/follow-ups?state=${which}`);
  $("rows").innerHTML = list.map(row).join("");
  $("follow-ups").classList.toggle("hidden", list.length === 0);
  $("empty").classList.toggle("hidden", list.length > 0);
  $("empty").textContent = t(which === "open" ? "aftercare.coordinator.none_open" : "aftercare.coordinator.none_done");
}

async function markDone(form) {
  clearError();
  const note = form.elements.note.value.trim();
  if (!note) return fail(t("aftercare.coordinator.need_note"));
  form.querySelector("button").disabled = true;
  try {
    await call(`/v1/debriefs/${form.dataset.id}/follow-up`, { method: "POST", body: { note } });
    say(t("aftercare.coordinator.marked", { name: form.dataset.name || t("aftercare.coordinator.erased") }));
    await refresh();
  } catch (err) {
    form.querySelector("button").disabled = false;
    fail(err);
  }
}

async function start(token) {
  clearError();
  const who = await checkToken(token, ["coordinator", "admin"]);
  state.token = token;
  storeToken(SCREEN, token);
  $("signin").classList.add("hidden");
  $("who").textContent = t("signin.as", { who: who.label || t(`role.${who.role}`) });
  for (const id of ["who", "signout"]) $(id).classList.remove("hidden");
  mountProgramme($("programme"), { token: () => state.token, zone: state.zone, fail }); // how the circle performs
  await refresh();
}

async function main() {
  await loadLanguage();
  translatePage();
  mountLanguageSwitch(document.querySelector("header.top"));
  mountHelp(document.querySelector("header.top"), "coordinator");
  state.zone = (await api("/v1/web/config")).timezone; // the city's clock, not the browser's
  onSubmit($("signin"), () => start($("token").value.trim()).catch(fail));
  $("signout").addEventListener("click", () => {
    storeToken(SCREEN, null);
    location.reload();
  });
  $("state").addEventListener("change", () => refresh().catch(fail));
  $("rows").addEventListener("submit", (event) => {
    event.preventDefault();
    markDone(event.target).catch(fail);
  });
  await resumeSession(SCREEN, start, fail);
  document.body.dataset.ready = "true";
}

main().catch(fail);
