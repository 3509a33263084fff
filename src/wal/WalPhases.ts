/**
 * WAL_PHASES: the named points at which the log calls `onPhase`, so that crash tests (and the db
 * layer's KEEL_CRASH_AT) can stop the process exactly there.
 *
 * Invariants kept:
 * - Every name here is passed to onPhase by the log, at the point its comment describes; a crash
 *   (kill -9, power loss) at any of them leaves a log that recovery accepts with no human help.
 * - A hook that throws stands for a crash: the log does not clean up after it and refuses further
 *   appends until it is reopened.
 */
export const WAL_PHASES = [
  "wal-append:before-write", // record encoded, space preallocated, nothing of it written
  "wal-append:after-write", // record written (not synced), not yet counted as committed
  "wal-sync:before", // a group-commit sync is about to start
  "wal-sync:after", // a group-commit sync returned; its waiters not yet resolved
  "wal-segment-roll:before-seal", // about to truncate and sync the full segment
  "wal-segment-roll:before-header", // old segment sealed; new file not yet created
  "wal-segment-roll:after-header", // new file's header written and synced; directory not synced
  "wal-segment-roll:after-dir-sync", // new segment durable, no record in it yet
  "wal-gc:before-delete", // about to remove a segment file
  "wal-gc:after-delete", // segment removed and the directory synced
  "wal-recovery:before-truncate", // recovery found a torn tail, about to cut it
  "wal-recovery:after-truncate", // torn tail cut and synced
  "wal-recovery:before-remove-torn-segment", // recovery about to remove a torn newest segment
  "wal-recovery:after-remove-torn-segment", // torn newest segment removed, directory synced
] as const;

export type WalPhase = (typeof WAL_PHASES)[number];
