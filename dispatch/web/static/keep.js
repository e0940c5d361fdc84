// The responder app's last known state in IndexedDB, shared by the page and its service worker
// (a classic script: the page loads it with <script>, the worker with importScripts, so there is
// one copy of this code). IndexedDB rather than localStorage because a service worker cannot read
// localStorage, and the worker must answer an alert and show the last state with no page open.
//
// Stores: "state" (key -> value: token, me, profile, mission, push, saved_at) and "alerts"
// (alert frames by alert_id, the ones not yet answered).

(function (scope) {
  const DB_NAME = "rescue-circle-responder";
  const VERSION = 1;
  let opening = null;

  function open() {
    if (!opening) {
      opening = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB_NAME, VERSION);
        req.onupgradeneeded = () => {
          const db = req.result;
          if (!db.objectStoreNames.contains("state")) db.createObjectStore("state");
          if (!db.objectStoreNames.contains("alerts")) db.createObjectStore("alerts", { keyPath: "alert_id" });
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      opening.catch(() => (opening = null));
    }
    return opening;
  }

  async function run(store, mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode);
      const req = work(tx.objectStore(store));
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  scope.rescueKeep = {
    get: (key) => run("state", "readonly", (s) => s.get(key)),
    put: (key, value) => run("state", "readwrite", (s) => s.put(value, key)),
    remove: (key) => run("state", "readwrite", (s) => s.delete(key)),
    putAlert: (frame) => run("alerts", "readwrite", (s) => s.put(frame)),
    dropAlert: (alertId) => run("alerts", "readwrite", (s) => s.delete(alertId)),
    getAlert: (alertId) => run("alerts", "readonly", (s) => s.get(alertId)),
    // unanswered alerts that have not expired, oldest first
    alerts: async () => {
      const all = (await run("alerts", "readonly", (s) => s.getAll())) || [];
      return all.filter((a) => new Date(a.expires_at) > Date.now()).sort((a, b) => a.expires_at.localeCompare(b.expires_at));
    },
    // the server's word replaces what was kept (the socket sends every pending alert and mission again)
    forget: () => Promise.all([run("state", "readwrite", (s) => s.delete("mission")), run("alerts", "readwrite", (s) => s.clear())]),
    // sign-out: nothing of this person stays on the phone
    clear: () => Promise.all([run("state", "readwrite", (s) => s.clear()), run("alerts", "readwrite", (s) => s.clear())]),
  };
})(self);
