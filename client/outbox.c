/* outbox.c - unacknowledged SUBMITs kept for resend with the same ids. */
#include "outbox.h"

#include <stdlib.h>
#include <string.h>

struct outbox {
    outbox_entry_t *v;
    size_t n, cap;
};

outbox_t *outbox_new(void)
{
    return calloc(1, sizeof(outbox_t));
}

void outbox_destroy(outbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    outbox_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        free(self->v[i].body);
    free(self->v);
    free(self);
    *self_p = NULL;
}

taskq_err_t outbox_add(outbox_t *self, uint64_t req, size_t first, size_t count, void **body_p,
                       size_t len, int64_t interval_ms)
{
    void *body = *body_p;
    *body_p = NULL;
    if (outbox_find(self, req)) {
        free(body);
        return TASKQ_EINVAL;
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        outbox_entry_t *v = realloc(self->v, cap * sizeof *v);
        if (!v) {
            free(body);
            return TASKQ_ENOMEM;
        }
        self->v = v;
        self->cap = cap;
    }
    self->v[self->n++] = (outbox_entry_t){
        .req = req, .first = first, .count = count, .body = body, .len = len,
        .sent_at = 0, .interval_ms = interval_ms, .sends = 0, .hold_until = 0,
    };
    return TASKQ_OK;
}

outbox_entry_t *outbox_find(outbox_t *self, uint64_t req)
{
    for (size_t i = 0; i < self->n; i++)
        if (self->v[i].req == req)
            return &self->v[i];
    return NULL;
}

bool outbox_ack(outbox_t *self, uint64_t req)
{
    for (size_t i = 0; i < self->n; i++) {
        if (self->v[i].req != req)
            continue;
        free(self->v[i].body);
        /* keep send order: the oldest entry is resent first */
        memmove(&self->v[i], &self->v[i + 1], (self->n - i - 1) * sizeof self->v[0]);
        self->n--;
        return true;
    }
    return false;
}

size_t outbox_count(const outbox_t *self)
{
    return self->n;
}

outbox_entry_t *outbox_at(outbox_t *self, size_t i)
{
    return i < self->n ? &self->v[i] : NULL;
}

void outbox_mark_sent(outbox_entry_t *e, int64_t now_ms, int64_t max_interval_ms)
{
    if (e->sends > 0) {
        e->interval_ms *= 2;
        if (e->interval_ms > max_interval_ms)
            e->interval_ms = max_interval_ms;
    }
    e->sends++;
    e->sent_at = now_ms;
}

void outbox_defer(outbox_entry_t *e, int64_t until_ms, int64_t interval_ms)
{
    e->hold_until = until_ms;
    e->sends = 0;
    e->interval_ms = interval_ms;
}

bool outbox_is_due(const outbox_entry_t *e, int64_t now_ms)
{
    if (now_ms < e->hold_until)
        return false;
    return e->sends == 0 || now_ms >= e->sent_at + e->interval_ms;
}

/* When e goes out next: its hold, or its resend time if it was sent. */
static int64_t entry_due_at(const outbox_entry_t *e)
{
    if (e->sends == 0)
        return e->hold_until > 0 ? e->hold_until : INT64_MAX;
    int64_t t = e->sent_at + e->interval_ms;
    return t > e->hold_until ? t : e->hold_until;
}

int64_t outbox_next_due_at(const outbox_t *self)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < self->n; i++) {
        int64_t t = entry_due_at(&self->v[i]);
        if (t < best)
            best = t;
    }
    return best;
}
