// Registry of engine adapters, in the order they run and print. One file per engine.
//
// An adapter's default export is:
//   name          short id used on the command line (--engines) and in output
//   kind          "keel" (a KeelDB configuration: gets a ratio to the best peer) or "peer"
//   description   one line: library and settings
//   durability    one line: when an awaited put/commit resolves, and what is fsynced
//   syncApi       true if writes block the event loop (concurrent writers then serialize)
//   capabilities  the handle methods it implements (a workload that needs another one skips it: "n/a")
//   version()     async, the library version
//   open(dir)     async, opens a fresh or existing database in dir and returns a handle:
//     put(key, value)            Promise, resolves once the one-put commit is durable
//     get(key)                   Buffer | undefined (sync if the library allows it, else a Promise)
//     bulkLoad(dataset)          Promise, writes dataset.count entries in ONE durable transaction
//     scan()                     Promise<{ count, bytes }>, full ordered scan of keys and values
//     close()                    Promise
//   An adapter throws EngineUnavailable (lib/util.mjs) from open() when the configuration is not
//   supported; the run then marks that engine "n/a" and skips it for the rest of the run.
import keel from "./keel.mjs";
import keelWalStrict from "./keel-wal-strict.mjs";
import keelWalRelaxed from "./keel-wal-relaxed.mjs";
import lmdb from "./lmdb.mjs";
import sqlite from "./sqlite.mjs";
import level from "./level.mjs";

export const engines = [keel, keelWalStrict, keelWalRelaxed, lmdb, sqlite, level];

export function engineByName(name) {
  return engines.find((e) => e.name === name);
}
