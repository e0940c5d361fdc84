// The way to the patient, as the console and the phone show it: accepted, en route, AED picked up,
// on scene; each time on the city's clock, each mark saying whether the phone's own positions set
// it (`auto`) or the responder tapped it (`manual`). The times are the alert's; the source is the
// event's (the first of its kind for that alert, the one that set the time).
import { escapeHtml } from "./html.js";
import { clock, t } from "./i18n.js";

export const MARKS = ["en_route", "aed_picked_up", "on_scene"];
const COLUMNS = { en_route: "arrival.col_en_route", aed_picked_up: "arrival.col_aed", on_scene: "arrival.col_on_scene" };

// Accepted alerts only (declined, expired and unanswered ones never set off).
function accepted(alerts) {
  return alerts.filter((a) => a.answered_at && !["declined", "expired"].includes(a.status));
}

// alert id -> mark -> the source of the event that set it.
function sourcesOf(events) {
  const out = new Map();
  for (const e of events) {
    if (!MARKS.includes(e.kind) || !e.data?.alert_id) continue;
    const marks = out.get(e.data.alert_id) || {};
    if (!(e.kind in marks)) marks[e.kind] = e.data.source || "manual";
    out.set(e.data.alert_id, marks);
  }
  return out;
}

// `auto` or `manual`; nothing when unknown (marks replayed to a phone that reconnected).
export function sourceTag(source) {
  if (!source) return "";
  const kind = source === "auto" ? "auto" : "manual";
  return `<span class="arrival-src arrival-${kind}" data-source="${kind}" title="${escapeHtml(t(`arrival.source_${kind}_title`))}">${escapeHtml(t(`arrival.source_${kind}`))}</span>`;
}

function cell(at, source) {
  if (!at) return `<td class="arrival-open">—</td>`;
  return `<td><time datetime="${escapeHtml(at)}">${escapeHtml(clock(at))}</time> ${sourceTag(source)}</td>`;
}

// The console's timeline: one row per responder who accepted; `nameOf(responder_id)` names them.
export function timelineHtml(incident, nameOf) {
  const rows = accepted(incident.alerts || []);
  if (!rows.length) return `<p class="hint">${escapeHtml(t("arrival.nobody"))}</p>`;
  const sources = sourcesOf(incident.events || []);
  const head = [t("console.col_responder"), t("arrival.col_accepted"), ...MARKS.map((m) => t(COLUMNS[m]))];
  const body = rows.map((a) => {
    const marks = sources.get(a.alert_id) || {};
    const cells = MARKS.map((m) => (m === "aed_picked_up" && a.role !== "fetch_aed" ? `<td class="arrival-na">·</td>` : cell(a[`${m}_at`], marks[m])));
    return `<tr data-alert="${escapeHtml(a.alert_id)}"><td>${escapeHtml(nameOf(a.responder_id))}</td><td><time datetime="${escapeHtml(a.answered_at)}">${escapeHtml(clock(a.answered_at))}</time></td>${cells.join("")}</tr>`;
  });
  return `<table class="arrival-timeline"><caption class="visually-hidden">${escapeHtml(t("arrival.timeline"))}</caption><thead><tr>${head.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join("")}</tr></thead><tbody>${body.join("")}</tbody></table>`;
}

// One line of the phone's list of its marks (a `mark` frame: mark, at, source).
export function markLineHtml(frame) {
  const line = t("arrival.mark_line", { time: clock(frame.at), mark: t(`arrival.mark_${frame.mark}`) });
  return `<li data-mark="${escapeHtml(frame.mark)}">${escapeHtml(line)} ${sourceTag(frame.source)}</li>`;
}

// The marks an `incident` frame carries (set before the phone reconnected), in the way's order.
export function replayedMarks(frame) {
  return MARKS.filter((m) => frame.marks?.[m]).map((m) => ({ mark: m, at: frame.marks[m], source: null }));
}
