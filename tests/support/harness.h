/*
 * harness.h - integration-test harness: runs the real taskq binaries in a
 * private temp dir and process group, waits on conditions with deadlines,
 * and on any failure prints the tail of every log and exits 1.
 *
 * Contract:
 *  - h_init() first. It creates /tmp/taskq-it-<test>-XXXXXX, makes the test
 *    a process-group leader, and installs atexit + SIGINT/SIGTERM/SIGALRM
 *    handlers that SIGKILL every process the harness started. At exit the
 *    harness checks that no process of the group survived; the temp dir is
 *    removed on success and kept (path printed) on failure.
 *  - Binaries come from $TASKQ_BIN_DIR; the test module from
 *    $TASKQ_TESTMODULE (both set by ctest).
 *  - Every wait has a deadline: timeouts are relative, in ms. Nothing here
 *    sleeps as synchronisation; h_wait_for() polls a condition.
 *  - Handles (h_broker_t, h_worker_t) are owned by the harness and live
 *    until exit; their processes are killed at exit if still running.
 *  - Any h_* call that cannot do its job fails the test (no error returns).
 */
#ifndef TASKQ_HARNESS_H
#define TASKQ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "taskq.h"

void h_init(int argc, char **argv);
/* Last-resort deadline for the whole test (alarm); default 240 s. */
void h_set_deadline_s(unsigned seconds);
const char *h_tmpdir(void);
int64_t h_now_ms(void); /* monotonic */

/* Failure: prints "FAIL file:line: ...", the log tails, and exits 1. */
void h_fail_at(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
#define H_FAIL(...) h_fail_at(__FILE__, __LINE__, NULL, __VA_ARGS__)
#define H_ASSERT(cond, ...)                                                      \
    do {                                                                         \
        if (!(cond))                                                             \
            h_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__);                   \
    } while (0)
/* Asserts a taskq_err_t expression is TASKQ_OK. */
#define H_OK(expr)                                                               \
    do {                                                                         \
        int h_rc_ = (int)(expr);                                                 \
        if (h_rc_ != 0)                                                          \
            h_fail_at(__FILE__, __LINE__, #expr, "returned %s (%s)",             \
                      taskq_err_name(h_rc_), taskq_strerror(h_rc_));             \
    } while (0)

/* Logs a progress line to stderr (prefixed with elapsed time). */
void h_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Polls cond(arg) every ~15 ms until it returns true; fails the test with
 * `what` if timeout_ms passes first. Returns the ms it took. */
int64_t h_wait_for_at(const char *file, int line, bool (*cond)(void *), void *arg,
                      int64_t timeout_ms, const char *what);
#define h_wait_for(cond, arg, timeout_ms, what)                                  \
    h_wait_for_at(__FILE__, __LINE__, (cond), (arg), (timeout_ms), (what))

/* ---- broker ---------------------------------------------------------------- */

typedef struct h_broker h_broker_t;

/* Starts taskq-broker --bind tcp://127.0.0.1:* --db DB [extra...] (db NULL =
 * TMP/taskq.db); the extra args list ends with NULL. Waits up to 10 s for
 * the `ready endpoint=` line on stdout. stderr goes to TMP/broker.N.log. */
h_broker_t *h_broker_start_v(const char *db, ...) __attribute__((sentinel));
#define h_broker_start(...) h_broker_start_v(__VA_ARGS__, (char *)NULL)
const char *h_broker_endpoint(const h_broker_t *b);
pid_t h_broker_pid(const h_broker_t *b);
/* Sends sig and waits (10 s) for the broker to exit; returns its wait status. */
int h_broker_kill(h_broker_t *b, int sig);
/* Starts the broker again (it must have exited) on the same db, extra args
 * and PORT, retrying for up to 5 s while the port is not yet free. */
void h_broker_restart(h_broker_t *b);

/* ---- worker ---------------------------------------------------------------- */

typedef struct h_worker h_worker_t;

/* Starts taskq-worker --broker EP -n N --module $TASKQ_TESTMODULE
 * --node-id it-K [extra...] (K counts workers from 1); extra ends with NULL.
 * stderr/stdout go to TMP/worker.K.log. Does not wait for readiness. */
h_worker_t *h_worker_start_v(const char *endpoint, int n, ...) __attribute__((sentinel));
#define h_worker_start(...) h_worker_start_v(__VA_ARGS__, (char *)NULL)
const char *h_worker_node_id(const h_worker_t *w);
pid_t h_worker_pid(const h_worker_t *w);
void h_worker_signal(h_worker_t *w, int sig);
/* Waits up to timeout_ms for the supervisor to exit; fails on timeout.
 * Returns its wait status. */
int h_worker_wait_exit(h_worker_t *w, int64_t timeout_ms);
/* Waits until taskq_workers() shows node_id with at least n_idle children
 * in state "idle". */
void h_worker_wait_ready(taskq_client_t *c, const char *node_id, size_t n_idle,
                         int64_t timeout_ms);

