// Talking to the service: bearer tokens kept per screen, readable errors, websocket addresses.
// Every refusal from the API becomes one sentence that names the field and the rule (or the role),
// because a dispatcher under pressure must see at once why the server said no.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const tokenKey = (screen) => `rescue-circle.token.${screen}`;

export function storedToken(screen) {
  return localStorage.getItem(tokenKey(screen));
}

export function storeToken(screen, token) {
  if (token) localStorage.setItem(tokenKey(screen), token);
  else localStorage.removeItem(tokenKey(screen));
}

// The message of an error body: `{"detail": "field: rule"}` or FastAPI's list of problems.
export function describeRefusal(status, body) {
  let text = "";
  if (body && typeof body.detail === "string") text = body.detail;
  else if (body && Array.isArray(body.errors)) text = body.errors.map((e) => `${e.field}: ${e.rule}`).join("; ");
  else if (body && Array.isArray(body.detail)) text = body.detail.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
  const prefix = { 401: "Not signed in", 403: "Not allowed", 404: "Not found", 409: "Conflict", 413: "Too large", 422: "Rejected", 503: "Service unavailable" }[status] || `Error ${status}`;
  return text ? `${prefix} (${status}): ${text}` : `${prefix} (${status})`;
}

export async function api(path, { method = "GET", body, token, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, `The service cannot be reached (${err.message}). Check the connection.`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, describeRefusal(res.status, data));
  return data;
}

export function wsUrl(path, params) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams(params).toString();
  return query ? `${proto}//${location.host}${path}?${query}` : `${proto}//${location.host}${path}`;
}

// A socket signed in with the token as subprotocols ["bearer", token]: a browser cannot set
// headers on a websocket, and a token in the URL would be written to access logs.
export function openSocket(path, params, token) {
  return new WebSocket(wsUrl(path, params), ["bearer", token]);
}

// Sign in: the token must be valid and of a role this screen is for; otherwise say which.
export async function checkToken(token, roles) {
  const who = await api("/v1/web/session", { token });
  if (!roles.includes(who.role)) {
    throw new ApiError(403, `Not allowed (403): this token is a '${who.role}' token; this screen needs ${roles.join(" or ")}`);
  }
  return who;
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}

export function minutes(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")} min`;
}

export function metres(m) {
  if (m === null || m === undefined) return "—";
  return m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}

// Forms are served with their submit buttons disabled and come alive here, once their handler is
// attached: a tap (or Enter) before the script is ready would otherwise submit the form natively,
// reloading the page and putting what was typed (a token) into the address.
export function onSubmit(form, handler) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    handler(event);
  });
  for (const button of form.querySelectorAll('button[type="submit"]')) button.disabled = false;
}
