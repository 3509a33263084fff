/**
 * The health check's disk rule: too little free space fails it; a file system that reports no
 * size (ramfs) is not judged (it failed /health for good while writes worked).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { diskShortage } from "../../../src/server/http/healthCheck.js";

test("diskShortage: below the minimum fails, at or above passes, a file system of no reported size is not judged", () => {
  const min = 64 * 1024 * 1024;
  assert.match(diskShortage({ freeBytes: min - 1, totalBytes: 10 * min }, min) ?? "", /bytes free .* \(minimum 67108864\)/);
  assert.equal(diskShortage({ freeBytes: min, totalBytes: 10 * min }, min), undefined);
  assert.equal(diskShortage({ freeBytes: 0, totalBytes: 0 }, min), undefined, "ramfs: statfs reports 0 blocks");
  assert.notEqual(diskShortage({ freeBytes: 0, totalBytes: 4096 }, min), undefined, "a full disk still fails");
});
