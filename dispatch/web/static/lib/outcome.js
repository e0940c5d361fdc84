// The outcome of a closed incident in the console (issue 22): the Utstein facts as a form the
// dispatcher fills in after closing, showing what is recorded so far. Every yes/no has a third
// answer, "not known", which the registry keeps apart from "no"; times are the city's wall clock.
//
// The console redraws an incident on every event; the form is built once per incident (and when it
// closes), so a redraw never wipes what the dispatcher is typing.

import { escapeHtml } from "./html.js";
import { cityTimeToIso, t, term } from "./i18n.js";
import { cityInputValue, dateTime } from "./when.js";

const WITNESSED = ["unwitnessed", "bystander", "first_responder", "ems"];
const YES_NO = ["bystander_cpr", "aed_attached", "shock_delivered", "rosc", "survived_admission", "survived_discharge"];
const TIMES = ["first_responder_cpr_at", "aed_attached_at", "first_shock_at", "ems_arrival_at"];
// the form's order: as the rescue went, then the hospital
const RECENTLY_CLOSED = 20;
const ORDER = ["witnessed", "bystander_cpr", "first_responder_cpr_at", "aed_attached", "aed_attached_at", "shock_delivered", "first_shock_at", "ems_arrival_at", "rosc", "survived_admission", "survived_discharge"];

function choice(name, options, labelOf) {
  const items = [["", t("aftercare.unknown")], ...options.map((o) => [o, labelOf(o)])];
  return `<select id="outcome-${name}" name="${name}">${items.map(([v, text]) => `<option value="${v}">${escapeHtml(text)}</option>`).join("")}</select>`;
}

function field(name) {
  const label = `<label for="outcome-${name}">${escapeHtml(t(`aftercare.field.${name}`))}</label>`;
  if (name === "witnessed") return label + choice(name, WITNESSED, (w) => term("aftercare.witnessed", w));
  if (YES_NO.includes(name)) return label + choice(name, ["true", "false"], (v) => t(v === "true" ? "aftercare.yes" : "aftercare.no"));
  return `${label}<input id="outcome-${name}" name="${name}" type="datetime-local" step="1">`;
}

function build(section) {
  section.innerHTML = `
    <h3 id="outcome-h">${escapeHtml(t("aftercare.outcome.heading"))}</h3>
    <p id="outcome-recorded" class="hint"></p>
    <dl id="outcome-summary" class="outcome-summary"></dl>
    <form id="outcome-form" class="outcome-form">
      <p class="hint">${escapeHtml(t("aftercare.outcome.times_hint"))}</p>
      <div class="outcome-grid">${ORDER.map((name) => `<div>${field(name)}</div>`).join("")}</div>
      <label for="outcome-note">${escapeHtml(t("aftercare.field.note"))}</label>
      <textarea id="outcome-note" name="note" maxlength="2000" rows="2"></textarea>
      <p><button type="submit">${escapeHtml(t("aftercare.outcome.save"))}</button></p>
    </form>`;
}

// What is recorded, in words: the form shows it too, this is the at-a-glance reading.
function describe(section, outcome, zone) {
  const said = (name) => {
    const v = outcome[name];
    if (v === null || v === undefined) return t("aftercare.unknown");
    if (name === "witnessed") return term("aftercare.witnessed", v);
    if (TIMES.includes(name)) return dateTime(v, zone);
    return t(v ? "aftercare.yes" : "aftercare.no");
  };
  section.querySelector("#outcome-recorded").textContent = t("aftercare.outcome.recorded", { by: outcome.recorded_by, time: dateTime(outcome.recorded_at, zone), changed: dateTime(outcome.updated_at, zone) });
  section.querySelector("#outcome-summary").innerHTML = ORDER.map((name) => `<div><dt>${escapeHtml(t(`aftercare.field.${name}`))}</dt><dd data-field="${name}">${escapeHtml(said(name))}</dd></div>`).join("");
}

function fill(form, outcome, zone) {
  for (const name of ORDER) {
    const v = outcome[name];
    const input = form.elements[name];
    if (TIMES.includes(name)) input.value = cityInputValue(v, zone);
    else input.value = v === null || v === undefined ? "" : String(v);
  }
  form.elements.note.value = outcome.note || "";
}

// The whole record as the form shows it: what is blank is sent as not known (null).
function read(form) {
  const body = {};
  for (const name of ORDER) {
    const value = form.elements[name].value;
    if (TIMES.includes(name)) body[name] = value ? cityTimeToIso(value) : null;
    else if (YES_NO.includes(name)) body[name] = value === "" ? null : value === "true";
    else body[name] = value || null;
  }
  body.note = form.elements.note.value.trim() || null;
  return body;
}

async function load(section, incidentId, call) {
  try {
    return await call(`/v1/incidents/${incidentId}/outcome`);
  } catch (err) {
    if (err.status === 404) {
      section.querySelector("#outcome-recorded").textContent = t("aftercare.outcome.none");
      return null;
    }
    throw err;
  }
}

export async function showOutcome(section, incident, deps) {
  const { call, zone, say, fail, clearError } = deps;
  const closed = incident.status === "closed";
  section.classList.toggle("hidden", !closed);
  if (!closed || section.dataset.incident === incident.id) return;
  section.dataset.incident = incident.id;
  build(section);
  const form = section.querySelector("#outcome-form");
  const outcome = await load(section, incident.id, call);
  if (section.dataset.incident !== incident.id) return; // another incident was chosen meanwhile
  if (outcome) {
    describe(section, outcome, zone);
    fill(form, outcome, zone);
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const saved = await call(`/v1/incidents/${incident.id}/outcome`, { method: "PUT", body: read(form) });
      describe(section, saved, zone);
      say(t("aftercare.outcome.saved"));
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  });
}

// Incidents closed lately, so an outcome learnt hours later (the hospital's word) can still be
// entered: each is a button the console selects like an open one (`data-id`).
export async function listClosed(list, { call, crs, zone }) {
  const closed = await call(`/v1/incidents?status=closed&limit=${RECENTLY_CLOSED}&crs=${crs}`);
  list.innerHTML =
    closed
      .map((i) => {
        const label = `${dateTime(i.created_at, zone)} ${term("category", i.category)} — ${i.address || t("console.no_address")}`;
        return `<li><button type="button" class="secondary" data-id="${i.id}">${escapeHtml(label)}</button></li>`;
      })
      .join("") || `<li>${escapeHtml(t("console.none_open"))}</li>`;
}
