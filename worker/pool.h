/*
 * pool.h - the supervisor's child slots and nothing else: no sockets, no
 * msgpack. A slot holds one child process at a time (pid, the parent end of
 * its socketpair, state, current task, counters). Every state change goes
 * through pool_on(), which checks a table of legal moves; an illegal move is
 * logged and refused (TASKQ_EINTERNAL), never an abort.
 *
 *   STARTING --ready--> IDLE --assign--> BUSY --done--> IDLE
 *   STARTING/IDLE --stop--> STOPPING        (STOP frame sent)
 *   STARTING/IDLE/BUSY/STOPPING --kill--> STOPPING   (SIGKILL sent)
 *   any live state --exit--> DEAD --spawn--> STARTING
 *
 * Children are created by fork() + execv(exe, "--child", fd, modules...):
 * between the two the child only sets PR_SET_PDEATHSIG, checks getppid(),
 * moves its socketpair end to fd 3, closes every other descriptor, resets
 * signals and execs, so nothing of the supervisor (ZeroMQ) crosses over.
 */
#ifndef TASKQ_POOL_H
#define TASKQ_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tqlimits.h"
#include "taskq.h"

typedef enum { POOL_STARTING, POOL_IDLE, POOL_BUSY, POOL_STOPPING, POOL_DEAD } pool_state_t;
typedef enum { POOL_EV_SPAWN, POOL_EV_READY, POOL_EV_ASSIGN, POOL_EV_DONE, POOL_EV_STOP,
               POOL_EV_KILL, POOL_EV_EXIT } pool_event_t;

typedef struct {
    size_t index;
    pid_t pid;               /* 0 when DEAD */
    int fd;                  /* parent end of the socketpair, -1 when none */
    pool_state_t state;
    bool has_task;           /* BUSY: the task below is running */
    taskq_id_t task_id;
    uint32_t attempt;
    char task_name[TQ_NAME_MAX + 1];
    int64_t started_at;      /* wall ms the task started (for DONE) */
    int64_t started_mono;    /* monotonic ms the task started */
    int64_t deadline_mono;   /* time limit, 0 = none */
    int64_t time_limit_ms;   /* the limit in force, 0 = none */
    int64_t spawned_mono;    /* when the child was forked */
    uint64_t done, failed;   /* tasks finished by this child */
} pool_slot_t;

typedef struct pool pool_t;

/* n slots (all DEAD); children exec `exe` with the given modules (copied). */
pool_t *pool_new(size_t n, const char *exe, const char *const *modules, size_t nmodules);
/* Frees the slots; does not kill children (see pool_kill). */
void pool_destroy(pool_t **self_p);
size_t pool_size(const pool_t *self);
pool_slot_t *pool_slot(pool_t *self, size_t i);
size_t pool_count(const pool_t *self, pool_state_t state);
pool_slot_t *pool_find_pid(pool_t *self, pid_t pid);
/* The BUSY slot running (id, attempt), or NULL. */
pool_slot_t *pool_find_task(pool_t *self, const taskq_id_t *id, uint32_t attempt);

const char *pool_state_name(pool_state_t state);
const char *pool_event_name(pool_event_t ev);
/* Applies ev to the slot if the table allows it; else logs and returns
 * TASKQ_EINTERNAL leaving the slot unchanged. EXIT and SPAWN clear the task. */
taskq_err_t pool_on(pool_slot_t *slot, pool_event_t ev);

/* Forks and execs a child into a DEAD slot: slot->fd is the parent end
 * (non-blocking, close-on-exec), state STARTING. TASKQ_ESYS on failure. */
taskq_err_t pool_spawn(pool_t *self, pool_slot_t *slot);
/* Sends sig to the slot's child (if any). */
void pool_kill(pool_slot_t *slot, int sig);

/* Describes a waitpid() status: "killed by signal 9 (SIGKILL)" /
 * "exited with status 3". */
void pool_describe_status(int status, char *buf, size_t bufsz);
/* Collects every exited child without blocking and calls fn for each, with
 * the slot (NULL for a pid that is not ours) and the waitpid status. fn runs
 * before the slot moves to DEAD, so it still sees the task and state. */
typedef void (*pool_reap_fn)(void *arg, pool_slot_t *slot, pid_t pid, int status);
size_t pool_reap(pool_t *self, pool_reap_fn fn, void *arg);

/* Resident set size of a process in KiB (from /proc/PID/statm), 0 if unknown. */
uint64_t pool_rss_kb(pid_t pid);

#endif
