/*
 * taskfifo.c - a ring of cap entries. Each ring slot keeps its args buffer
 * (grown, never shrunk): prefetched tasks on the hot path cost a memcpy, not
 * a malloc. Memory is bounded by cap x the largest args seen (<= TQ_ARGS_MAX).
 * A hash set of the queued (id, attempt) answers taskfifo_has in O(1) (the
 * supervisor asks it for every TASK; a scan of 500 entries showed in its
 * profile): open addressing, linear probing, at most half full, deletion by
 * backward shift (no tombstones).
 */
#include "taskfifo.h"

#include <stdlib.h>
#include <string.h>

#include "tmem.h"

typedef struct {
    taskq_id_t id;
    uint32_t attempt;
    uint32_t count; /* 0 = empty */
} member_t;

struct taskfifo {
    taskfifo_entry_t *ring;
    size_t cap, head, n;
    member_t *set;
    size_t set_mask; /* set size - 1, a power of two >= 2 * cap */
};

static size_t member_home(const taskfifo_t *self, const taskq_id_t *id, uint32_t attempt)
{
    /* ids are UUIDv7: the tail is random */
    uint64_t h;
    memcpy(&h, id->b + 8, sizeof h);
    h ^= attempt * 0x9e3779b97f4a7c15ull;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return (size_t)h & self->set_mask;
}

static member_t *member_find(const taskfifo_t *self, const taskq_id_t *id, uint32_t attempt)
{
    for (size_t i = member_home(self, id, attempt);; i = (i + 1) & self->set_mask) {
        member_t *m = &self->set[i];
        if (!m->count)
            return NULL;
        if (m->attempt == attempt && !memcmp(m->id.b, id->b, sizeof id->b))
            return m;
    }
}

static void member_add(taskfifo_t *self, const taskq_id_t *id, uint32_t attempt)
{
    member_t *m = member_find(self, id, attempt);
    if (m) {
        m->count++;
        return;
    }
    size_t i = member_home(self, id, attempt);
    while (self->set[i].count)
        i = (i + 1) & self->set_mask;
    self->set[i] = (member_t){.id = *id, .attempt = attempt, .count = 1};
}

static void member_del(taskfifo_t *self, const taskq_id_t *id, uint32_t attempt)
{
    member_t *m = member_find(self, id, attempt);
    if (!m || --m->count)
        return;
    /* backward shift: move later members of the run into the hole unless
     * their home lies cyclically in (hole, j] */
    size_t hole = (size_t)(m - self->set), j = hole;
    for (;;) {
        j = (j + 1) & self->set_mask;
        member_t *n = &self->set[j];
        if (!n->count)
            break;
        size_t home = member_home(self, &n->id, n->attempt);
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays)
            continue;
        self->set[hole] = *n;
        hole = j;
    }
    self->set[hole].count = 0;
}

taskfifo_t *taskfifo_new(size_t cap)
{
    taskfifo_t *self = xcalloc(1, sizeof *self);
    self->cap = cap;
    self->ring = xcalloc(cap ? cap : 1, sizeof *self->ring);
    size_t sz = 8;
    while (sz < 2 * cap)
        sz *= 2;
    self->set = xcalloc(sz, sizeof *self->set);
    self->set_mask = sz - 1;
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
    free(self->set);
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
    member_add(self, id, attempt);
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
    const taskfifo_entry_t *e = &self->ring[self->head];
    member_del(self, &e->id, e->attempt);
    self->head = (self->head + 1) % self->cap;
    self->n--;
}

bool taskfifo_has(const taskfifo_t *self, const taskq_id_t *id, uint32_t attempt)
{
    return member_find(self, id, attempt) != NULL;
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
        member_del(self, id, attempt);
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
