/**
 * maxclients fitted to the open-files limit, as Redis does: under `ulimit -n 128` a configured
 * maxclients of 10000 becomes 128 - 48 = 80 (a warning names both), CONFIG GET and INFO report 80,
 * CONFIG SET above it is refused with Redis's words, and with every client slot taken the next
 * connection is refused while the server's own files (a SAVE, new log segments) still open.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rawConnect, type Raw } from "../e2e/rawClient.js";
import { client, startServe } from "./serveChild.js";

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), "keel-fdlimit-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test("maxclients is lowered to the open-files limit minus 48, reported, and enforced", async (t) => {
  const d = tmp(t);
  const cfg = join(d, "keel.toml");
  writeFileSync(cfg, `dir = "${join(d, "db")}"\nmaxclients = 10000\nhttp_port = 0\n[engine]\nwal_segment_max_bytes = "64kb"\n`);
  const s = await startServe(["--config", cfg], {}, 20_000, { nofile: 128 });
  t.after(() => void s.child.kill("SIGKILL"));
  const warn = s.lines.find((l) => l.event === "maxclients-reduced");
  assert.ok(warn, "a warning says maxclients was reduced");
  assert.equal(warn.requested, 10000);
  assert.equal(warn.maxclients, 80);
  assert.equal(warn.openFilesLimit, 128);
  assert.equal(s.lines.find((l) => l.event === "ready")?.maxclients, 80);

  const admin = client(s.port);
  const raws: Raw[] = [];
  try {
    assert.deepEqual(await admin.config("GET", "maxclients"), ["maxclients", "80"]);
    assert.match(String(await admin.info("clients")), /\r\nmaxclients:80\r\n/);
    await assert.rejects(admin.config("SET", "maxclients", "81"), {
      message: "ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with 80",
    });
    assert.equal(await admin.config("SET", "maxclients", "80"), "OK");

    // 79 more clients fill the slots; the next one is refused, and the server's files still open.
    for (let i = 0; i < 79; i++) raws.push(await rawConnect(s.port));
    const last = raws[78]!;
    last.send("PING\r\n");
    assert.equal(await last.until((x) => x.endsWith("\r\n")), "+PONG\r\n");
    const over = await rawConnect(s.port);
    assert.equal(await over.until((x) => x.endsWith("\r\n")), "-ERR max number of clients reached\r\n");
    over.close();
    assert.equal(await admin.call("SAVE"), "OK");
    // 20 values of 10 KiB: the 64 KiB log segments roll several times.
    for (let i = 0; i < 20; i++) assert.equal(await admin.set(`k${i}`, "x".repeat(10_000)), "OK");
    assert.equal(await admin.call("SAVE"), "OK");
  } finally {
    for (const r of raws) r.close();
    admin.disconnect();
  }
});
