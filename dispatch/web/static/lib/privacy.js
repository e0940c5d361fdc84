// "Your data" on the responder app: download everything the service holds about you, or delete your
// account (PIPL: the rights to a copy and to deletion). Deleting asks once more, in words, before it
// goes: it cannot be undone, and the phone is signed out at once (its token no longer works).

import { t } from "./i18n.js";

function element(tag, { id, text, className, hidden } = {}) {
  const el = document.createElement(tag);
  if (id) el.id = id;
  if (text) el.textContent = text;
  if (className) el.className = className;
  if (hidden) el.classList.add("hidden");
  return el;
}

function button(id, text, className = "") {
  const el = element("button", { id, text, className });
  el.type = "button";
  return el;
}

// The document saved as a file, named as the server names it (`Content-Disposition`).
function save(document_, responderId) {
  const blob = new Blob([JSON.stringify(document_, null, 2)], { type: "application/json" });
  const link = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(blob),
    download: `responder-${responderId}-data.json`,
  });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// Fill `card` (an empty section of the page). `call(path, opts)` asks the API with the phone's token,
// `me()` is the signed-in responder's id, `say`/`fail` report, `onErased` signs the phone out.
export function mountPrivacy(card, { call, me, say, fail, onErased }) {
  const heading = element("h2", { id: "privacy-title", text: t("privacy.heading") });
  const what = element("p", { className: "hint", text: t("privacy.what") });
  const download = button("privacy-download", t("privacy.download"), "secondary");
  const erase = button("privacy-erase", t("privacy.erase"), "danger");
  const confirm = element("div", { id: "privacy-confirm", hidden: true });
  confirm.setAttribute("role", "alertdialog");
  confirm.setAttribute("aria-labelledby", "privacy-confirm-text");
  const warning = element("p", { id: "privacy-confirm-text", text: t("privacy.confirm_text") });
  const yes = button("privacy-erase-yes", t("privacy.confirm_yes"), "danger");
  const no = button("privacy-erase-no", t("privacy.confirm_no"), "secondary");
  confirm.append(warning, element("p"), yes, element("p"), no);
  card.replaceChildren(heading, what, element("p"), download, element("p"), erase, confirm);

  download.addEventListener("click", async () => {
    try {
      save(await call(`/v1/responders/${me()}/data`), me());
      say(t("privacy.downloaded"));
    } catch (err) {
      fail(err);
    }
  });
  erase.addEventListener("click", () => {
    confirm.classList.remove("hidden");
    erase.classList.add("hidden");
    no.focus();
  });
  no.addEventListener("click", () => {
    confirm.classList.add("hidden");
    erase.classList.remove("hidden");
    erase.focus();
  });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try {
      await call(`/v1/responders/${me()}/erase`, { method: "POST", body: { confirm: "erase" } });
      await onErased();
    } catch (err) {
      yes.disabled = false;
      fail(err);
    }
  });
}
