// The pages' language: Simplified Chinese for Shenzhen's dispatchers and responders, English beside
// it. Every word a page shows comes from a catalogue (`/static/i18n/<lang>.json`, the same keys in
// both, checked by a unit test); times are the city's clock (the server's `timezone`, not the
// browser's: a laptop set to another zone must still show Shenzhen time) in 24-hour form; numbers,
// distances and durations in the language's form.
//
// The choice: what the person picked on a page (localStorage, shared by the three pages and told to
// the responder's service worker), else the browser's first language (zh* -> Chinese, else English).

export const LANGUAGES = { "zh-CN": "中文", en: "English" };
const CHOICE_KEY = "rescue-circle.lang";
const FALLBACK_ZONE = "Asia/Shanghai";

const current = { lang: "en", messages: {}, zone: FALLBACK_ZONE };

// zh, zh-CN, zh-Hans-CN... -> zh-CN; anything else -> en
export function languageOf(tag) {
  return String(tag || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export function chosenLanguage() {
  const picked = localStorage.getItem(CHOICE_KEY);
  if (picked in LANGUAGES) return picked;
  return languageOf((navigator.languages && navigator.languages[0]) || navigator.language);
}

export const language = () => current.lang;

// Load the chosen language's catalogue and mark the document with it (`<html lang>`). A catalogue
// that cannot be read (no network, nothing kept) leaves the keys showing: a page that still works,
// with its words missing, is better than a dead one in an emergency.
export async function loadLanguage() {
  current.lang = chosenLanguage();
  try {
    const res = await fetch(`/static/i18n/${current.lang}.json`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    current.messages = await res.json();
  } catch (err) {
    console.warn(`i18n: the ${current.lang} catalogue could not be read (${err.message})`);
  }
  document.documentElement.lang = current.lang;
  return current.lang;
}

// The city's clock, from /v1/web/config.
export function useTimeZone(zone) {
  current.zone = zone || FALLBACK_ZONE;
}

export const has = (key) => Object.hasOwn(current.messages, key);

// The message of `key` with its {placeholders} filled; a missing key shows itself (and warns), so a
// gap is seen on screen rather than hidden.
export function t(key, params = {}) {
  const text = current.messages[key];
  if (text === undefined) {
    console.warn(`i18n: no message ${key} in ${current.lang}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// A value the API names with a code (category, status, role...) in words; the code itself if the
// catalogue does not know it yet (a new value on the server must not blank the screen).
export function term(group, code) {
  if (code === null || code === undefined || code === "") return "";
  const key = `${group}.${code}`;
  return has(key) ? t(key) : String(code).replaceAll("_", " ");
}

// --- static HTML -----------------------------------------------------------------------------------
const ATTRIBUTES = { "data-i18n-placeholder": "placeholder", "data-i18n-title": "title", "data-i18n-label": "aria-label" };

export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-html]")) el.innerHTML = t(el.dataset.i18nHtml); // our own catalogue only
  for (const [data, attribute] of Object.entries(ATTRIBUTES)) {
    for (const el of root.querySelectorAll(`[${data}]`)) el.setAttribute(attribute, t(el.getAttribute(data)));
  }
}

// The switch (中文 / English) in the page's header. Choosing reloads the page: everything on it is
// drawn again in the new language, and the tokens (localStorage) keep the person signed in.
export function mountLanguageSwitch(container, onChosen = () => {}) {
  const group = document.createElement("span");
  group.className = "lang-switch";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", t("lang.switch"));
  for (const [code, name] of Object.entries(LANGUAGES)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.lang = code;
    button.dataset.lang = code;
    button.textContent = name;
    button.setAttribute("aria-pressed", String(code === current.lang));
    button.addEventListener("click", async () => {
      if (code === current.lang) return;
      localStorage.setItem(CHOICE_KEY, code);
      await onChosen(code);
      location.reload();
    });
    group.append(button);
  }
  container.append(group);
}

// The "what am I looking at" panel: a ? button opens a few lines about the page, shown just below
// the button's bar.
export function mountHelp(container, page) {
  const button = document.createElement("button");
  button.type = "button";
  button.id = "help-button";
  button.className = "secondary help-button";
  button.textContent = "?";
  button.setAttribute("aria-label", t("help.open"));
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "help");
  const panel = document.createElement("section");
  panel.id = "help";
  panel.className = "help hidden";
  panel.setAttribute("aria-label", t("help.title"));
  const lines = t(`help.${page}`).split("\n").map((line) => {
    const li = document.createElement("li");
    li.textContent = line;
    return li;
  });
  const list = document.createElement("ul");
  list.append(...lines);
  const close = document.createElement("button");
  close.type = "button";
  close.className = "secondary";
  close.textContent = t("help.close");
  const heading = document.createElement("h2");
  heading.textContent = t("help.title");
  panel.append(heading, list, close);
  const show = (open) => {
    panel.classList.toggle("hidden", !open);
    button.setAttribute("aria-expanded", String(open));
    if (open) panel.scrollIntoView({ block: "nearest" });
  };
  button.addEventListener("click", () => show(panel.classList.contains("hidden")));
  close.addEventListener("click", () => show(false));
  container.append(button);
  container.after(panel);
}

// --- times, numbers, distances, durations ----------------------------------------------------------
// A clock time (24-hour) in the city's zone, whatever the browser's own zone is.
export function clock(when) {
  if (when === null || when === undefined) return "—";
  const format = new Intl.DateTimeFormat(current.lang, { timeZone: current.zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  return format.format(new Date(when));
}

// A wall-clock time typed in a form ("2026-11-30T08:00", a datetime-local input) read as the city's
// time, as an ISO instant: the browser's own zone would shift a planner's study by hours.
export function cityTimeToIso(local) {
  const asUtc = new Date(`${local.length === 16 ? `${local}:00` : local}Z`);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en", { timeZone: current.zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(asUtc)
      .map((p) => [p.type, p.value]),
  );
  const shown = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  return new Date(asUtc.getTime() - (shown - asUtc.getTime())).toISOString();
}

export function number(value, digits = 0) {
  return new Intl.NumberFormat(current.lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}

// "350 m" / "350 米", "1.2 km" / "1.2 公里"
export function distance(m) {
  if (m === null || m === undefined) return "—";
  return m >= 1000 ? t("unit.km", { n: number(m / 1000, 1) }) : t("unit.m", { n: number(Math.round(m)) });
}

// "3 min 20 s" / "3 分 20 秒"; under a minute just the seconds, whole minutes just the minutes
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return t("unit.s", { s: number(s) });
  if (s % 60 === 0) return t("unit.min", { min: number(s / 60) });
  return t("unit.min_s", { min: number(Math.floor(s / 60)), s: number(s % 60) });
}

// "12.5 %" in both languages (the planners' tables have always read so)
export function percent(share) {
  if (share === null || share === undefined) return "—";
  return t("unit.percent", { n: number(share * 100, 1) });
}

// --- the API's refusals in the page's language ------------------------------------------------------
// The API speaks English and names fields ("lat: must be within [-90, 90]"); a page says the common
// refusals in its language, with the field's label where the catalogue knows it, and the API's own
// words after it so nothing is lost.
export function refusal(status, detail) {
  const said = localisedFields(detail);
  if (status === 0) return t("error.network", { detail: said });
  const kind = [401, 403, 404, 409, 413, 422, 429].includes(status) ? String(status) : status >= 500 ? "5xx" : "other";
  return t(`error.${kind}${said ? "" : "_bare"}`, { status, detail: said });
}

// "lat: must be ..." -> "纬度: must be ..." for each "field: rule" part the catalogue has a label for
// (`api_field.*`; English keeps the API's own field names, which the API documentation uses).
export function localisedFields(detail) {
  return String(detail || "")
    .split("; ")
    .map((part) => {
      const match = part.match(/^([\w.[\]]+): (.*)$/s);
      if (!match || !has(`api_field.${match[1]}`)) return part;
      return `${t(`api_field.${match[1]}`)}: ${match[2]}`;
    })
    .join("; ");
}
