// Storage: IndexedDB, opened when the module loads so a reload can paint before anything else; in
// memory where there is none. localStorage (or sessionStorage) holds the current conversation's id.
import { DB_NAME, DB_VERSION } from "./util.js";

/** @type {Promise<IDBDatabase|null>|null} */
let dbPromise = null;

function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve) => {
      let request;
      try {
        request = indexedDB.open(DB_NAME, DB_VERSION);
      } catch {
        resolve(null); // no IndexedDB (some private modes): work from memory
        return;
      }
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore("cache", { keyPath: "key" }).createIndex("ns", "ns");
        db.createObjectStore("outbox", { keyPath: "n", autoIncrement: true }).createIndex("ns", "ns");
      };
      request.onsuccess = () => {
        const db = request.result;
        db.onversionchange = () => {
          db.close(); // someone deletes or upgrades the database (e.g. "clear site data")
          dbPromise = null;
        };
        resolve(db);
      };
      request.onerror = () => resolve(null);
      request.onblocked = () => resolve(null);
    });
  }
  return dbPromise;
}
if (typeof indexedDB !== "undefined") openDb();

const memory = { cache: new Map(), outbox: new Map(), n: 0 };

/**
 * One request in its own transaction; resolves with its result.
 * @param {"cache"|"outbox"} store @param {"readonly"|"readwrite"} mode
 * @param {(s: IDBObjectStore) => IDBRequest} make
 * @returns {Promise<any>}
 */
async function idb(store, mode, make) {
  const db = await openDb();
  if (!db) throw new Error("no IndexedDB");
  return new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const request = make(tx.objectStore(store));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export const storage = {
  /** What a reload paints, in one transaction: a conversation's cached page, the outbox, the list.
   * @param {string} ns @param {string} id @param {string} listKey
   * @returns {Promise<{record: any, outbox: any[], list: any}>} */
  async snapshot(ns, id, listKey) {
    try {
      const db = await openDb();
      if (!db) throw new Error("no IndexedDB");
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(["cache", "outbox"], "readonly");
        const cache = tx.objectStore("cache");
        const record = cache.get(`${ns}|${id}`);
        const list = cache.get(listKey);
        const outbox = tx.objectStore("outbox").index("ns").getAll(ns);
        tx.oncomplete = () => resolve({ record: record.result, outbox: outbox.result, list: list.result });
        tx.onerror = () => reject(tx.error);
      });
    } catch {
      const outbox = [...memory.outbox.values()].filter((r) => r.ns === ns);
      return { record: memory.cache.get(`${ns}|${id}`), outbox, list: memory.cache.get(listKey) };
    }
  },
  /** @param {string} key */
  async getCache(key) {
    try {
      return await idb("cache", "readonly", (s) => s.get(key));
    } catch {
      return memory.cache.get(key);
    }
  },
  /** @param {any} record */
  async putCache(record) {
    try {
      await idb("cache", "readwrite", (s) => s.put(record));
    } catch (e) {
      if (e && /** @type {any} */ (e).name === "QuotaExceededError") throw e;
      memory.cache.set(record.key, record);
    }
  },
  /** @param {string} key */
  async deleteCache(key) {
    memory.cache.delete(key);
    try {
      await idb("cache", "readwrite", (s) => s.delete(key));
    } catch {
      /* nothing stored */
    }
  },
  /** @param {string} ns @returns {Promise<any[]>} */
  async cacheOf(ns) {
    try {
      return await idb("cache", "readonly", (s) => s.index("ns").getAll(ns));
    } catch {
      return [...memory.cache.values()].filter((r) => r.ns === ns);
    }
  },
  /** @param {string} ns @returns {Promise<any[]>} in the order they were added */
  async outbox(ns) {
    try {
      return await idb("outbox", "readonly", (s) => s.index("ns").getAll(ns));
    } catch {
      return [...memory.outbox.values()].filter((r) => r.ns === ns);
    }
  },
  /** @param {any} entry */
  async addOutbox(entry) {
    try {
      return await idb("outbox", "readwrite", (s) => s.add(entry));
    } catch {
      const n = ++memory.n;
      memory.outbox.set(n, { ...entry, n });
      return n;
    }
  },
  /** @param {number[]} keys */
  async deleteOutbox(keys) {
    for (const k of keys) memory.outbox.delete(k);
    try {
      const db = await openDb();
      if (!db) return;
      await new Promise((resolve, reject) => {
        const tx = db.transaction("outbox", "readwrite");
        for (const k of keys) tx.objectStore("outbox").delete(k);
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      });
    } catch {
      /* memory only */
    }
  },
};

/** @param {Storage|null} s @param {string} key */
export function readStorage(s, key) {
  try {
    return s ? s.getItem(key) : null;
  } catch {
    return null;
  }
}
/** @param {Storage|null} s @param {string} key @param {string|null} value */
export function writeStorage(s, key, value) {
  try {
    if (!s) return;
    if (value === null) s.removeItem(key);
    else s.setItem(key, value);
  } catch {
    /* storage full or disabled: the server still knows */
  }
}