/* ---- fault tests: history, injected faults, node control ------------------- */

/* Makes every process the harness starts from now on record its history
 * (TASKQ_HISTORY=TMP/hist, docs: the history spec); call it before starting
 * anything. Returns the directory. The test process itself stays silent. */
const char *h_history_enable(void);
/* TMP/hist, or NULL if history is not enabled. */
const char *h_history_dir(void);
/* Records an injected fault: appends `<wall_us> fault <pid> fault KIND TARGET`
 * to TMP/hist/fault.<pid>.hist with one write(2) (when history is enabled)
 * and h_log()s it. Call it just BEFORE injecting the fault, so the event
 * precedes every consequence. h_broker_kill (SIGKILL), h_broker_restart and
 * the h_worker_* calls below record their own faults. */
void h_fault(const char *kind, const char *target_fmt, ...) __attribute__((format(printf, 2, 3)));
/* h_broker_restart that records `fault KIND <pid of the new broker>` (e.g.
 * crash_vfs when TASKQ_FAULT_VFS arms a crash): the new process writes the
 * line itself between fork and exec, so it precedes everything the broker
 * does, the injected fault included. One line per launch attempt. */
void h_broker_restart_fault(h_broker_t *b, const char *kind);

/* Like h_broker_start, but binds `bind` (e.g. "tcp://10.231.7.1:*") instead
 * of tcp://127.0.0.1:*; a restart binds the same host and port. */
h_broker_t *h_broker_start_at_v(const char *bind, const char *db, ...) __attribute__((sentinel));
#define h_broker_start_at(bind, ...) h_broker_start_at_v((bind), __VA_ARGS__, (char *)NULL)
const char *h_broker_db(const h_broker_t *b);
/* Monotonic ms at which the last (re)start's `ready` line was read. */
int64_t h_broker_ready_at(const h_broker_t *b);

/* Like h_worker_start, run as `ip netns exec NETNS taskq-worker ...` (the
 * pid is the worker's: ip execs it). */
h_worker_t *h_worker_start_ns_v(const char *netns, const char *endpoint, int n, ...)
    __attribute__((sentinel));
#define h_worker_start_ns(ns, ep, ...) h_worker_start_ns_v((ns), (ep), __VA_ARGS__, (char *)NULL)
/* Live children of the supervisor (from /proc); returns how many (<= max). */
int h_worker_children(const h_worker_t *w, pid_t *out, int max);
/* kill -9 one child of w (fault kill_child PID). */
void h_worker_kill_child(h_worker_t *w, pid_t child);
/* kill -9 the supervisor (fault kill_node NODE) and wait for it to exit. */
void h_worker_kill_node(h_worker_t *w);
/* Starts the (dead) node again with the same node id and arguments
 * (fault restart_node NODE). */
void h_worker_restart(h_worker_t *w);
/* SIGSTOP / SIGCONT the supervisor and its children (stop_node, cont_node). */
void h_worker_stop(h_worker_t *w);
void h_worker_cont(h_worker_t *w);

/* Scale of a fault test: `full` if TASKQ_FAULT_SCALE=full, else `ci`. */
long h_scale(long ci, long full);
bool h_scale_full(void);
/* True when built with ASan+UBSan (~3x slower): tests may scale down. */
bool h_sanitized(void);

/* A network namespace taskq-<pid> joined to the root one by a veth pair:
 * root side 10.231.X.1/30, namespace side 10.231.X.2/30 (X from the pid).
 * Returns false and a reason if it cannot be made (not root, no `ip`).
 * Deleted at exit, on success and on failure alike. */
typedef struct {
    char name[32];     /* netns name */
    char veth[16];     /* root-side interface */
    char host_ip[40];  /* root side, where the broker binds */
    char ns_ip[40];
} h_netns_t;
bool h_netns_create(h_netns_t *ns, char *why, size_t whysz);
/* Link down (partition, fault partition_node NODE) or up (heal_node NODE). */
void h_netns_partition(const h_netns_t *ns, const char *node, bool down);

/* ---- processes, CLI -------------------------------------------------------- */

/* True if pid exists and is not a zombie (reaps it if it is our child). */
bool h_pid_alive(pid_t pid);
/* VmRSS of pid in kB, or -1. */
long h_rss_kb(pid_t pid);

/* Runs $TASKQ_BIN_DIR/taskq with TASKQ_BROKER=broker (if not NULL) and the
 * NULL-terminated args; stdout into out (NUL-terminated, truncated to
 * outsz-1), stderr into TMP/cli.N.log. Fails the test if it runs longer than
 * 30 s. Returns the exit code (128+sig if killed); *elapsed_ms if not NULL. */
int h_run_cli_v(char *out, size_t outsz, int64_t *elapsed_ms, const char *broker, ...)
    __attribute__((sentinel));
#define h_run_cli(out, outsz, elapsed, broker, ...)                              \
    h_run_cli_v((out), (outsz), (elapsed), (broker), __VA_ARGS__, (char *)NULL)

