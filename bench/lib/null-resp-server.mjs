#!/usr/bin/env node
// The floor of a RESP server written in Node: node:net, one 'data' handler per socket, and nothing
// else. It answers every command of a chunk at once, without parsing beyond counting the commands
// (a '*' at the start of a line): +OK for SET, a null bulk for GET, a two-element array for the
// CONFIG GETs redis-benchmark sends first. No storage, no log, no sync. bench/server.mjs runs it
// beside keel serve and redis-server as the physical limit of Node's networking on this machine,
// as bench/run.mjs runs the raw fdatasync rate beside the engines.
//
//   node bench/lib/null-resp-server.mjs PORT
import net from "node:net";

const port = Number(process.argv[2]);
const OK = Buffer.from("+OK\r\n");
const NIL = Buffer.from("$-1\r\n");
const CONFIG = Buffer.from("*2\r\n$4\r\nsave\r\n$0\r\n\r\n");

net
  .createServer((s) => {
    s.setNoDelay(true);
    s.on("error", () => s.destroy());
    s.on("data", (d) => {
      let n = 0;
      for (let i = 0; i < d.length; i++) if (d[i] === 42 && (i === 0 || d[i - 1] === 10)) n++;
      const reply = d.includes("CONFIG") ? CONFIG : d.includes("GET") ? NIL : OK;
      s.write(n <= 1 ? reply : Buffer.concat(new Array(n).fill(reply)));
    });
  })
  .listen(port, "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
