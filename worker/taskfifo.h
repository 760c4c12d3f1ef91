/*
 * taskfifo.h - the tasks a worker supervisor received (TASK) but has not yet
 * handed to a child: a bounded FIFO with a fixed capacity chosen at start
 * (--prefetch plus the children). Entries are leased by the broker like
 * running tasks, so the supervisor lists them in HELLO and HEARTBEAT; their
 * time limit has not started (it starts when a child takes them).
 *
 * The FIFO owns copies of the name and args. Slots keep their args buffer
 * between uses, so a steady flow of tasks allocates nothing. No I/O, no
 * clock, no sockets.
 */
#ifndef TASKQ_TASKFIFO_H
#define TASKQ_TASKFIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taskq.h"
#include "tqlimits.h"

typedef struct {
    taskq_id_t id;
    uint32_t attempt;
    char name[TQ_NAME_MAX + 1];
    uint32_t name_len;
    uint8_t *args;          /* owned by the FIFO; valid until the next pop */
    uint32_t args_len;
    uint32_t args_cap;
    int64_t time_limit_ms;  /* from TASK: 0 = the worker's default */
} taskfifo_entry_t;

typedef struct taskfifo taskfifo_t;

/* A FIFO holding at most cap entries (cap may be 0). Aborts on OOM (xmalloc). */
taskfifo_t *taskfifo_new(size_t cap);
void taskfifo_destroy(taskfifo_t **self_p);
size_t taskfifo_count(const taskfifo_t *self);
size_t taskfifo_cap(const taskfifo_t *self);
/* Appends a copy. TASKQ_EBUSY if full, TASKQ_EINVAL if name/args exceed
 * their limits; the FIFO is unchanged then. */
taskq_err_t taskfifo_push(taskfifo_t *self, const taskq_id_t *id, uint32_t attempt,
                          const char *name, size_t name_len, const void *args,
                          size_t args_len, int64_t time_limit_ms);
/* The i-th entry from the head (0 = oldest), or NULL. Borrowed until the
 * next push/pop. */
const taskfifo_entry_t *taskfifo_at(const taskfifo_t *self, size_t i);
/* Removes the head; its entry (from taskfifo_at(0)) stays readable until the
 * next push. No-op when empty. */
void taskfifo_pop(taskfifo_t *self);
/* True if (id, attempt) is queued. */
bool taskfifo_has(const taskfifo_t *self, const taskq_id_t *id, uint32_t attempt);
/* Removes (id, attempt) wherever it is (a revoked task that has not
 * started); the others keep their order. Returns false if it is not queued.
 * Entries borrowed from taskfifo_at are invalid afterwards. */
bool taskfifo_remove(taskfifo_t *self, const taskq_id_t *id, uint32_t attempt);

#endif
