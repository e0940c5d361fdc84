// Planner page: run a coverage study (the same reach model as dispatch), see the H3 heat map of
// ETAs and the per-district shares, and ask where k new AEDs or recruits would help most.

import { api, checkToken, onSubmit, storeToken, resumeSession } from "./lib/api.js";
import { escapeHtml } from "./lib/html.js";
import { cityTimeToIso, duration, loadLanguage, mountHelp, mountLanguageSwitch, number, percent, t, translatePage, useTimeZone } from "./lib/i18n.js";
import { fromWgs84, geojsonFromWgs84 } from "./lib/datum.js";
import { createMap, drawDistricts, loadConfig, pinIcon, placeName } from "./lib/map.js";
import { mountProgramme } from "./lib/programme.js";

const SCREEN = "planner";
// ETA bands (seconds) and their colours, from reached-early to out of reach; dark enough to read labels.
const BANDS = [
  [120, "#1a7f37"],
  [180, "#52a447"],
  [240, "#c9b22a"],
  [300, "#e07b00"],
  [Infinity, "#b3261e"],
];
const bandLabel = (limit) => (limit === Infinity ? t("planner.band_out", { limit: duration(300) }) : t("planner.band_within", { limit: duration(limit) }));
const $ = (id) => document.getElementById(id);
const state = { token: null, config: null, map: null, cells: null, cellLayer: null, siteLayer: null, reach: 300 };

const say = (text) => ($("status").textContent = text);
const fail = (err) => ($("error").textContent = err instanceof Error ? err.message : String(err));
const clearError = () => ($("error").textContent = "");
const call = (path, opts = {}) => api(path, { ...opts, token: state.token });
const pct = percent;

function colour(eta) {
  if (eta === null || eta === undefined) return BANDS[BANDS.length - 1][1];
  return BANDS.find(([limit]) => eta <= limit)[1];
}

function etaField() {
  return document.querySelector('input[name="eta"]:checked').value;
}

function drawCells() {
  if (!state.cells) return;
  if (state.cellLayer) state.cellLayer.remove();
  const field = etaField();
  state.cellLayer = L.geoJSON(geojsonFromWgs84(state.cells, state.config.map_crs), {
    style: (f) => ({ color: colour(f.properties[field]), weight: 0.5, fillColor: colour(f.properties[field]), fillOpacity: 0.55 }),
    onEachFeature: (f, layer) =>
      layer.bindTooltip(`${escapeHtml(f.properties.district || "")}<br>${escapeHtml(t("planner.cell_tooltip", { responder: duration(f.properties.responder_eta_s), aed: duration(f.properties.aed_eta_s) }))}`),
  }).addTo(state.map);
  state.cellLayer.bringToBack();
  const bounds = state.cellLayer.getBounds();
  if (bounds.isValid()) state.map.fitBounds(bounds, { padding: [10, 10] });
}

// One table of shares per place (districts, then streets), names in the page's language.
function sharesTable(id, caption, column, places) {
  const rows = places
    .map(
      (d) =>
        `<tr><th scope="row">${escapeHtml(placeName(d))}</th><td class="num">${pct(d.population_share_responder)}</td><td class="num">${pct(d.population_share_aed)}</td><td class="num">${pct(d.area_share_responder)}</td><td class="num">${pct(d.area_share_aed)}</td></tr>`,
    )
    .join("");
  return `
    <table id="${id}">
      <caption class="visually-hidden">${t(caption)}</caption>
      <thead><tr><th scope="col">${t(column)}</th><th scope="col" class="num">${t("planner.col_people_responder")}</th><th scope="col" class="num">${t("planner.col_people_aed")}</th>
        <th scope="col" class="num">${t("planner.col_area_responder")}</th><th scope="col" class="num">${t("planner.col_area_aed")}</th></tr></thead>
      <tbody>${rows}</tbody>
    </table>`;
}

function renderSummary(summary) {
  const streets = summary.streets || [];
  $("summary").innerHTML = `
    <p class="shares">${t("planner.shares", {
      reach: duration(state.reach),
      responder: `<strong>${pct(summary.population_share_responder)}</strong>`,
      aed: `<strong>${pct(summary.population_share_aed)}</strong>`,
      area_responder: pct(summary.area_share_responder),
      area_aed: pct(summary.area_share_aed),
    })}</p>
    ${sharesTable("districts", "planner.per_district", "planner.col_district", summary.districts || [])}
    ${streets.length ? `<details id="streets-shares"><summary>${t("planner.per_street")}</summary>${sharesTable("streets", "planner.per_street", "planner.col_street", streets)}</details>` : ""}`;
}

