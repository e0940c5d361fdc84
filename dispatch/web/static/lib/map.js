// The base map shared by the screens. Leaflet (global `L`, from npm, served by us) draws tiles when
// a tile URL is configured, in the tiles' datum; without tiles the map still shows the district
// outlines and everything on it over a plain background.

import { api } from "./api.js";
import { geojsonFromWgs84 } from "./datum.js";
import { t } from "./i18n.js";

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
  map.setView(FALLBACK_CENTER, 13);
  return map;
}

// Draw the city's districts (WGS-84 from /v1/city, shifted into the map datum) and fit the view.
export async function drawDistricts(map, config, token) {
  let city;
  try {
    city = await api("/v1/city", { token });
  } catch (err) {
    return { layer: null, error: err };
  }
  const districts = geojsonFromWgs84(city.districts, config.map_crs);
  const layer = L.geoJSON(districts, {
    style: { color: "#3b4a5a", weight: 1.5, fill: true, fillColor: "#ffffff", fillOpacity: 0.35 },
    interactive: false,
  }).addTo(map);
  layer.eachLayer((feature) => {
    const name = feature.feature?.properties?.name;
    if (name) feature.bindTooltip(name, { permanent: false, direction: "center", className: "district-label" });
  });
  const bounds = layer.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10] });
  return { layer, city, error: null };
}

export function pinIcon(className, label) {
  return L.divIcon({ className: `pin ${className}`, html: `<span>${label}</span>`, iconSize: [22, 22], iconAnchor: [11, 11] });
}
