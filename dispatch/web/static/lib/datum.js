// WGS-84 -> GCJ-02 -> BD-09 in the browser, ported from geo/crs.py (the published forward formulas).
// The service stores WGS-84; Chinese tile providers draw GCJ-02, so data that arrives in WGS-84
// (district outlines, coverage cells) is shifted here before drawing. Endpoints that accept `crs`
// are asked for the map's datum directly instead. Points outside China are unchanged.

const A = 6378245.0;
const EE = 0.00669342162296594323;
const PI = Math.PI;

export function outOfChina(lat, lng) {
  return !(lng >= 72.004 && lng <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
}

export function wgs84ToGcj02(lat, lng) {
  if (outOfChina(lat, lng)) return [lat, lng];
  const x = lng - 105.0;
  const y = lat - 35.0;
  let dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dlat += ((20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0) / 3.0;
  dlat += ((20.0 * Math.sin(y * PI) + 40.0 * Math.sin((y / 3.0) * PI)) * 2.0) / 3.0;
  dlat += ((160.0 * Math.sin((y / 12.0) * PI) + 320.0 * Math.sin((y * PI) / 30.0)) * 2.0) / 3.0;
  let dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dlng += ((20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0) / 3.0;
  dlng += ((20.0 * Math.sin(x * PI) + 40.0 * Math.sin((x / 3.0) * PI)) * 2.0) / 3.0;
  dlng += ((150.0 * Math.sin((x / 12.0) * PI) + 300.0 * Math.sin((x / 30.0) * PI)) * 2.0) / 3.0;
  const rad = (lat / 180.0) * PI;
  const magic = 1 - EE * Math.sin(rad) ** 2;
  const sqrtMagic = Math.sqrt(magic);
  dlat = (dlat * 180.0) / (((A * (1 - EE)) / (magic * sqrtMagic)) * PI);
  dlng = (dlng * 180.0) / ((A / sqrtMagic) * Math.cos(rad) * PI);
  return [lat + dlat, lng + dlng];
}

export function gcj02ToBd09(lat, lng) {
  if (outOfChina(lat, lng)) return [lat, lng];
  const z = Math.sqrt(lng * lng + lat * lat) + 0.00002 * Math.sin(lat * PI);
  const theta = Math.atan2(lat, lng) + 0.000003 * Math.cos(lng * PI);
  return [z * Math.sin(theta) + 0.006, z * Math.cos(theta) + 0.0065];
}

export function fromWgs84(lat, lng, crs) {
  if (crs === "gcj02") return wgs84ToGcj02(lat, lng);
  if (crs === "bd09") return gcj02ToBd09(...wgs84ToGcj02(lat, lng));
  return [lat, lng];
}

// A GeoJSON geometry (or Feature/FeatureCollection) moved from WGS-84 into `crs`.
export function geojsonFromWgs84(obj, crs) {
  if (crs === "wgs84" || !obj) return obj;
  const move = (c) => (typeof c[0] === "number" ? (([la, ln]) => [ln, la])(fromWgs84(c[1], c[0], crs)) : c.map(move));
  if (obj.type === "FeatureCollection") return { ...obj, features: obj.features.map((f) => geojsonFromWgs84(f, crs)) };
  if (obj.type === "Feature") return { ...obj, geometry: geojsonFromWgs84(obj.geometry, crs) };
  if (obj.type === "GeometryCollection") return { ...obj, geometries: obj.geometries.map((g) => geojsonFromWgs84(g, crs)) };
  return { ...obj, coordinates: move(obj.coordinates) };
}
