import { makeKeelEngine } from "./keel.mjs";

export default makeKeelEngine({
  name: "keel-wal-relaxed",
  options: { wal: true, durability: "relaxed" },
  description: 'KeelDB { wal: true, durability: "relaxed" } (WAL, default group-commit thresholds), binary keys and values',
  durability: "NOT comparable: put may resolve before its log record is fsynced (loss window = last group)",
});
