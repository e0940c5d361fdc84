// The planner page's "Programme" section (issue 22): how the rescue circle performed over a window
// of days, per district, street, team or month — the shares of incidents reached by a responder and
// by an AED within 5 minutes (bars per row, and their trend by month), the table of every figure of
// `GET /v1/reports/programme`, and the same report as a CSV file.
// Dates are the city's: the page's "to" is the last day shown, so the API (whose window is
// [from, to)) is asked for the day after it.

import { api, ApiError, describeRefusal } from "./api.js";
import { shareBars, shareTrend } from "./charts.js";
import { escapeHtml } from "./html.js";
import { duration, language, number, percent, t } from "./i18n.js";

const DAY_MS = 86_400_000;
const DEFAULT_DAYS = 30;
const GROUPINGS = ["district", "street", "team", "month"];
const $ = (id) => document.getElementById(id);

// Today's date on the city's clock ("2026-11-30"), whatever the browser's zone.
export function cityToday(zone, now = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(now);
}

export function addDays(date, days) {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

function reportPath(window, by, format = "json") {
  const params = new URLSearchParams({ from: window.from, to: addDays(window.to, 1), by, format });
  return `/v1/reports/programme?${params}`;
}

const series = () => [
  { key: "responder_5min", name: t("programme.responder_5min"), colour: "#1a7f37" },
  { key: "aed_5min", name: t("programme.aed_5min"), colour: "#0b4f8a" },
];

// A row's name in the page's language: a place's Chinese or English name, a team's path, a month.
function rowLabel(row, by) {
  if (row.key === "total") return t("programme.total");
  if (row.key === "outside") return by === "team" ? t("programme.no_team") : t("programme.outside");
  const zh = language() === "zh-CN";
  const name = (zh && row.name_zh) || row.name;
  if (by === "street") return `${(zh && row.district_zh) || row.district} · ${name}`;
  return by === "district" ? name : row.key;
}

const columns = () => [
  ["incidents", t("programme.col_incidents"), (v) => number(v)],
  ["responder_5min", t("programme.responder_5min"), percent],
  ["aed_5min", t("programme.aed_5min"), percent],
  ["acceptance_rate", t("programme.col_acceptance"), percent],
  ["median_accept_s", t("programme.col_median_accept"), duration],
  ["alerts_per_incident", t("programme.col_alerts_per_incident"), (v) => (v === null ? "—" : number(v, 2))],
  ["ran_for_nothing", t("programme.col_ran_for_nothing"), (v) => number(v)],
  ["active_responders", t("programme.col_active"), (v) => number(v)],
  ["on_duty_hours", t("programme.col_hours"), (v) => number(v, 1)],
];

function tableOf(report) {
  const cols = columns();
  const cells = (row) => cols.map(([key, , show]) => `<td class="num" data-col="${key}">${escapeHtml(show(row[key]))}</td>`).join("");
  const line = (row) => `<tr data-key="${escapeHtml(row.key)}"><th scope="row">${escapeHtml(rowLabel(row, report.by))}</th>${cells(row)}</tr>`;
  return `<table id="programme-rows">
    <caption class="visually-hidden">${escapeHtml(t("programme.table"))}</caption>
    <thead><tr><th scope="col">${escapeHtml(t(`programme.by_${report.by}`))}</th>${cols.map(([, name]) => `<th scope="col" class="num">${escapeHtml(name)}</th>`).join("")}</tr></thead>
    <tbody>${report.rows.map(line).join("")}</tbody>
    <tfoot>${line(report.total)}</tfoot>
  </table>`;
}

function barsOf(report) {
  const rows = [...report.rows, report.total].map((row) => ({ label: rowLabel(row, report.by), values: series().map((s) => row[s.key]) }));
  return shareBars({ title: t("programme.bars_title"), rows, series: series(), format: percent, noData: t("programme.no_incidents") });
}

function trendOf(months) {
  const points = months.rows.map((row) => ({ label: row.key, values: series().map((s) => row[s.key]) }));
  return shareTrend({ title: t("programme.trend_title"), points, series: series(), format: percent });
}

function formHtml() {
  const options = GROUPINGS.map((by) => `<option value="${by}">${escapeHtml(t(`programme.by_${by}`))}</option>`).join("");
  return `<h2 id="programme-h">${escapeHtml(t("programme.heading"))}</h2>
    <p class="note">${escapeHtml(t("programme.intro"))}</p>
    <form id="programme-form">
      <div class="row">
        <div><label for="programme-from">${escapeHtml(t("programme.from"))}</label><input id="programme-from" type="date" required></div>
        <div><label for="programme-to">${escapeHtml(t("programme.to"))}</label><input id="programme-to" type="date" required></div>
        <div><label for="programme-by">${escapeHtml(t("programme.rows"))}</label><select id="programme-by">${options}</select></div>
        <div class="buttons"><button id="programme-show" type="submit">${escapeHtml(t("programme.show"))}</button>
          <button id="programme-csv" type="button" class="secondary">${escapeHtml(t("programme.csv"))}</button></div>
      </div>
    </form>
    <div class="programme-charts">
      <figure id="programme-bars"></figure>
      <figure id="programme-trend"></figure>
    </div>
    <div id="programme-table" class="programme-table"></div>`;
}

// Fetch the CSV with the bearer token (a plain link cannot carry it) and hand it to the browser as a
// download under the service's file name.
async function downloadCsv(path, token) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new ApiError(res.status, describeRefusal(res.status, await res.json().catch(() => null)));
  const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "")?.[1] || "programme.csv";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await res.blob());
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// Build the section in `container` and show the last 30 days by district; `token()` is the signed-in
// token, `zone` the city's time zone, `fail` shows an error.
export function mountProgramme(container, { token, zone, fail }) {
  container.innerHTML = formHtml();
  container.classList.remove("hidden");
  const today = cityToday(zone);
  $("programme-from").value = addDays(today, 1 - DEFAULT_DAYS);
  $("programme-to").value = today;
  const chosen = () => ({ from: $("programme-from").value, to: $("programme-to").value });

  async function show() {
    const window = chosen();
    const by = $("programme-by").value;
    if (!window.from || !window.to) return fail(t("programme.need_dates"));
    $("programme-show").disabled = true;
    container.dataset.state = "loading";
    try {
      const ask = (grouping) => api(reportPath(window, grouping), { token: token() });
      const [report, months] = await Promise.all([ask(by), by === "month" ? null : ask("month")]);
      $("programme-bars").innerHTML = barsOf(report);
      $("programme-trend").innerHTML = trendOf(months || report);
      $("programme-table").innerHTML = tableOf(report);
      container.dataset.state = "shown";
    } catch (err) {
      container.dataset.state = "failed";
      fail(err);
    } finally {
      $("programme-show").disabled = false;
    }
  }

  $("programme-form").addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  $("programme-csv").addEventListener("click", () => downloadCsv(reportPath(chosen(), $("programme-by").value, "csv"), token()).catch(fail));
  return show();
}
