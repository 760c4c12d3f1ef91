/*
 * faultvfs.h - a test-only SQLite VFS that wraps the default "unix" VFS and
 * injects storage faults (the technique of SQLite's own crash tests). It is
 * part of the store backend: only store_sqlite.c uses it.
 *
 * Compiled when the CMake option TASKQ_FAULTS is ON, and active only when
 * $TASKQ_FAULT_VFS is set when the broker opens its store. The variable is a
 * comma-separated list of key=value:
 *   crash_sync=N,seed=S,loss=random|drop|keep
 *       Simulated power loss. Every write since its file's last xSync keeps
 *       an undo record (offset, old bytes, old size). The N-th xSync (all
 *       files counted) does not sync: each unsynced write, newest first, is
 *       kept, dropped (old bytes restored, file cut back) or garbled
 *       (random bytes), per `loss` (random: one of the three at random,
 *       seeded by S), then the process leaves with _exit(99).
 *   full_file=PATH   while PATH exists, a write or truncate that would grow
 *                    a file fails with SQLITE_FULL (disk full).
 *   eio_file=PATH    while PATH exists, every write fails with
 *                    SQLITE_IOERR_WRITE.
 * Removing PATH ends the fault. Limits: data written to a file that is then
 * closed without a sync counts as durable; the -shm index is not a fault
 * target (SQLite rebuilds it from the WAL after a crash).
 */
#ifndef TASKQ_FAULTVFS_H
#define TASKQ_FAULTVFS_H

#ifdef TASKQ_FAULTS
/* Parses $TASKQ_FAULT_VFS and registers the VFS (once). Returns the VFS
 * name to pass to sqlite3_open_v2, or NULL when the variable is unset (use
 * the default VFS). A malformed value is logged and ignored (NULL). */
const char *faultvfs_install(void);
#else
static inline const char *faultvfs_install(void) { return 0; }
#endif

#endif
