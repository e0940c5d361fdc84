// The base map shared by the screens. Leaflet (global `L`, from npm, served by us) draws tiles when
// a tile URL is configured, in the tiles' datum (then the city is drawn as thin outlines over them);
// without tiles the map draws the city itself: its land (the districts) on a sea-coloured background,
// the streets (街道), and the names of both at the zooms where they read.

import { api } from "./api.js";
import { fromWgs84, geojsonFromWgs84 } from "./datum.js";
import { escapeHtml } from "./html.js";
import { language, t } from "./i18n.js";

export const FALLBACK_CENTER = [22.5431, 114.0579]; // Shenzhen Civic Center, when no city is known

export async function loadConfig() {
  return api("/v1/web/config");
}

export function createMap(element, config, options = {}) {
  const map = L.map(element, { zoomControl: false, keyboard: true, minZoom: 3, maxZoom: 19, ...options });
  L.control.zoom({ zoomInTitle: t("map.zoom_in"), zoomOutTitle: t("map.zoom_out") }).addTo(map); // Leaflet's own words are English
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: t("map.tiles", { crs: config.tile_crs }) }).addTo(map);
  } else {
    element.classList.add("no-tiles");
  }
  // land under every overlay, streets above the district outlines, names above both and below the pins
  map.createPane("land").style.zIndex = 350;
  map.createPane("streets").style.zIndex = 410;
  map.createPane("labels").style.zIndex = 450;
  map.getPane("labels").style.pointerEvents = "none";
  map.setView(FALLBACK_CENTER, 13);
  return map;
}

// From this zoom on a street (街道, a few km across) is big enough on screen to carry its name; below
// it the district names orient and the street names would pile up.
export const STREET_LABEL_ZOOM = 12;
// Hong Kong is outside the city's data: without tiles its side of the border is just "sea", so a muted
// name south of the border says why the land stops there (WGS-84, the New Territories; drawn only for Shenzhen).
const HONG_KONG = [22.42, 114.12];
const LOOK = {
  // without tiles the districts, filled in a pane of their own under every overlay, are the land over the
  // sea-coloured map background (a planner's heat map, sent to the back, still lies above the land)
  bare: {
    land: { stroke: false, fill: true, fillColor: "#f4f1e8", fillOpacity: 1 },
    district: { color: "#5b6b78", weight: 2, fill: false },
    street: { color: "#a9b3ba", weight: 0.8, fill: false },
  },
  // over tiles only thin outlines, so the tiles' own land and streets show through
  tiles: {
    land: null,
    district: { color: "#3b4a5a", weight: 1.5, fill: false },
    street: { color: "#3b4a5a", weight: 0.5, opacity: 0.6, fill: false },
  },
};

// A place's name in the page's language: Chinese pages read name_zh (南园街道), others the pinyin.
export function placeName(properties) {
  return (language() === "zh-CN" && properties.name_zh) || properties.name;
}

// One label per place, at the point the service chose inside it (`label_at`, WGS-84), in the map datum.
function labelLayer(collection, config, className) {
  const labels = (collection?.features || [])
    .filter((f) => f.properties?.label_at)
    .map((f) => {
      const [lng, lat] = f.properties.label_at;
      const name = placeName(f.properties);
      const icon = L.divIcon({ className: `place-label ${className}`, html: `<span>${escapeHtml(name)}</span>`, iconSize: null });
      return L.marker(fromWgs84(lat, lng, config.map_crs), { icon, interactive: false, keyboard: false, pane: "labels" });
    });
  return L.layerGroup(labels);
}

// District names at city zooms, street names from STREET_LABEL_ZOOM on: each set only when it reads.
function showLabelsByZoom(map, districtLabels, streetLabels) {
  const update = () => {
    const streets = map.getZoom() >= STREET_LABEL_ZOOM;
    if (streets) districtLabels.remove();
    else districtLabels.addTo(map);
    if (streets) streetLabels.addTo(map);
    else streetLabels.remove();
  };
  map.on("zoomend", update);
  update();
}

// Draw the city (WGS-84 from /v1/city, shifted into the map datum): districts, their streets and the
// names of both, and fit the view. Without tiles the district fill is the land and the map's own
// background the sea, so the coastline and the Hong Kong border are the land's edge.
export async function drawDistricts(map, config, token) {
  let city;
  try {
    city = await api("/v1/city", { token });
  } catch (err) {
    return { layer: null, error: err };
  }
  const look = config.tile_url ? LOOK.tiles : LOOK.bare;
  const districts = geojsonFromWgs84(city.districts, config.map_crs);
  if (look.land) L.geoJSON(districts, { style: look.land, interactive: false, className: "land", pane: "land" }).addTo(map);
  const layer = L.geoJSON(districts, { style: look.district, interactive: false, className: "district" }).addTo(map);
  if (city.streets?.features?.length) {
    L.geoJSON(geojsonFromWgs84(city.streets, config.map_crs), { style: look.street, interactive: false, className: "street", pane: "streets" }).addTo(map);
  }
  showLabelsByZoom(map, labelLayer(city.districts, config, "district-label"), labelLayer(city.streets, config, "street-label"));
  const bounds = layer.getBounds();
  if (!config.tile_url && bounds.isValid() && bounds.contains(FALLBACK_CENTER)) {
    const [lat, lng] = fromWgs84(...HONG_KONG, config.map_crs);
    const icon = L.divIcon({ className: "place-label foreign-label", html: `<span>${escapeHtml(t("map.hong_kong"))}</span>`, iconSize: null });
    L.marker([lat, lng], { icon, interactive: false, keyboard: false, pane: "labels" }).addTo(map);
  }
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10] });
  return { layer, city, error: null };
}

// How far a responder gets in `reachS` seconds by `mode`: geo.reach.ReachModel.max_distance_m with the
// service's own numbers (`reach_model` in /v1/web/config), so the circle is the dispatch search's.
export function reachRadiusM(model, reachS, mode) {
  return Math.max(0, ((reachS - model.activation_s) * model.speed_mps[mode]) / model.circuity);
}

export function pinIcon(className, label) {
  return L.divIcon({ className: `pin ${className}`, html: `<span>${label}</span>`, iconSize: [22, 22], iconAnchor: [11, 11] });
}