/* ---- client and msgpack helpers --------------------------------------------- */

/* taskq_client_new that fails the test on error; timeout set to timeout_ms. */
taskq_client_t *h_client(const char *endpoint, int64_t timeout_ms);
/* Encodes [v] / [s] / [] into out (>= 64 bytes for ints); returns the length. */
size_t h_args_int(uint8_t *out, size_t outsz, int64_t v);
size_t h_args_str(uint8_t *out, size_t outsz, const char *s);
/* Decodes a msgpack integer result; false if it is not one. */
bool h_result_int(const void *data, size_t len, int64_t *v);
/* Status that fails the test on any error but ENOTFOUND (returns NULL then). */
taskq_task_t *h_status(taskq_client_t *c, const taskq_id_t *id);
/* A task spec with only name and args set (the rest zero: defaults). */
taskq_task_spec_t h_spec(const char *name, const void *args, size_t args_len);
/* Submits one task (id generated; written to *id); fails the test on error. */
void h_submit(taskq_client_t *c, taskq_id_t *id, const char *name, const void *args,
              size_t args_len, int64_t time_limit_ms, uint32_t max_attempts);
/* Polls taskq_status (every ~20 ms) until pred(task, arg) holds; returns
 * that record (caller owns it). A missing task counts as "not yet". */
typedef bool (*h_task_pred)(const taskq_task_t *t, void *arg);
taskq_task_t *h_wait_task_at(const char *file, int line, taskq_client_t *c,
                             const taskq_id_t *id, h_task_pred pred, void *arg,
                             int64_t timeout_ms, const char *what);
#define h_wait_task(c, id, pred, arg, timeout_ms, what)                          \
    h_wait_task_at(__FILE__, __LINE__, (c), (id), (pred), (arg), (timeout_ms), (what))
/* Formats an id into a static rotating buffer (for messages). */
const char *h_id_str(const taskq_id_t *id);

/* ---- dispatch-policy tests (issue 6) ------------------------------------------ */

/* Encodes a msgpack array of the varargs described by fmt into out: 'd' int,
 * 'l' long long, 's' const char *, 'f' double; returns the length. E.g.
 * h_args_fmt(buf, sizeof buf, "ss", path, tag) -> [path, tag]. */
size_t h_args_fmt(uint8_t *out, size_t outsz, const char *fmt, ...);
/* Reads a text file into lines (newline removed; a missing file is 0
 * lines). The lines are owned by the h_lines_t; free with h_lines_free. */
typedef struct {
    size_t n;
    char **line;
} h_lines_t;
h_lines_t h_read_lines(const char *path);
void h_lines_free(h_lines_t *l);
/* Lines in path now (0 if it does not exist). */
size_t h_count_lines(const char *path);
/* Path of the stderr log of the last h_run_cli call ("" before any). */
const char *h_cli_last_log(void);
/* taskq_queues() entry of `queue`; false if the broker does not list it.
 * out->name is set to NULL (the listing is freed before returning). */
bool h_queue_info(taskq_client_t *c, const char *queue, taskq_queue_info_t *out);
/* Sum of counts[] of a queue over every state (0 if it is not listed). */
uint64_t h_queue_total(taskq_client_t *c, const char *queue);
/* taskq_test_clock that fails the test on error; returns the broker's new
 * time (unix ms). advance_ms 0 and set_ms 0 reads the clock. */
int64_t h_clock(taskq_client_t *c, int64_t advance_ms, int64_t set_ms);
/* Seed for a test's random choices: $TASKQ_IT_SEED if set, else from the
 * time and pid; logged, so a failing run can be repeated. */
unsigned h_seed(void);

/* ---- lifecycle tests (issue 7) ------------------------------------------------- */

/* Sleeps ms. ONLY to place a race at a chosen moment or to pace a poll loop
 * (never to wait for a condition: use h_wait_for). */
void h_nap_ms(int64_t ms);
/* Every task id (36-char form) in text, in order: writes up to max into ids
 * and returns how many were found (may exceed max). */
size_t h_parse_ids(const char *text, taskq_id_t *ids, size_t max);
/* Renders msgpack bytes as compact JSON-like text into out (NUL-terminated,
 * truncated with "..."): ints, floats (%g), "strings", [arrays], {maps},
 * nil, true/false, bin as b'<hex>'. Returns false if the bytes are not
 * exactly one msgpack value (out then says why). */
bool h_msgpack_text(const void *data, size_t len, char *out, size_t outsz);

/* Soft assertion: logs "EXPECT FAILED file:line: ..." and lets the test go
 * on (to find further problems in one run); h_check_expects() at the end of
 * main fails the test if any was recorded. For product bugs already known,
 * so that one does not hide the next. */
void h_expect_at(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define H_EXPECT(cond, ...)                                                      \
    do {                                                                         \
        if (!(cond))                                                             \
            h_expect_at(__FILE__, __LINE__, #cond, __VA_ARGS__);                 \
    } while (0)
void h_check_expects(void);

#endif
