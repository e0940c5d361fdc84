// Talking to the service: bearer tokens kept per screen, readable errors, websocket addresses.
// Every refusal from the API becomes one sentence that names the field and the rule (or the role),
// because a dispatcher under pressure must see at once why the server said no.

import { refusal, t } from "./i18n.js";

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

// A staff page opened again signs in with the token it kept; a token refused (revoked, or of
// another role) is forgotten, so the sign-in form shows instead of the same refusal every time.
export async function resumeSession(screen, start, fail) {
  const saved = storedToken(screen);
  if (!saved) return;
  await start(saved).catch((err) => {
    storeToken(screen, null);
    fail(err);
  });
}

// The API's own words of an error body: `{"detail": "field: rule"}` or a list of problems; the page
// then says it in its language (lib/i18n.js `refusal`).
export function refusalDetail(body) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.errors)) return body.errors.map((e) => `${e.field}: ${e.rule}`).join("; ");
  if (body && Array.isArray(body.detail)) return body.detail.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
  return "";
}

export function describeRefusal(status, body) {
  return refusal(status, refusalDetail(body));
}

export async function api(path, { method = "GET", body, token, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, refusal(0, err.message));
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
    const needed = roles.map((role) => t(`role.${role}`)).join(t("list.or"));
    throw new ApiError(403, t("error.wrong_role", { role: t(`role.${who.role}`), roles: needed }));
  }
  return who;
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
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
