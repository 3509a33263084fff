/**
 * CatalogRecord: a record that passes its page's checksum but holds no valid count or depth is
 * CORRUPT at decode (the engine serves these counts and adds to them), naming the sub-database.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeelError, open } from "../../src/index.js";
import { decodeCatalogRecord, encodeCatalogRecord, type CatalogRecord } from "../../src/txn/CatalogRecord.js";
import { probeMeta } from "../../src/pager/Meta.js";
import { PAGE_HEADER, PageType } from "../../src/pager/PageLayout.js";
import { readHeader, seal } from "../../src/pager/PageCodec.js";

const GOOD: CatalogRecord = { keyEncoding: "string", valueEncoding: "json", root: 7, rootTxn: 3, depth: 2, entries: 1234, branchPages: 1, leafPages: 9, overflowPages: 0 };
const where = { file: "/d/data.keel", name: "s" };

test("decode: counts that are no count (NaN, infinite, negative, fractional, past 2^53) and depths no tree reaches are CORRUPT; real ones decode", () => {
  assert.deepEqual(decodeCatalogRecord(encodeCatalogRecord(GOOD), where), GOOD);
  assert.equal(decodeCatalogRecord(encodeCatalogRecord({ ...GOOD, entries: 0, depth: 0, root: 0 }), where).entries, 0);
  assert.equal(decodeCatalogRecord(encodeCatalogRecord({ ...GOOD, entries: Number.MAX_SAFE_INTEGER, depth: 64 }), where).depth, 64);
  for (const bad of [{ entries: NaN }, { entries: Infinity }, { entries: -1 }, { entries: -5.5 }, { entries: 2.5 }, { entries: 2 ** 53 }, { entries: -1.6e129 }, { depth: 65 }, { depth: 0xffffffff }]) {
    assert.throws(
      () => decodeCatalogRecord(encodeCatalogRecord({ ...GOOD, ...bad }), where),
      (e: unknown) => e instanceof KeelError && e.code === "CORRUPT" && e.details.reason === "catalog-record" && e.details.name === "s",
      JSON.stringify(bad),
    );
  }
});

test("open: a catalog leaf whose checksum holds but whose record counts NaN entries is CORRUPT, not a count of NaN served", async () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-catalog-"));
  try {
    const db = await open(dir, { wal: false, pageSize: 4096 });
    await db.openDB("s").put("a", 1);
    await db.close();
    const path = join(dir, "data.keel");
    const file = readFileSync(path);
    const metas = ([0, 1] as const).map((slot) => probeMeta(file.subarray(slot * 4096, (slot + 1) * 4096), slot)).flatMap((m) => (m.ok ? [m.meta] : []));
    const meta = metas.sort((a, b) => b.txn - a.txn)[0]!;
    const page = file.subarray(meta.catalogRoot * 4096, (meta.catalogRoot + 1) * 4096);
    assert.equal(readHeader(page).type, PageType.Leaf);
    let off = PAGE_HEADER;
    let forged = false;
    for (let i = 0; i < readHeader(page).count; i++) {
      const kl = page.readUInt16LE(off);
      const vl = page.readUInt32LE(off + 3);
      const valueAt = off + 7 + kl;
      if (page.toString("latin1", off + 7, valueAt) === "s") {
        page.writeDoubleLE(NaN, valueAt + 16);
        forged = true;
      }
      off = valueAt + vl;
    }
    assert.ok(forged);
    seal(page);
    writeFileSync(path, file);
    await assert.rejects(open(dir, { wal: false }), (e: unknown) => e instanceof KeelError && e.code === "CORRUPT");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
