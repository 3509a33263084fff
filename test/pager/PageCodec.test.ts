/**
 * PageCodec unit tests: header round trip, seal/verify, and each way verifyPage refuses a page
 * (CORRUPT naming the page, with details.reason). Also pageLimits, which the codecs rely on.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { KeelError } from "../../src/errors.js";
import { pageChecksum, readHeader, seal, verifyPage, writeHeader, type Expect, type PageHeader } from "../../src/pager/PageCodec.js";
import {
  BRANCH_ENTRY_OVERHEAD,
  BRANCH_FIRST_BYTES,
  LEAF_ENTRY_OVERHEAD,
  MAX_PAGE_SIZE,
  MIN_PAGE_SIZE,
  OFF_CHECKSUM,
  OVERFLOW_REF_BYTES,
  PAGE_HEADER,
  PageType,
  isValidPageSize,
  overflowPages,
  pageLimits,
} from "../../src/pager/PageLayout.js";

const FILE = "/db/data.keel";

function page(h: Partial<PageHeader> = {}, size = 1024): Buffer {
  const buf = Buffer.alloc(size);
  writeHeader(buf, { type: PageType.Leaf, flags: 0, count: 3, pageNo: 42, txn: 7, aux1: 0, aux2: 0, ...h });
  for (let i = PAGE_HEADER; i < size; i++) buf[i] = (i * 31) & 0xff;
  seal(buf);
  return buf;
}

function expectCorrupt(buf: Buffer, e: Expect, reason: string): KeelError {
  try {
    verifyPage(buf, e);
  } catch (err) {
    assert.ok(err instanceof KeelError, `expected KeelError, got ${String(err)}`);
    assert.equal(err.code, "CORRUPT");
    assert.equal(err.details.reason, reason);
    assert.equal(err.details.page, e.pageNo, "the error names the page that was asked for");
    assert.equal(err.details.file, FILE);
    return err;
  }
  assert.fail(`expected CORRUPT ${reason}`);
}

test("writeHeader/readHeader round trip, with a txn past 32 bits", () => {
  const buf = Buffer.alloc(1024);
  const h: PageHeader = { type: PageType.Overflow, flags: 3, count: 65535, pageNo: 0xfffffffe, txn: 2 ** 50 + 9, aux1: 17, aux2: 0xffffffff };
  writeHeader(buf, h);
  assert.deepEqual(readHeader(buf), h);
});

test("a sealed page verifies and returns its header", () => {
  const buf = page();
  const h = verifyPage(buf, { pageNo: 42, types: [PageType.Leaf, PageType.Branch], txn: 7, maxTxn: 7, file: FILE });
  assert.equal(h.type, PageType.Leaf);
  assert.equal(h.count, 3);
  assert.equal(h.txn, 7);
  // No expectations about the txn: accepted.
  verifyPage(buf, { pageNo: 42, types: [PageType.Leaf], file: FILE });
  // txn 0 in the expectation means "unknown" (a page whose parent does not record it).
  verifyPage(buf, { pageNo: 42, types: [PageType.Leaf], txn: 0, file: FILE });
});

test("the checksum covers every byte but its own four", () => {
  const buf = page();
  const stored = buf.readUInt32LE(OFF_CHECKSUM);
  assert.equal(stored, pageChecksum(buf));
  for (const off of [0, 4, 12, 15, 20, 31, 32, 500, 1023]) {
    const b = Buffer.from(buf);
    b[off]! ^= 1;
    expectCorrupt(b, { pageNo: 42, types: [PageType.Leaf], file: FILE }, "checksum");
  }
  // Changing the checksum bytes themselves is also caught.
  const b = Buffer.from(buf);
  b[OFF_CHECKSUM]! ^= 0x80;
  expectCorrupt(b, { pageNo: 42, types: [PageType.Leaf], file: FILE }, "checksum");
});

test("a zeroed page is refused (checksum of zeros is not zero)", () => {
  expectCorrupt(Buffer.alloc(1024), { pageNo: 5, types: [PageType.Leaf], file: FILE }, "checksum");
});

test("a valid page at the wrong page number is CORRUPT page-number (misdirected write)", () => {
  const buf = page({ pageNo: 43 });
  const e = expectCorrupt(buf, { pageNo: 42, types: [PageType.Leaf], file: FILE }, "page-number");
  assert.equal(e.details.found, 43);
});

test("a valid page of the wrong type is CORRUPT page-type", () => {
  const buf = page({ type: PageType.Overflow });
  const e = expectCorrupt(buf, { pageNo: 42, types: [PageType.Leaf, PageType.Branch], file: FILE }, "page-type");
  assert.equal(e.details.found, PageType.Overflow);
  expectCorrupt(page({ type: 200 }), { pageNo: 42, types: [PageType.Leaf], file: FILE }, "page-type");
});

test("a page written by another txn than its parent recorded is CORRUPT stale-page", () => {
  const buf = page({ txn: 6 });
  const e = expectCorrupt(buf, { pageNo: 42, types: [PageType.Leaf], txn: 7, file: FILE }, "stale-page");
  assert.equal(e.details.found, 6);
  assert.equal(e.details.expected, 7);
  // A newer page where an older one was expected is stale too (a lost write of the parent).
  expectCorrupt(page({ txn: 8 }), { pageNo: 42, types: [PageType.Leaf], txn: 7, file: FILE }, "stale-page");
});

test("only the low 32 bits of the recorded txn are compared (parents store 32 bits)", () => {
  const buf = page({ txn: 2 ** 32 + 5 });
  verifyPage(buf, { pageNo: 42, types: [PageType.Leaf], txn: 5, file: FILE });
  expectCorrupt(buf, { pageNo: 42, types: [PageType.Leaf], txn: 6, file: FILE }, "stale-page");
});

test("a page claiming a txn newer than the database is CORRUPT future-txn", () => {
  const buf = page({ txn: 10 });
  const e = expectCorrupt(buf, { pageNo: 42, types: [PageType.Leaf], maxTxn: 9, file: FILE }, "future-txn");
  assert.equal(e.details.found, 10);
  verifyPage(buf, { pageNo: 42, types: [PageType.Leaf], maxTxn: 10, file: FILE });
});

test("checks run in order: checksum before page number before type before txn", () => {
  const wrong = page({ pageNo: 43, type: PageType.Overflow, txn: 99 });
  expectCorrupt(wrong, { pageNo: 42, types: [PageType.Leaf], txn: 7, maxTxn: 8, file: FILE }, "page-number");
  const wrongType = page({ type: PageType.Overflow, txn: 99 });
  expectCorrupt(wrongType, { pageNo: 42, types: [PageType.Leaf], txn: 7, maxTxn: 8, file: FILE }, "page-type");
  const b = Buffer.from(wrong);
  b[600]! ^= 4;
  expectCorrupt(b, { pageNo: 42, types: [PageType.Leaf], txn: 7, maxTxn: 8, file: FILE }, "checksum");
});

test("a multi-page run is checksummed as a whole", () => {
  const run = page({ type: PageType.Overflow, aux1: 3, aux2: 2000 }, 3 * 1024);
  verifyPage(run, { pageNo: 42, types: [PageType.Overflow], file: FILE });
  const b = Buffer.from(run);
  b[3 * 1024 - 1]! ^= 1; // last byte of the third page
  expectCorrupt(b, { pageNo: 42, types: [PageType.Overflow], file: FILE }, "checksum");
});

test("pageLimits: a branch holds at least 4 separators of maxKeySize at every page size", () => {
  for (let ps = MIN_PAGE_SIZE; ps <= MAX_PAGE_SIZE; ps *= 2) {
    assert.ok(isValidPageSize(ps));
    const l = pageLimits(ps);
    assert.equal(l.pageSize, ps);
    assert.equal(l.usable, ps - PAGE_HEADER);
    assert.ok(l.maxKeySize > 0);
    const fourSeparators = PAGE_HEADER + BRANCH_FIRST_BYTES + 4 * (BRANCH_ENTRY_OVERHEAD + l.maxKeySize);
    assert.ok(fourSeparators <= ps, `page ${ps}: 4 separators take ${fourSeparators} bytes`);
    // maxKeySize is the largest size with that property (not needlessly small).
    const withOneMore = PAGE_HEADER + BRANCH_FIRST_BYTES + 4 * (BRANCH_ENTRY_OVERHEAD + l.maxKeySize + 1);
    assert.ok(withOneMore > ps, `page ${ps}: maxKeySize could be larger`);
    // A leaf holds two largest inline entries, and an entry with a largest key and an overflow reference.
    assert.ok(PAGE_HEADER + 2 * l.maxInlineEntry <= ps);
    assert.ok(LEAF_ENTRY_OVERHEAD + l.maxKeySize + OVERFLOW_REF_BYTES <= l.maxInlineEntry);
    assert.ok(l.minFill > 0 && l.minFill < l.usable / 2);
    // A key this long must fit the u16 length field of the page formats.
    assert.ok(l.maxKeySize <= 0xffff);
  }
});

test("isValidPageSize and overflowPages", () => {
  for (const bad of [0, 512, 1000, 1023, 1025, 3000, 131072, 1.5, NaN, -1024]) assert.equal(isValidPageSize(bad), false, String(bad));
  assert.equal(overflowPages(0, 1024), 1);
  assert.equal(overflowPages(1024 - PAGE_HEADER, 1024), 1);
  assert.equal(overflowPages(1024 - PAGE_HEADER + 1, 1024), 2);
  assert.equal(overflowPages(10 * 1024, 1024), 11);
});
