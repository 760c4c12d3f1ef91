/*
 * taskfifo.c - a ring of cap entries. Each ring slot keeps its args buffer
 * (grown, never shrunk): prefetched tasks on the hot path cost a memcpy, not
 * a malloc. Memory is bounded by cap x the largest args seen (<= TQ_ARGS_MAX).
 */
#include "taskfifo.h"

#include <stdlib.h>
#include <string.h>

#include "tmem.h"

struct taskfifo {
    taskfifo_entry_t *ring;
    size_t cap, head, n;
};

taskfifo_t *taskfifo_new(size_t cap)
{
    taskfifo_t *self = xcalloc(1, sizeof *self);
    self->cap = cap;
    self->ring = xcalloc(cap ? cap : 1, sizeof *self->ring);
    return self;
}

void taskfifo_destroy(taskfifo_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    taskfifo_t *self = *self_p;
    for (size_t i = 0; i < self->cap; i++)
        free(self->ring[i].args);
    free(self->ring);
    free(self);
    *self_p = NULL;
}

size_t taskfifo_count(const taskfifo_t *self) { return self->n; }
size_t taskfifo_cap(const taskfifo_t *self) { return self->cap; }

taskq_err_t taskfifo_push(taskfifo_t *self, const taskq_id_t *id, uint32_t attempt,
                          const char *name, size_t name_len, const void *args,
                          size_t args_len, int64_t time_limit_ms)
{
    if (self->n == self->cap)
        return TASKQ_EBUSY;
    if (name_len > TQ_NAME_MAX || args_len > TQ_ARGS_MAX || (args_len && !args))
        return TASKQ_EINVAL;
    taskfifo_entry_t *e = &self->ring[(self->head + self->n) % self->cap];
    if (args_len > e->args_cap) {
        free(e->args);
        e->args = xmalloc(args_len);
        e->args_cap = (uint32_t)args_len;
    }
    e->id = *id;
    e->attempt = attempt;
    memcpy(e->name, name, name_len);
    e->name[name_len] = '\0';
    e->name_len = (uint32_t)name_len;
    if (args_len)
        memcpy(e->args, args, args_len);
    e->args_len = (uint32_t)args_len;
    e->time_limit_ms = time_limit_ms;
    self->n++;
    return TASKQ_OK;
}

const taskfifo_entry_t *taskfifo_at(const taskfifo_t *self, size_t i)
{
    if (i >= self->n)
        return NULL;
    return &self->ring[(self->head + i) % self->cap];
}

void taskfifo_pop(taskfifo_t *self)
{
    if (self->n == 0)
        return;
    self->head = (self->head + 1) % self->cap;
    self->n--;
}

bool taskfifo_has(const taskfifo_t *self, const taskq_id_t *id, uint32_t attempt)
{
    for (size_t i = 0; i < self->n; i++) {
        const taskfifo_entry_t *e = &self->ring[(self->head + i) % self->cap];
        if (e->attempt == attempt && !memcmp(e->id.b, id->b, sizeof id->b))
            return true;
    }
    return false;
}

bool taskfifo_remove(taskfifo_t *self, const taskq_id_t *id, uint32_t attempt)
{
    for (size_t i = 0; i < self->n; i++) {
        taskfifo_entry_t *e = &self->ring[(self->head + i) % self->cap];
        if (e->attempt != attempt || memcmp(e->id.b, id->b, sizeof id->b))
            continue;
        /* shift the later entries forward by one; the removed entry (and
         * its args buffer, kept for reuse) lands in the slot after the new
         * tail, so no buffer is lost or shared */
        taskfifo_entry_t gone = *e;
        for (size_t j = i; j + 1 < self->n; j++)
            self->ring[(self->head + j) % self->cap] =
                self->ring[(self->head + j + 1) % self->cap];
        self->ring[(self->head + self->n - 1) % self->cap] = gone;
        self->n--;
        return true;
    }
    return false;
}
