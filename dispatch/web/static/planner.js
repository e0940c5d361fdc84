// Planner page: run a coverage study (the same reach model as dispatch), see the H3 heat map of
// ETAs and the per-district shares, and ask where k new AEDs or recruits would help most.

import { api, checkToken, minutes, onSubmit, storedToken, storeToken } from "./lib/api.js";
import { fromWgs84, geojsonFromWgs84 } from "./lib/datum.js";
import { createMap, drawDistricts, loadConfig, pinIcon } from "./lib/map.js";

const SCREEN = "planner";
// ETA bands (seconds) and their colours, from reached-early to out of reach; dark enough to read labels.
const BANDS = [
  [120, "#1a7f37", "≤ 2 min"],
  [180, "#52a447", "≤ 3 min"],
  [240, "#c9b22a", "≤ 4 min"],
  [300, "#e07b00", "≤ 5 min"],
  [Infinity, "#b3261e", "> 5 min or nobody"],
];
const $ = (id) => document.getElementById(id);
const state = { token: null, config: null, map: null, cells: null, cellLayer: null, siteLayer: null, reach: 300 };

const say = (text) => ($("status").textContent = text);
const fail = (err) => ($("error").textContent = err instanceof Error ? err.message : String(err));
const clearError = () => ($("error").textContent = "");
const call = (path, opts = {}) => api(path, { ...opts, token: state.token });
const pct = (share) => (share === null || share === undefined ? "—" : `${(share * 100).toFixed(1)} %`);

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
      layer.bindTooltip(`${f.properties.district || ""}<br>responder ${minutes(f.properties.responder_eta_s)}, AED ${minutes(f.properties.aed_eta_s)}`),
  }).addTo(state.map);
  state.cellLayer.bringToBack();
  const bounds = state.cellLayer.getBounds();
  if (bounds.isValid()) state.map.fitBounds(bounds, { padding: [10, 10] });
}

function renderSummary(summary) {
  const rows = (summary.districts || [])
    .map(
      (d) =>
        `<tr><th scope="row">${d.name}</th><td class="num">${pct(d.population_share_responder)}</td><td class="num">${pct(d.population_share_aed)}</td><td class="num">${pct(d.area_share_responder)}</td><td class="num">${pct(d.area_share_aed)}</td></tr>`,
    )
    .join("");
  $("summary").innerHTML = `
    <p class="shares">Population reached in ${Math.round(state.reach)} s: <strong>${pct(summary.population_share_responder)}</strong> by a responder,
      <strong>${pct(summary.population_share_aed)}</strong> by an AED. Area: ${pct(summary.area_share_responder)} / ${pct(summary.area_share_aed)}.</p>
    <table id="districts">
      <caption class="visually-hidden">Coverage per district</caption>
      <thead><tr><th scope="col">District</th><th scope="col" class="num">People, responder</th><th scope="col" class="num">People, AED</th>
        <th scope="col" class="num">Area, responder</th><th scope="col" class="num">Area, AED</th></tr></thead>
      <tbody>${rows}</tbody>
    </table>`;
}

// The study's parameters; a placement uses the same ones, so its sites fit the map on screen.
function studyParameters() {
  const body = { resolution: Number($("resolution").value), reach_s: Number($("reach").value), source: $("source").value };
  if ($("at").value) body.at = new Date($("at").value).toISOString();
  return body;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Run a study: a short one answers at once; a long one answers 202 with a job, polled until done.
async function runStudy(path, body, doing) {
  let answer = await call(path, { method: "POST", body });
  while (answer && answer.job_id && answer.poll) {
    if (answer.status === "done") return answer.result;
    if (answer.status === "failed") throw new Error(answer.error || "The study failed.");
    say(`${doing} ${Math.round((answer.progress || 0) * 100)} % (${answer.status})`);
    await sleep(1000);
    answer = await call(answer.poll);
  }
  return answer;
}

async function runCoverage() {
  clearError();
  const body = studyParameters();
  $("run-coverage").disabled = true;
  say("Running the coverage study…");
  try {
    const result = await runStudy("/v1/coverage", body, "Running the coverage study…");
    state.reach = body.reach_s;
    state.cells = result.cells;
    state.siteLayer.clearLayers(); // proposed sites belonged to the previous study
    $("sites").innerHTML = "";
    drawCells();
    renderSummary(result.summary);
    say(`Coverage study done: ${result.cells.features.length} cells.`);
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
  say("Looking for the best sites…");
  try {
    const result = await runStudy("/v1/coverage/placement", body, "Looking for the best sites…");
    state.siteLayer.clearLayers();
    result.sites.forEach((s, i) => {
      const at = fromWgs84(s.lat, s.lng, state.config.map_crs);
      L.marker(at, { icon: pinIcon("site", String(i + 1)), title: `proposed site ${i + 1}` })
        .bindPopup(`Site ${i + 1}: +${s.gain_population} people, +${s.gain_cells} cells`)
        .addTo(state.siteLayer);
    });
    const rows = result.sites
      .map((s, i) => `<tr><td>${i + 1}</td><td class="num">${s.lat.toFixed(5)}, ${s.lng.toFixed(5)}</td><td class="num">${s.gain_population}</td><td class="num">${pct(result.curve[i])}</td></tr>`)
      .join("");
    $("sites").innerHTML = `<table id="site-table"><caption class="visually-hidden">Proposed sites</caption>
      <thead><tr><th scope="col">#</th><th scope="col" class="num">Where (WGS-84)</th><th scope="col" class="num">+ people</th><th scope="col" class="num">Population covered</th></tr></thead>
      <tbody>${rows}</tbody></table>`;
    say(
      result.sites.length
        ? `${result.sites.length} site(s) proposed.`
        : "No site adds coverage: nobody on duty could bring one in time (or everyone is already covered).",
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
  $("who").textContent = `Signed in: ${who.label || who.role}`;
  $("who").classList.remove("hidden");
  $("signout").classList.remove("hidden");
  const { error } = await drawDistricts(state.map, state.config, token);
  if (error) say(`No city outline: ${error.message}`);
}

async function main() {
  state.config = await loadConfig();
  state.map = createMap($("map"), state.config);
  state.siteLayer = L.layerGroup().addTo(state.map);
  $("reach").value = state.config.reach_s;
  $("legend").innerHTML = BANDS.map(([, c, label]) => `<li><span class="swatch" style="background:${c}"></span>${label}</li>`).join("");
  onSubmit($("coverage-form"), runCoverage);
  onSubmit($("placement-form"), runPlacement);
  for (const radio of document.querySelectorAll('input[name="eta"]')) radio.addEventListener("change", drawCells);
  onSubmit($("signin"), () => start($("token").value.trim()).catch(fail));
  $("signout").addEventListener("click", () => {
    storeToken(SCREEN, null);
    location.reload();
  });
  const saved = storedToken(SCREEN);
  if (saved) await start(saved).catch((err) => {
    storeToken(SCREEN, null);
    fail(err);
  });
  document.body.dataset.ready = "true";
}

main().catch(fail);
