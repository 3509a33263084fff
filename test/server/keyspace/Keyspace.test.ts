/**
 * Keyspace and KeyView on a real database: strings, hashes (fields in their own sub-database, count
 * in the header), expiry (never returned once due, index kept in step, swept in bounded batches,
 * surviving a reopen), WATCH versions, glob matching.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { open, type Database } from "../../../src/index.js";
import { globMatch } from "../../../src/server/keyspace/globMatch.js";
import { Keyspace } from "../../../src/server/keyspace/Keyspace.js";
import type { KeyView } from "../../../src/server/keyspace/KeyView.js";
import { TxStore } from "../../../src/server/keyspace/Store.js";
import { RespError } from "../../../src/server/resp/RespError.js";
import { tempDir } from "../../db/dbUtil.js";

const b = (s: string) => Buffer.from(s);

function write<T>(ks: Keyspace, fn: (v: KeyView) => T, now = Date.now(), index = 0): Promise<T> {
  return ks.transaction((tx) => fn(ks.write(index, new TxStore(tx), now)));
}

async function withKs(t: { after: (fn: () => void) => void }, fn: (ks: Keyspace, db: Database, dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir(t, "keel-ks-");
  const db = await open(dir);
  try {
    await fn(new Keyspace(db, 4), db, dir);
  } finally {
    if (!db.isClosed) await db.close();
  }
}

test("glob patterns as Redis matches them", () => {
  const m = (p: string, s: string) => globMatch(b(p), b(s));
  // The empty key matches only the empty pattern, as in Redis's stringmatchlen (KEYS * and SCAN
  // MATCH * return it through their match-everything shortcut; "**" does not match it).
  assert.ok(!m("*", "") && !m("**", "") && !m("?", "") && m("", ""));
  assert.ok(m("a*", "a") && m("a**", "a") && !m("", "a"));
  // Bytes compare unsigned (as Redis on ARM; x86 Redis compares signed chars).
  const raw = (p: string, s: string) => globMatch(Buffer.from(p, "latin1"), Buffer.from(s, "latin1"));
  assert.ok(raw("[!-\xff]", "b") && raw("[!-\xff]", "\xff") && !raw("[\xe9-z]", "b") && raw("[\xe9-z]", "\xe0"));
  assert.ok(m("h?llo", "hello") && !m("h?llo", "hllo"));
  assert.ok(m("h*llo", "heeeello") && m("h*llo", "hllo"));
  assert.ok(m("h[ae]llo", "hallo") && !m("h[ae]llo", "hillo"));
  assert.ok(m("h[^e]llo", "hallo") && !m("h[^e]llo", "hello"));
  assert.ok(m("h[a-c]llo", "hbllo") && !m("h[a-c]llo", "hdllo"));
  assert.ok(m("a\\*b", "a*b") && !m("a\\*b", "axb"));
  assert.ok(m("user:*:name", "user:42:name") && !m("user:*:name", "user:42:age"));
  assert.ok(!m("a*a*a*a*a*a*a*a*a*b", "a".repeat(100)));
});

test("strings: set, get, overwrite, delete; binary-safe keys and values", async (t) => {
  await withKs(t, async (ks) => {
    const k = Buffer.from([0, 255, 13, 10]);
    const v = Buffer.from([1, 0, 2, 0]);
    await write(ks, (w) => w.setString(k, v, 0));
    assert.ok(ks.read(0).getString(k)!.equals(v));
    assert.equal(ks.read(1).getString(k), undefined, "other logical db");
    await write(ks, (w) => w.setString(k, b(""), 0));
    assert.equal(ks.read(0).getString(k)!.length, 0);
    assert.equal(await write(ks, (w) => w.del(k)), true);
    assert.equal(ks.read(0).type(k), "none");
  });
});

test("getStringBytes (GET's path) and getStringBytesOrNone (MGET's) agree with getString: small values as the stored latin1 string, expired keys absent, hashes WRONGTYPE, large values as Buffers", async (t) => {
  await withKs(t, async (ks) => {
    const bytesOf = (x: Buffer | string | undefined) => (x === undefined ? undefined : typeof x === "string" ? Buffer.from(x, "latin1") : x);
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const now = Date.now();
    // Expiry instants whose header bytes have their high bit set (read back through charCodeAt).
    const far = 0x7f_80_80_80_80_80; // about year 6400; the four low bytes are above 0x7f
    await write(ks, (w) => w.setString(b("bin"), all, 0));
    await write(ks, (w) => w.setString(b("far"), all, far));
    await write(ks, (w) => w.setString(b("soon"), b("v"), now + 50));
    await write(ks, (w) => w.setString(b("empty"), b(""), 0));
    await write(ks, (w) => w.setString(b("big"), Buffer.alloc(20_000, 0xab), 0));
    await write(ks, (w) => w.hset(b("h"), [[b("f"), b("v")]]));
    for (const at of [now, now + 49, now + 50, far - 1, far]) {
      const r = ks.read(0, at);
      for (const k of ["bin", "far", "soon", "empty", "big", "missing"]) {
        assert.deepEqual(bytesOf(r.getStringBytes(b(k))), r.getString(b(k)), `${k} at now+${at - now}`);
        assert.deepEqual(bytesOf(r.getStringBytesOrNone(b(k))), r.getString(b(k)), `MGET's path: ${k} at now+${at - now}`);
      }
      assert.throws(() => r.getStringBytes(b("h")), (e: unknown) => e instanceof RespError && e.reply.startsWith("WRONGTYPE"));
      assert.equal(r.getStringBytesOrNone(b("h")), undefined, "MGET reads a hash as missing");
    }
    assert.equal(typeof ks.read(0).getStringBytes(b("bin")), "string", "a small value is not copied into a Buffer");
    assert.ok(Buffer.isBuffer(ks.read(0).getStringBytes(b("big"))));
    assert.equal(ks.read(0, now + 50).getStringBytes(b("soon")), undefined);
    assert.equal(ks.read(0, far).getStringBytes(b("far")), undefined);
    assert.ok(bytesOf(ks.read(0, far - 1).getStringBytes(b("far")))!.equals(all));
  });
});

test("hashes: fields, count, type errors, emptied hash deleted, overwrite by a string drops fields", async (t) => {
  await withKs(t, async (ks) => {
    assert.equal(await write(ks, (w) => w.hset(b("h"), [[b("a"), b("1")], [b("b"), b("2")]])), 2);
    assert.equal(await write(ks, (w) => w.hset(b("h"), [[b("a"), b("3")], [b("c"), b("4")]])), 1);
    const r = ks.read(0);
    assert.equal(r.hlen(b("h")), 3);
    assert.deepEqual(r.hgetall(b("h")).map((e) => [e.key.toString(), e.value.toString()]), [["a", "3"], ["b", "2"], ["c", "4"]]);
    assert.throws(() => r.getString(b("h")), (e: unknown) => e instanceof RespError && e.reply.startsWith("WRONGTYPE"));
    // A hash whose name is a prefix of another's does not see its fields.
    await write(ks, (w) => w.hset(b("hh"), [[b("z"), b("9")]]));
    assert.equal(ks.read(0).hlen(b("h")), 3);
    assert.equal(await write(ks, (w) => w.hdel(b("h"), [b("a"), b("b"), b("c"), b("nope")])), 3);
    assert.equal(ks.read(0).type(b("h")), "none");
    await write(ks, (w) => w.hset(b("h2"), [[b("f"), b("v")]]));
    await write(ks, (w) => w.setString(b("h2"), b("s"), 0));
    await write(ks, (w) => w.del(b("h2")));
    await write(ks, (w) => w.hset(b("h2"), [[b("g"), b("v")]]));
    assert.deepEqual(ks.read(0).hgetall(b("h2")).map((e) => e.key.toString()), ["g"], "no stale field f");
  });
});

test("expiry: never returned once due; the index follows set, persist, delete and rename", async (t) => {
  await withKs(t, async (ks) => {
    const now = Date.now();
    await write(ks, (w) => w.setString(b("k"), b("v"), now + 50_000));
    assert.equal(ks.ldb(0).ttl.getCount(), 1);
    assert.equal(ks.read(0, now + 49_999).getString(b("k"))!.toString(), "v");
    assert.equal(ks.read(0, now + 50_000).getString(b("k")), undefined);
    assert.equal(ks.read(0, now + 50_000).expireAtOf(b("k")), -2);
    await write(ks, (w) => w.setExpireAt(b("k"), now + 90_000));
    assert.equal(ks.ldb(0).ttl.getCount(), 1);
    await write(ks, (w) => w.rename(b("k"), b("k2")));
    assert.equal(ks.read(0).expireAtOf(b("k2")), now + 90_000);
    assert.equal(ks.ldb(0).ttl.getCount(), 1);
    await write(ks, (w) => w.setExpireAt(b("k2"), 0));
    assert.equal(ks.ldb(0).ttl.getCount(), 0);
    assert.equal(ks.read(0).expireAtOf(b("k2")), 0);
    // SET over a key replaces its expiry entry (the old value comes back from the put itself).
    await write(ks, (w) => w.setString(b("k2"), b("v2"), now + 70_000));
    await write(ks, (w) => w.setString(b("k2"), b("v3"), now + 80_000));
    assert.equal(ks.ldb(0).ttl.getCount(), 1);
    assert.equal(ks.read(0).expireAtOf(b("k2")), now + 80_000);
    await write(ks, (w) => w.setString(b("k2"), b("v4"), 0));
    assert.equal(ks.ldb(0).ttl.getCount(), 0);
    assert.equal(ks.read(0).dbsize(), 1);
    // An expired hash: its fields are purged when the name is written again.
    await write(ks, (w) => w.hset(b("h"), [[b("old"), b("1")]]));
    await write(ks, (w) => w.setExpireAt(b("h"), now + 10));
    await write(ks, (w) => w.hset(b("h"), [[b("new"), b("2")]]), now + 20);
    assert.deepEqual(ks.read(0).hgetall(b("h")).map((e) => e.key.toString()), ["new"]);
    assert.equal(ks.ldb(0).ttl.getCount(), 0);
  });
});

test("the sweeper deletes expired keys in bounded batches and leaves live ones", async (t) => {
  await withKs(t, async (ks) => {
    const now = Date.now();
    await write(ks, (w) => {
      for (let i = 0; i < 450; i++) w.setString(b(`e${i}`), b("x"), now + 10);
      w.setString(b("live"), b("x"), now + 1_000_000);
      w.hset(b("hash"), [[b("f"), b("v")]]);
      w.setExpireAt(b("hash"), now + 10);
    });
    assert.equal(await ks.sweepOnce(now + 100), 200);
    assert.equal(await ks.sweepOnce(now + 100), 200);
    assert.equal(await ks.sweepOnce(now + 100), 51);
    assert.equal(await ks.sweepOnce(now + 100), 0);
    assert.equal(ks.ldb(0).keys.getCount(), 1);
    assert.equal(ks.ldb(0).hash.getCount(), 0);
    assert.equal(ks.ldb(0).ttl.getCount(), 1);
  });
});

test("expiry is absolute and survives close and reopen", async (t) => {
  const dir = tempDir(t, "keel-ks-");
  const at = Date.now() + 3_600_000;
  let db = await open(dir);
  await write(new Keyspace(db, 2), (w) => w.setString(b("k"), b("v"), at), Date.now(), 1);
  await db.close();
  db = await open(dir);
  const ks = new Keyspace(db, 2);
  assert.equal(ks.read(1).expireAtOf(b("k")), at);
  assert.equal(ks.read(1, at).getString(b("k")), undefined);
  await db.close();
});

test("key counts inside transactions follow every create and delete; a throwing callback counts nothing", async (t) => {
  await withKs(t, async (ks) => {
    const now = Date.now();
    const inTx = () => ks.keyCountInTransaction(0);
    await write(ks, (w) => {
      w.setString(b("a"), b("1"), 0);
      w.setString(b("a"), b("2"), 0);
      w.hset(b("h"), [[b("f"), b("v")]]);
      w.setString(b("e"), b("x"), now + 10);
      assert.equal(w.dbsize(), 3);
    });
    await write(ks, (w) => w.rename(b("a"), b("a2")));
    await write(ks, (w) => w.rename(b("h"), b("a2")));
    assert.equal(inTx(), 2);
    await assert.rejects(
      write(ks, (w) => {
        w.setString(b("z"), b("1"), 0);
        throw new Error("abort");
      }),
    );
    assert.equal(inTx(), 2, "the aborted transaction's key is not counted");
    assert.equal(await ks.sweepOnce(now + 100), 1);
    assert.equal(inTx(), 1);
    assert.equal(ks.ldb(0).keys.getCount(), 1);
    await write(ks, (w) => w.flush());
    assert.equal(inTx(), 0);
    assert.equal(ks.ldb(0).keys.getCount(), 0);
  });
});

test("WATCH versions: bumped by writes and by flush, only for watched keys", async (t) => {
  await withKs(t, async (ks) => {
    const v0 = ks.watch(0, b("w"));
    await write(ks, (w) => w.setString(b("other"), b("1"), 0));
    assert.equal(ks.version(0, b("w")), v0);
    await write(ks, (w) => w.setString(b("w"), b("1"), 0));
    assert.notEqual(ks.version(0, b("w")), v0);
    const v1 = ks.version(0, b("w"));
    await write(ks, (w) => w.flush());
    assert.notEqual(ks.version(0, b("w")), v1);
    ks.unwatch(0, b("w"));
    assert.equal(ks.version(0, b("w")), -1);
  });
});

test("WATCH and expiry as Redis 7: a key that expires after WATCH changed (swept or not); one already expired at WATCH may be deleted once without counting", async (t) => {
  await withKs(t, async (ks) => {
    const now = Date.now();
    const keys = ["live", "swept", "set", "del", "twice"].map(b);
    const f = b("flushed"); // in db 1
    await write(ks, (w) => {
      w.setString(keys[0]!, b("v"), now + 100);
      for (const k of keys.slice(1)) w.setString(k, b("v"), now + 10);
    }, now);
    await write(ks, (w) => w.setString(f, b("v"), now + 10), now, 1);
    const at = now + 50; // the WATCH: "live" has 50 ms to go, the others expired 40 ms ago
    const marks = keys.map((k) => {
      ks.watch(0, k);
      return ks.mark(k, ks.read(0, at));
    });
    ks.watch(1, f);
    const fm = ks.mark(f, ks.read(1, at));
    assert.deepEqual([...marks, fm].map((m) => m.expired), [false, true, true, true, true, true]);
    const changed = (i: number, when: number) => ks.changedSince(keys[i]!, marks[i]!, ks.read(0, when));
    assert.deepEqual(keys.map((_, i) => changed(i, at)), [false, false, false, false, false], "nothing happened yet");
    assert.equal(changed(0, now + 150), true, "expired after WATCH, not yet deleted: changed");
    await write(ks, (w) => {
      w.setString(keys[2]!, b("new"), 0); // a write that leaves it stored
      assert.equal(w.del(keys[3]!), false); // deletes the expired value: no key to report
      w.setString(keys[4]!, b("again"), 0);
    }, at);
    await write(ks, (w) => void w.del(keys[4]!), at);
    assert.equal(await ks.sweepOnce(at), 2, "the sweep deletes the two still expired: 'swept' and db 1's");
    assert.equal(changed(1, at), false, "deleted by the sweep: no change");
    assert.equal(changed(2, at), true, "set again: changed");
    assert.equal(changed(3, at), false, "deleted by DEL while expired: no change");
    assert.equal(changed(4, at), true, "set, then deleted: two writes, a change");
    // A flush is one deletion too; a write after it is a change.
    await write(ks, (w) => w.setString(f, b("v"), now + 10), now, 1);
    ks.unwatch(1, f);
    ks.watch(1, f);
    const fm2 = ks.mark(f, ks.read(1, at));
    assert.equal(fm2.expired, true);
    await write(ks, (w) => w.flush(), at, 1);
    assert.equal(ks.changedSince(f, fm2, ks.read(1, at)), false, "deleted by FLUSHDB while expired: no change");
    await write(ks, (w) => w.setString(f, b("x"), 0), at, 1);
    assert.equal(ks.changedSince(f, fm2, ks.read(1, at)), true, "then written: changed");
  });
});

test("SCAN order: resumes after the last key, skips expired ones", async (t) => {
  await withKs(t, async (ks) => {
    const now = Date.now();
    await write(ks, (w) => {
      for (let i = 0; i < 25; i++) w.setString(b(`k${String(i).padStart(2, "0")}`), b("v"), i === 5 ? now + 1 : 0);
    });
    const seen: string[] = [];
    let after: Buffer | undefined;
    for (;;) {
      const r = ks.read(0, now + 10).scan(after, 10);
      seen.push(...r.keys.map((k) => k.toString()));
      if (!r.last) break;
      after = r.last;
    }
    assert.equal(seen.length, 24);
    assert.ok(!seen.includes("k05"));
  });
});

test("batched: the commands of one turn share one log record; one that fails after a write runs alone, and key counts stay exact", async (t) => {
  const dir = tempDir(t, "keel-ks-");
  const db = await open(dir, { maxValueSize: 64 });
  t.after(() => (db.isClosed ? undefined : db.close()));
  const ks = new Keyspace(db, 1);
  const cmd = <T>(fn: (v: KeyView) => T) => ks.batched((tx) => fn(ks.write(0, new TxStore(tx))));
  const lsn = () => db.txlogWatermarks().lastCommittedLsn;

  let before = lsn();
  const ok = await Promise.all([
    cmd((v) => v.setString(b("a"), b("1"), 0)),
    cmd((v) => {
      if (v.exists(b("a"))) throw new RespError("ERR refused before any write");
    }).catch((e: RespError) => e.reply),
    cmd((v) => v.setString(b("b"), b("2"), 0)),
    cmd((v) => v.dbsize()),
  ]);
  assert.deepEqual(ok, [undefined, "ERR refused before any write", undefined, 2]);
  assert.equal(lsn() - before, 1, "one log record for the turn");

  before = lsn();
  const mixed = await Promise.all([
    cmd((v) => v.setString(b("c"), b("3"), 0)),
    cmd((v) => {
      v.setString(b("d"), b("4"), 0);
      v.setString(b("e"), Buffer.alloc(100), 0); // over maxValueSize: fails after a write
    }).catch((e: unknown) => (e instanceof RespError ? "refused" : (e as { code?: string }).code)),
    cmd((v) => [v.exists(b("d")), v.dbsize()]),
    // A transaction queued after the batch closes it: the command after it must run after it.
    ks.transaction((tx) => ks.write(0, new TxStore(tx)).exists(b("late"))),
    cmd((v) => {
      v.setString(b("late"), b("5"), 0);
      return v.dbsize();
    }),
  ]);
  assert.deepEqual(mixed, [undefined, "refused", [false, 3], false, 4]);
  assert.equal(lsn() - before, 2, "the retried batch wrote one record (c), the next batch one (late); the empty ones none");
  assert.equal(ks.keyCountInTransaction(0), 4);
  assert.equal(ks.ldb(0).keys.getCount(), 4);
  assert.equal(db.openDB("resp:0:keys", { keyEncoding: "binary", encoding: "binary" }).getBinary(b("d")), undefined);
});
