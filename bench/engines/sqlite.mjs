// better-sqlite3 (SQLite). journal_mode=WAL, synchronous=FULL: every commit appends to the WAL and
// fsyncs it before returning. The API is synchronous: a commit blocks the event loop, so
// "concurrent" writers serialize (each put is its own transaction; there is no group commit).
import { createRequire } from "node:module";
import { packageVersion } from "../lib/util.mjs";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);

export default {
  name: "sqlite",
  kind: "peer",
  description: "better-sqlite3, table (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID, journal_mode=WAL, synchronous=FULL",
  durability: "synchronous API: each put is one autocommit transaction, WAL fsynced before it returns",
  syncApi: true,
  capabilities: ["put", "get", "bulkLoad", "scan", "backup"],
  async version() {
    const Database = require("better-sqlite3");
    const db = new Database(":memory:");
    const v = db.prepare("select sqlite_version() as v").get().v;
    db.close();
    return `${packageVersion("better-sqlite3")} (SQLite ${v})`;
  },
  async open(dir) {
    const Database = require("better-sqlite3");
    const db = new Database(path.join(dir, "db.sqlite"));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
    const putStmt = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
    const getStmt = db.prepare("SELECT v FROM kv WHERE k = ?").pluck();
    const scanStmt = db.prepare("SELECT k, v FROM kv ORDER BY k").raw();
    return {
      raw: db,
      async put(key, value) {
        putStmt.run(key, value);
      },
      get(key) {
        return getStmt.get(key);
      },
      async bulkLoad(ds) {
        db.transaction(() => {
          for (let i = 0; i < ds.count; i++) putStmt.run(ds.key(i), ds.value(i));
        })();
      },
      async scan() {
        let count = 0;
        let bytes = 0;
        for (const [k, v] of scanStmt.iterate()) {
          count++;
          bytes += k.length + v.length;
        }
        return { count, bytes };
      },
      // backup(dest, { compact }): the online backup API (page by page, yielding between steps), or
      // VACUUM INTO (a compacted copy, one statement) for compact: true
      async backup(dest, { compact }) {
        fs.mkdirSync(dest, { recursive: true });
        const file = path.join(dest, "db.sqlite");
        if (compact) db.prepare("VACUUM INTO ?").run(file);
        else await db.backup(file);
      },
      dataFiles() {
        return ["db.sqlite", "db.sqlite-wal"].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
      },
      async close() {
        db.close();
      },
    };
  },
};
