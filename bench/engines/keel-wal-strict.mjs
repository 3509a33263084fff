import { makeKeelEngine } from "./keel.mjs";

export default makeKeelEngine({
  name: "keel-wal-strict",
  options: { wal: true, durability: "strict" },
  description: 'KeelDB { wal: true, durability: "strict" } (WAL + group commit), binary keys and values',
  durability: "put resolves once its log record is fsynced (concurrent commits share one fsync)",
});
