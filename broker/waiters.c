/* waiters.c - WAIT registrations; see waiters.h. Invariant: a peer record
 * exists while at least one entry references it (refs > 0). */
#include "waiters.h"

#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "tqlimits.h"
#include "tmem.h"

typedef struct {
    size_t refs;
    size_t len;
    uint8_t identity[TQ_MAX_IDENTITY];
} peer_t;

typedef struct entry {
    struct entry *next;
    peer_t *peer;
    uint64_t req;
    int64_t deadline_at;
    bool batch;
} entry_t;

typedef struct {
    taskq_id_t id;
    entry_t *head;
} list_t;

struct waiters {
    idmap_t *by_id;   /* id -> list_t* */
    idmap_t *peers;   /* identity -> peer_t* */
    size_t total, max_total;
};

waiters_t *waiters_new(size_t max_total)
{
    waiters_t *self = xcalloc(1, sizeof *self);
    self->by_id = idmap_new();
    self->peers = idmap_new();
    self->max_total = max_total;
    return self;
}

static void peer_unref(waiters_t *self, peer_t *p)
{
    if (--p->refs == 0) {
        idmap_remove(self->peers, p->identity, p->len);
        free(p);
    }
}

void waiters_destroy(waiters_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    waiters_t *self = *self_p;
    size_t c = 0;
    void *v;
    while (idmap_next(self->by_id, &c, NULL, NULL, &v)) {
        list_t *l = v;
        for (entry_t *e = l->head, *next; e; e = next) {
            next = e->next;
            free(e);
        }
        free(l);
    }
    c = 0;
    while (idmap_next(self->peers, &c, NULL, NULL, &v))
        free(v);
    idmap_destroy(&self->by_id);
    idmap_destroy(&self->peers);
    free(self);
    *self_p = NULL;
}

taskq_err_t waiters_add(waiters_t *self, const taskq_id_t *id, const void *identity,
                        size_t identity_len, uint64_t req, int64_t deadline_at, bool batch)
{
    if (identity_len > TQ_MAX_IDENTITY)
        return TASKQ_EINVAL;
    list_t *l = idmap_find(self->by_id, id->b, sizeof id->b);
    peer_t *p = idmap_find(self->peers, identity, identity_len);
    if (l && p) {
        for (entry_t *e = l->head; e; e = e->next) {
            if (e->peer == p && e->req == req) {
                if (deadline_at > e->deadline_at)
                    e->deadline_at = deadline_at;
                e->batch = batch;
                return TASKQ_OK; /* repeated registration */
            }
        }
    }
    if (self->total >= self->max_total)
        return TASKQ_EBUSY;
    if (!p) {
        p = xcalloc(1, sizeof *p);
        memcpy(p->identity, identity, identity_len);
        p->len = identity_len;
        idmap_put(self->peers, p->identity, p->len, p);
    }
    if (!l) {
        l = xcalloc(1, sizeof *l);
        l->id = *id;
        idmap_put(self->by_id, l->id.b, sizeof l->id.b, l);
    }
    entry_t *e = xmalloc(sizeof *e);
    e->peer = p;
    p->refs++;
    e->req = req;
    e->deadline_at = deadline_at;
    e->batch = batch;
    e->next = l->head;
    l->head = e;
    self->total++;
    return TASKQ_OK;
}

size_t waiters_take(waiters_t *self, const taskq_id_t *id, waiters_fn fn, void *arg)
{
    list_t *l = idmap_remove(self->by_id, id->b, sizeof id->b);
    if (!l)
        return 0;
    size_t n = 0;
    for (entry_t *e = l->head, *next; e; e = next) {
        next = e->next;
        if (fn)
            fn(&l->id, e->peer->identity, e->peer->len, e->req, e->batch, arg);
        peer_unref(self, e->peer);
        free(e);
        n++;
    }
    self->total -= n;
    free(l);
    return n;
}

size_t waiters_expire(waiters_t *self, int64_t now_ms)
{
    size_t n = 0, c = 0;
    void *v;
    while (idmap_next(self->by_id, &c, NULL, NULL, &v)) {
        list_t *l = v;
        entry_t **pp = &l->head;
        while (*pp) {
            entry_t *e = *pp;
            if (e->deadline_at <= now_ms) {
                *pp = e->next;
                peer_unref(self, e->peer);
                free(e);
                n++;
            } else {
                pp = &e->next;
            }
        }
        if (!l->head) {
            idmap_remove(self->by_id, l->id.b, sizeof l->id.b); /* safe while iterating */
            free(l);
        }
    }
    self->total -= n;
    return n;
}

size_t waiters_count(const waiters_t *self) { return self->total; }
