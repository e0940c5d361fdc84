// Text from the API or the catalogues put into HTML the pages build (tables, popups): escaped, so a
// name or an address can never become markup.
export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
