#!/usr/bin/env node
// The floor of a RESP server written in Node: node:net, one 'data' handler per socket, and nothing
// else. It answers every command of a chunk at once, without parsing beyond counting the commands
// (a '*' at the start of a line): +OK for SET, a null bulk for GET, a two-element array for the
// CONFIG GETs redis-benchmark sends first. No storage, no log, no sync. bench/server.mjs runs it
// beside keel serve and redis-server as the physical limit of Node's networking on this machine,
// as bench/run.mjs runs the raw fdatasync rate beside the engines.
//
// With a file argument it is the floor of a Node server with `appendfsync always`: every chunk that
// holds a write (SET) is appended to that file as it arrives, and its replies wait for one
// fdatasync per turn of the event loop, shared by every chunk read in that turn, as redis-server
// does in beforeSleep (write the AOF, fsync it, then send the replies). Still no parsing, no
// storage, no encoding: only Node's networking plus the sync.
//
//   node bench/lib/null-resp-server.mjs PORT [LOGFILE]
import fs from "node:fs";
import net from "node:net";

const port = Number(process.argv[2]);
const logFile = process.argv[3];
const OK = Buffer.from("+OK\r\n");
const NIL = Buffer.from("$-1\r\n");
const CONFIG = Buffer.from("*2\r\n$4\r\nsave\r\n$0\r\n\r\n");

const fd = logFile ? fs.openSync(logFile, "w") : -1;
/** Replies held until the sync of this turn: [socket, bytes] pairs. */
let held = [];
let syncScheduled = false;

function syncAndReply() {
  syncScheduled = false;
  fs.fdatasyncSync(fd);
  const h = held;
  held = [];
  for (const [s, b] of h) if (!s.destroyed) s.write(b);
}

net
  .createServer((s) => {
    s.setNoDelay(true);
    s.on("error", () => s.destroy());
    s.on("data", (d) => {
      let n = 0;
      for (let i = 0; i < d.length; i++) if (d[i] === 42 && (i === 0 || d[i - 1] === 10)) n++;
      const reply = d.includes("CONFIG") ? CONFIG : d.includes("GET") ? NIL : OK;
      const bytes = n <= 1 ? reply : Buffer.concat(new Array(n).fill(reply));
      if (fd < 0 || reply !== OK) return void s.write(bytes);
      fs.writeSync(fd, d);
      held.push([s, bytes]);
      if (!syncScheduled) {
        syncScheduled = true;
        setImmediate(syncAndReply);
      }
    });
  })
  .listen(port, "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
