/**
 * open(): the one way to get a Database.
 *
 * Order: validate options, create the directory, take the LOCK (LOCKED if a live process has
 * it), open the data file (newest valid meta), then the log and its replay (WAL mode), then
 * make sure the default database exists.
 */
import { KeelError, ioError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";
import { nodeFileSystem, pinnedPath } from "../io/NodeFileSystem.js";
import { META_FLAG_WAL } from "../pager/Meta.js";
import { Engine } from "../txn/Engine.js";
import { DEFAULT_DB } from "../txn/Snapshot.js";
import { CheckpointDurability } from "./CheckpointDurability.js";
import { Database } from "./Database.js";
import { Lock } from "./Lock.js";
import { ReadOnlyFloorWatch, Registration } from "./ReadOnlyReaders.js";
import { validateOptions, type OpenOptions } from "./options.js";
import { LogDurability, openLog, replayLogReadOnly } from "./LogDurability.js";
import { listSnapshots } from "../maintenance/Snapshots.js";
import { migrateOnOpen } from "./migrations/index.js";
import { markUnloggedChanges } from "./unloggedChanges.js";
import { checkedStat } from "../io/checkedStat.js";

export async function open(path: string, options?: OpenOptions): Promise<Database> {
  return openSync(path, options);
}

/** open() without the promise (used by tools and tests that run synchronously). */
export function openSync(path: string, options?: OpenOptions): Database {
  if (typeof path !== "string" || path.length === 0) throw new KeelError("INVALID_ARGUMENT", "path must be a non-empty string", { argument: "path" });
  const o = withCrashHook(validateOptions(options));
  const fs: FileSystem = o.fs ?? nodeFileSystem;
  path = pinnedPath(fs, path);
  const wal = o.wal ?? true;
  if (!o.readOnly) {
    try {
      fs.mkdir(path);
    } catch (e) {
      throw ioError(e, "mkdir", path);
    }
  } else if (!checkedStat(fs, path)) throw new KeelError("NOT_FOUND", `no database at ${path}`, { path });
  // A read-only open registers before it checks the LOCK, a writer lists the registrations after
  // taking it: either the writer sees the reader, or the reader sees the writer (ReadOnlyReaders.ts).
  const registration = o.readOnly ? Registration.create(fs, path) : null;
  let lock: Lock | null = null;
  try {
    if (o.readOnly) Lock.check(fs, path);
    else lock = Lock.acquire(fs, path);
  } catch (e) {
    registration?.release();
    // LOCKED as it is; an OS error reading the LOCK's state (a stat, /proc) coded like any other.
    throw e instanceof KeelError ? e : ioError(e, "lock", path);
  }
  let engine: Engine | null = null;
  let readOnlyWatch: ReadOnlyFloorWatch | null = null;
  // Released if the open fails after the log is open: its descriptor (and timer) would outlive it.
  let openedLog: { abandon(): void } | null = null;
  try {
    // An older format shipped in this package is migrated here, in-process, with a backup of
    // the original kept next to the database; a newer one is refused with VERSION.
    const migrated = migrateOnOpen(fs, path, { readOnly: o.readOnly });
    if (migrated) {
      process.emitWarning(`KeelDB: migrated ${path} from format version ${migrated.from} to ${migrated.to}; the original is kept in ${migrated.backupDir}`, {
        code: "KEEL_MIGRATED",
      });
    }
    engine = Engine.open(fs, path, {
      pageSize: o.pageSize,
      cacheBytes: o.cacheSize,
      maxReaders: o.maxReaders,
      maxValueSize: o.maxValueSize,
      noSync: o.noSync,
      noMetaSync: o.noMetaSync,
      readOnly: o.readOnly,
      flags: wal ? META_FLAG_WAL : 0,
      onPhase: o.onPhase,
      freelistDeltas: o.freelistDeltas,
    });
    if (registration) registration.setTxn(engine.durable.txn);
    else {
      // Before the first checkpoint: pages the views of read-only processes reach stay put (I2).
      readOnlyWatch = ReadOnlyFloorWatch.start(fs, path, engine.durable.txn);
      const watch = readOnlyWatch;
      if (watch) engine.readerFloor = () => watch.floor();
    }
    const existing = engine.head.dbs.get(DEFAULT_DB);
    const keyEncoding = o.keyEncoding ?? existing?.keyEncoding ?? "ordered-binary";
    const encoding = o.encoding ?? existing?.valueEncoding ?? "msgpack";
    if (existing && (existing.keyEncoding !== keyEncoding || existing.valueEncoding !== encoding)) {
      throw new KeelError(
        "INVALID_ARGUMENT",
        `the database at ${path} was created with keyEncoding ${existing.keyEncoding} and encoding ${existing.valueEncoding}; asked for ${keyEncoding} and ${encoding}`,
        { option: "encoding", stored: { keyEncoding: existing.keyEncoding, encoding: existing.valueEncoding } },
      );
    }
    let durability: CheckpointDurability | LogDurability;
    if (wal && !o.readOnly) {
      const { wal: log, replay } = openLog(fs, path, engine, o);
      openedLog = { abandon: () => log.closeSync() };
      durability = new LogDurability(engine, log, o, replay);
      openedLog = durability;
      const watch = readOnlyWatch;
      if (watch) durability.readOnlyLogFloor = () => watch.logFloor();
      engine.logOps = true;
      // Before any checkpoint (and so any gc): the log that consumers and the kept snapshots need
      // is a floor.
      durability.loadConsumerFloors(fs, path);
      try {
        const oldest = listSnapshots(fs, path).reduce((m, s) => Math.min(m, s.lsn), Infinity);
        if (Number.isFinite(oldest)) durability.setFloor("snapshot", oldest + 1);
      } catch {
        // A damaged snapshot.json: keep all the log (floor 0) rather than guess.
        durability.setFloor("snapshot", 0);
      }
      // A wal: false session since the log's last record left changes the log lacks: mark the
      // point, so that no replay onto an older state crosses it (unloggedChanges.ts).
      const marked = markUnloggedChanges(engine, log, log.recovery.createdDir);
      // Replay is idempotent, but a checkpoint now means the next open need not repeat it.
      if (replay.records > 0 || marked) durability.checkpointAfterReplay();
    } else {
      // Without the log (or read-only): a log left by an earlier wal: true run still holds
      // commits the data file may lack; replay them, and in write mode make them durable.
      if (fs.stat(path + "/wal")) {
        if (o.readOnly) replayLogReadOnly(fs, path, engine, o);
        else {
          const { wal: log, replay } = openLog(fs, path, engine, { ...o, durability: "strict" });
          log.closeSync();
          if (replay.records > 0) engine.checkpoint();
        }
      }
      durability = new CheckpointDurability(engine, { readOnly: o.readOnly });
    }
    const db = new Database(engine, fs, path, lock ?? registration, durability, keyEncoding, encoding, !!o.readOnly);
    const fb = engine.report.metaFallback;
    if (fb) {
      const torn = fb.reason.startsWith("torn-checkpoint");
      process.emitWarning(
        (torn
          ? `KeelDB: the newest checkpoint of ${path} (meta page ${fb.slot}, txn ${fb.claimedTxn}) did not reach the disk whole (a power cut during its sync: ${fb.reason.slice(17)}); opened the previous one`
          : `KeelDB: the newest meta page of ${path} (page ${fb.slot}, txn ${fb.claimedTxn}) is damaged (${fb.reason}); opened the previous one`) +
          (wal ? " and replayed the log" : torn ? ": the last commit group, never acknowledged, is lost" : ": the last commit group is lost"),
        { code: "KEEL_META_FALLBACK" },
      );
    }
    durability.attach(db);
    db.initFloors();
    if (!existing && !o.readOnly) {
      db.transactionSync((tx) => tx.createDefault());
    }
    return db;
  } catch (e) {
    try {
      openedLog?.abandon();
    } catch {
      // report the open error
    }
    try {
      engine?.close();
    } catch {
      // report the open error
    }
    try {
      lock?.release();
    } catch {
      // report the open error
    }
    registration?.release();
    throw e instanceof KeelError ? e : ioError(e, "open", path);
  }
}

/**
 * KEEL_CRASH_AT=<phase> (crash tests): the process kills itself with SIGKILL when it reaches that
 * named phase of a checkpoint, log append, segment roll, snapshot or gc.
 */
function withCrashHook(o: OpenOptions): OpenOptions {
  const at = process.env.KEEL_CRASH_AT;
  if (!at) return o;
  const inner = o.onPhase;
  return {
    ...o,
    onPhase: (phase: string) => {
      inner?.(phase);
      if (phase === at) process.kill(process.pid, "SIGKILL");
    },
  };
}

