// The debrief card of the responder app (issue 22): after an incident the person turned out for has
// ended (the `cancel` frame, or on opening the app, from the pending list the service keeps), a
// few kind questions. Answers asking for support, or telling of an injury, reach a programme
// coordinator, who gets in touch. "Not now" puts the card away until the app is opened again.

import { escapeHtml } from "./html.js";
import { t, term } from "./i18n.js";
import { dateTime } from "./when.js";

const WENT = ["well", "ok", "hard"];

function render(card, due, zone) {
  const options = WENT.map(
    (w) => `<label class="debrief-choice"><input type="radio" name="went" value="${w}"> ${escapeHtml(t(`aftercare.debrief.went_${w}`))}</label>`,
  ).join("");
  card.innerHTML = `
    <h2 id="debrief-title">${escapeHtml(t("aftercare.debrief.heading"))}</h2>
    <p>${escapeHtml(t("aftercare.debrief.intro", { category: term("category", due.category), time: dateTime(due.incident_opened_at, zone) }))}</p>
    <form id="debrief-form">
      <fieldset>
        <legend>${escapeHtml(t("aftercare.debrief.went"))}</legend>
        ${options}
      </fieldset>
      <label class="check"><input type="checkbox" name="injured"> ${escapeHtml(t("aftercare.debrief.injured"))}</label>
      <label class="check"><input type="checkbox" name="wants_support"> ${escapeHtml(t("aftercare.debrief.wants_support"))}</label>
      <label for="debrief-note">${escapeHtml(t("aftercare.debrief.note"))}</label>
      <textarea id="debrief-note" name="note" maxlength="2000" rows="2"></textarea>
      <div class="actions">
        <button type="submit" class="ok">${escapeHtml(t("aftercare.debrief.send"))}</button>
        <button type="button" class="secondary" data-later>${escapeHtml(t("aftercare.debrief.later"))}</button>
      </div>
    </form>`;
}

// `deps`: call (the app's signed-in API call), me (the responder id), zone (the city's), say, fail,
// clearError.
export function mountDebrief(card, deps) {
  const { call, me, zone, say, fail, clearError } = deps;
  let later = false;

  async function send(form, due) {
    clearError();
    const went = form.elements.went.value;
    if (!went) return fail(t("aftercare.debrief.pick_went"));
    const body = { went, injured: form.elements.injured.checked, wants_support: form.elements.wants_support.checked };
    const note = form.elements.note.value.trim();
    if (note) body.note = note;
    const saved = await call(`/v1/alerts/${due.alert_id}/debrief`, { method: "POST", body });
    say(t(saved.follow_up === "open" ? "aftercare.debrief.thanks_support" : "aftercare.debrief.thanks"));
    await check();
  }

  // Ask about the most recently ended incident still without a debrief, if any.
  async function check() {
    if (later) return;
    const [due] = await call(`/v1/responders/${me}/debriefs/pending`);
    card.classList.toggle("hidden", !due);
    if (!due) return;
    if (card.dataset.alert === due.alert_id) return; // already on screen: keep what was chosen
    card.dataset.alert = due.alert_id;
    render(card, due, zone);
    const form = card.querySelector("#debrief-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(form, due).catch(fail);
    });
    card.querySelector("[data-later]").addEventListener("click", () => {
      later = true;
      card.classList.add("hidden");
    });
  }

  return { check: () => check().catch(fail) };
}
