// "My service" on the responder app: this month's hours on duty, incidents attended and points, as
// the programme records them (GET /v1/responders/{id}/service: the window defaults to the 1st of
// the month on the city's clock, to now). Volunteers see what their time earned without asking the
// office; the figures are the ones the monthly export sends to the volunteer-management system.

import { number, t } from "./i18n.js";

const REFRESH_MS = 60000; // hours on duty grow while on duty: a minute is fresh enough for a phone

function figure(list, id, label) {
  const box = document.createElement("div");
  const term = document.createElement("dt");
  const value = document.createElement("dd");
  term.textContent = label;
  value.id = id;
  value.textContent = "—";
  box.append(term, value);
  list.append(box);
  return value;
}

// Fill the panel `card` (an empty <section> of the page) and keep it current; `call` is the page's
// authenticated API call, `me` the responder's id. Returns `refresh`, for the page to call after a
// duty change. A failed read (offline) leaves the last figures and says so; the app goes on.
export function mountServicePanel(card, call, me) {
  const heading = document.createElement("h2");
  heading.id = "service-title";
  heading.textContent = t("service.heading");
  const list = document.createElement("dl");
  list.className = "service-figures";
  const hours = figure(list, "service-hours", t("service.hours_label"));
  const incidents = figure(list, "service-incidents", t("service.incidents_label"));
  const points = figure(list, "service-points", t("service.points_label"));
  const note = document.createElement("p");
  note.className = "hint";
  note.id = "service-note";
  card.replaceChildren(heading, list, note);
  card.setAttribute("aria-labelledby", heading.id);

  async function refresh() {
    try {
      const record = await call(`/v1/responders/${encodeURIComponent(me)}/service`);
      hours.textContent = t("service.hours", { n: number(record.on_duty_hours, 1) });
      incidents.textContent = number(record.incidents_attended);
      points.textContent = number(record.points, Number.isInteger(record.points) ? 0 : 1);
      note.textContent = t("service.note");
    } catch {
      note.textContent = t("service.unavailable");
    }
  }

  card.classList.remove("hidden");
  refresh();
  setInterval(refresh, REFRESH_MS);
  return refresh;
}
