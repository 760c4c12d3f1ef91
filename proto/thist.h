/*
 * thist.h - the history recorder: one line per event, appended to
 * $TASKQ_HISTORY/<role>.<pid>.hist, for the at-least-once checker
 * (tests/support/checker.h; format in docs/reliability.md).
 *
 * Line: "<wall_us> <role> <pid> <event> <fields...>\n", written with ONE
 * write(2) on an O_APPEND|O_CLOEXEC fd, so a kill -9 never leaves half a
 * line and a forked+exec'd child never inherits the file.
 *
 * Disabled (TASKQ_HISTORY unset or the file cannot be opened): every call is
 * a cheap no-op. No allocation per event (deferred mode reuses one buffer).
 * One recorder per process (per copy of taskq_proto: libtaskq has its own).
 * Lazy opening is thread-safe; thist_event from several threads is safe in
 * direct mode (one write each); deferred mode is for one thread only.
 */
#ifndef TASKQ_THIST_H
#define TASKQ_THIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opens DIR/<role>.<pid>.hist if $TASKQ_HISTORY names a directory. `role`
 * must be a literal (client, broker, worker, child, fault). Only the first
 * call in a process does anything; later calls (any role) are no-ops. */
void thist_open(const char *role);
/* true if events are being recorded. */
bool thist_is_enabled(void);
/* Records "<event> <fields>" (fmt); the prefix is added here. Lines longer
 * than 1 KiB are truncated (fields are ids and numbers: never that long). */
void thist_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Deferred mode (the broker): events are held in memory until
 * thist_flush() writes them or thist_discard() drops them, so that the
 * history only shows transitions whose transaction committed. */
void thist_defer(bool on);
void thist_flush(void);
void thist_discard(void);
/* Flushes held events and closes the file. */
void thist_close(void);

/* FNV-1a 64-bit of data (the result hash in exec_end and terminal). */
uint64_t thist_fnv64(const void *data, size_t len);
/* The hash of a result as the broker stores it: an empty result is the
 * msgpack nil (0xc0). */
uint64_t thist_result_hash(const void *data, size_t len);

#endif