// The study's parameters; a placement uses the same ones, so its sites fit the map on screen.
function studyParameters() {
  const body = { resolution: Number($("resolution").value), reach_s: Number($("reach").value), source: $("source").value };
  if ($("at").value) body.at = cityTimeToIso($("at").value);
  return body;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Run a study: a short one answers at once; a long one answers 202 with a job, polled until done.
async function runStudy(path, body, doing) {
  let answer = await call(path, { method: "POST", body });
  while (answer && answer.job_id && answer.poll) {
    if (answer.status === "done") return answer.result;
    if (answer.status === "failed") throw new Error(answer.error || t("planner.failed"));
    say(`${doing} ${percent(answer.progress || 0)} (${t(`job.${answer.status}`)})`);
    await sleep(1000);
    answer = await call(answer.poll);
  }
  return answer;
}

async function runCoverage() {
  clearError();
  const body = studyParameters();
  $("run-coverage").disabled = true;
  say(t("planner.running"));
  try {
    const result = await runStudy("/v1/coverage", body, t("planner.running"));
    state.reach = body.reach_s;
    state.cells = result.cells;
    state.siteLayer.clearLayers(); // proposed sites belonged to the previous study
    $("sites").innerHTML = "";
    drawCells();
    renderSummary(result.summary);
    say(t("planner.done", { cells: result.cells.features.length }));
    document.body.dataset.coverage = "done";
  } catch (err) {
    say("");
    fail(err);
  } finally {
    $("run-coverage").disabled = false;
  }
}

async function runPlacement() {
  clearError();
  const body = { ...studyParameters(), kind: $("kind").value, k: Number($("k").value) };
  if (body.kind === "recruit" && $("category").value) body.category = $("category").value;
  $("run-placement").disabled = true;
  say(t("planner.looking"));
  try {
    const result = await runStudy("/v1/coverage/placement", body, t("planner.looking"));
    state.siteLayer.clearLayers();
    result.sites.forEach((s, i) => {
      const at = fromWgs84(s.lat, s.lng, state.config.map_crs);
      L.marker(at, { icon: pinIcon("site", String(i + 1)), title: t("planner.site_title", { n: i + 1 }) })
        .bindPopup(escapeHtml(t("planner.site_popup", { n: i + 1, people: number(s.gain_population), cells: number(s.gain_cells) })))
        .addTo(state.siteLayer);
    });
    const rows = result.sites
      .map((s, i) => `<tr><td>${i + 1}</td><td class="num">${s.lat.toFixed(5)}, ${s.lng.toFixed(5)}</td><td class="num">${number(s.gain_population)}</td><td class="num">${pct(result.curve[i])}</td></tr>`)
      .join("");
    $("sites").innerHTML = `<table id="site-table"><caption class="visually-hidden">${t("planner.sites")}</caption>
      <thead><tr><th scope="col">#</th><th scope="col" class="num">${t("planner.col_where")}</th><th scope="col" class="num">${t("planner.col_gain")}</th><th scope="col" class="num">${t("planner.col_covered")}</th></tr></thead>
      <tbody>${rows}</tbody></table>`;
    say(
      result.sites.length ? t("planner.proposed", { n: result.sites.length }) : t("planner.no_site"),
    );
  } catch (err) {
    say("");
    fail(err);
  } finally {
    $("run-placement").disabled = false;
  }
}

async function start(token) {
  clearError();
  const who = await checkToken(token, ["planner", "admin"]);
  state.token = token;
  storeToken(SCREEN, token);
  $("signin").classList.add("hidden");
  $("who").textContent = t("signin.as", { who: who.label || t(`role.${who.role}`) });
  $("who").classList.remove("hidden");
  $("signout").classList.remove("hidden");
  mountProgramme($("programme"), { token: () => state.token, zone: state.config.timezone, fail });
  const { error } = await drawDistricts(state.map, state.config, token);
  if (error) say(t("map.no_outline", { reason: error.message }));
}

async function main() {
  await loadLanguage();
  translatePage();
  mountLanguageSwitch(document.querySelector("header.top"));
  mountHelp(document.querySelector("header.top"), "planner");
  state.config = await loadConfig();
  useTimeZone(state.config.timezone);
  state.map = createMap($("map"), state.config);
  state.siteLayer = L.layerGroup().addTo(state.map);
  $("reach").value = state.config.reach_s;
  $("legend").innerHTML = BANDS.map(([limit, c]) => `<li><span class="swatch" style="background:${c}"></span>${escapeHtml(bandLabel(limit))}</li>`).join("");
  onSubmit($("coverage-form"), runCoverage);
  onSubmit($("placement-form"), runPlacement);
  for (const radio of document.querySelectorAll('input[name="eta"]')) radio.addEventListener("change", drawCells);
  onSubmit($("signin"), () => start($("token").value.trim()).catch(fail));
  $("signout").addEventListener("click", () => {
    storeToken(SCREEN, null);
    location.reload();
  });
  await resumeSession(SCREEN, start, fail);
  document.body.dataset.ready = "true";
}

main().catch(fail);
