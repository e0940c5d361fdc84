// Dates and times after the event, on the city's clock: a follow-up or an outcome is read days
// later, so its time needs its date too; a form's datetime-local field holds the city's wall time.

import { language } from "./i18n.js";

// "30 Nov, 10:43" / "11月30日 10:43" in the city's zone, whatever the browser's own zone is.
export function dateTime(iso, zone) {
  if (!iso) return "—";
  const format = new Intl.DateTimeFormat(language(), { timeZone: zone, month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return format.format(new Date(iso));
}

// An instant as the value of a datetime-local field in the city's zone ("2026-11-30T10:43:12").
export function cityInputValue(iso, zone) {
  if (!iso) return "";
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(new Date(iso))
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
}
