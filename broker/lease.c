/* lease.c - lease table; see lease.h.
 * Leases live in an idmap keyed by task id. Expiry order comes from a binary
 * min-heap of (deadline, id) entries that is validated lazily: a renewal
 * pushes a new entry instead of moving the old one, and an entry whose lease
 * is gone or has another deadline is discarded when it reaches the top. The
 * heap is rebuilt when stale entries outnumber live leases, so it stays
 * O(leases). */
#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "tmem.h"

typedef struct {
    int64_t deadline_at;
    taskq_id_t id;
} heap_entry_t;

typedef struct {
    size_t n;
} node_count_t;

struct lease_table {
    idmap_t *by_id;     /* id -> lease_t* (owned here) */
    idmap_t *per_node;  /* node id -> node_count_t* (owned here) */
    idmap_t *per_key;   /* "task:NAME" / "queue:Q" -> node_count_t* (owned here) */
    heap_entry_t *heap;
    size_t heap_len, heap_cap;
};

lease_table_t *lease_table_new(void)
{
    lease_table_t *self = xcalloc(1, sizeof *self);
    self->by_id = idmap_new();
    self->per_node = idmap_new();
    self->per_key = idmap_new();
    return self;
}

static void free_values(idmap_t *m)
{
    size_t c = 0;
    void *v;
    while (idmap_next(m, &c, NULL, NULL, &v))
        free(v);
}

void lease_table_destroy(lease_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lease_table_t *self = *self_p;
    free_values(self->by_id);
    free_values(self->per_node);
    free_values(self->per_key);
    idmap_destroy(&self->by_id);
    idmap_destroy(&self->per_node);
    idmap_destroy(&self->per_key);
    free(self->heap);
    free(self);
    *self_p = NULL;
}

static void heap_swap(heap_entry_t *a, heap_entry_t *b)
{
    heap_entry_t t = *a;
    *a = *b;
    *b = t;
}

static void heap_down(lease_table_t *self, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < self->heap_len && self->heap[l].deadline_at < self->heap[m].deadline_at)
            m = l;
        if (r < self->heap_len && self->heap[r].deadline_at < self->heap[m].deadline_at)
            m = r;
        if (m == i)
            return;
        heap_swap(&self->heap[i], &self->heap[m]);
        i = m;
    }
}

static void heap_push(lease_table_t *self, const taskq_id_t *id, int64_t deadline_at)
{
    if (self->heap_len == self->heap_cap) {
        self->heap_cap = self->heap_cap ? self->heap_cap * 2 : 64;
        self->heap = xrealloc(self->heap, self->heap_cap * sizeof *self->heap);
    }
    size_t i = self->heap_len++;
    self->heap[i].deadline_at = deadline_at;
    self->heap[i].id = *id;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (self->heap[p].deadline_at <= self->heap[i].deadline_at)
            break;
        heap_swap(&self->heap[p], &self->heap[i]);
        i = p;
    }
}

static void heap_pop(lease_table_t *self)
{
    self->heap[0] = self->heap[--self->heap_len];
    heap_down(self, 0);
}

/* Rebuilds the heap from the live leases when stale entries dominate. */
static void heap_compact(lease_table_t *self)
{
    size_t live = idmap_count(self->by_id);
    if (self->heap_len < 1024 || self->heap_len < 4 * live)
        return;
    self->heap_len = 0;
    size_t c = 0;
    void *v;
    while (idmap_next(self->by_id, &c, NULL, NULL, &v)) {
        const lease_t *l = v;
        self->heap[self->heap_len].deadline_at = l->deadline_at;
        self->heap[self->heap_len].id = l->id;
        self->heap_len++;
    }
    for (size_t i = self->heap_len / 2; i-- > 0;)
        heap_down(self, i);
}

static void count_add(idmap_t *m, const char *key, long delta)
{
    size_t len = strlen(key);
    node_count_t *nc = idmap_find(m, key, len);
    if (!nc) {
        if (delta < 0)
            return;
        nc = xcalloc(1, sizeof *nc);
        idmap_put(m, key, len, nc);
    }
    if (delta < 0 && nc->n <= 1) {
        idmap_remove(m, key, len);
        free(nc);
        return;
    }
    nc->n += (size_t)delta;
}

/* One lease: +1 / -1 on its node and on both of its limit keys. */
static void lease_count_add(lease_table_t *self, const lease_t *l, long delta)
{
    char key[TQ_LIMIT_KEY_MAX + 16];
    count_add(self->per_node, l->node, delta);
    snprintf(key, sizeof key, "task:%s", l->name);
    count_add(self->per_key, key, delta);
    snprintf(key, sizeof key, "queue:%s", l->queue);
    count_add(self->per_key, key, delta);
}

static void copy_str(char *dst, size_t dstsz, const char *src)
{
    size_t n = src ? strnlen(src, dstsz - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

void lease_grant(lease_table_t *self, const taskq_id_t *id, uint32_t attempt, const char *node,
                 const char *name, const char *queue, int64_t deadline_at)
{
    lease_t *l = idmap_find(self->by_id, id->b, sizeof id->b);
    if (l) {
        lease_count_add(self, l, -1);
    } else {
        l = xmalloc(sizeof *l);
        idmap_put(self->by_id, id->b, sizeof id->b, l);
    }
    l->id = *id;
    l->attempt = attempt;
    copy_str(l->node, sizeof l->node, node);
    copy_str(l->name, sizeof l->name, name);
    copy_str(l->queue, sizeof l->queue, queue);
    l->flags = 0xFF;
    l->deadline_at = deadline_at;
    lease_count_add(self, l, 1);
    heap_compact(self);
    heap_push(self, id, deadline_at);
}

taskq_err_t lease_check(const lease_table_t *self, const taskq_id_t *id, uint32_t attempt,
                        const char *node)
{
    const lease_t *l = idmap_find(self->by_id, id->b, sizeof id->b);
    if (!l || l->attempt != attempt || (node && strcmp(l->node, node) != 0))
        return TASKQ_ESTALE;
    return TASKQ_OK;
}

taskq_err_t lease_renew(lease_table_t *self, const taskq_id_t *id, uint32_t attempt,
                        const char *node, int64_t deadline_at)
{
    if (lease_check(self, id, attempt, node) != TASKQ_OK)
        return TASKQ_ESTALE;
    lease_t *l = idmap_find(self->by_id, id->b, sizeof id->b);
    if (l->deadline_at == deadline_at)
        return TASKQ_OK;
    l->deadline_at = deadline_at;
    heap_compact(self);
    heap_push(self, id, deadline_at);
    return TASKQ_OK;
}

taskq_err_t lease_release(lease_table_t *self, const taskq_id_t *id)
{
    lease_t *l = idmap_remove(self->by_id, id->b, sizeof id->b);
    if (!l)
        return TASKQ_ENOTFOUND;
    lease_count_add(self, l, -1);
    free(l);
    return TASKQ_OK; /* its heap entries go stale and are dropped lazily */
}

void lease_set_flags(lease_table_t *self, const taskq_id_t *id, uint8_t flags)
{
    lease_t *l = idmap_find(self->by_id, id->b, sizeof id->b);
    if (l)
        l->flags = flags;
}

const lease_t *lease_find(const lease_table_t *self, const taskq_id_t *id)
{
    return idmap_find(self->by_id, id->b, sizeof id->b);
}

int64_t lease_expire(lease_table_t *self, int64_t now_ms, lease_fn fn, void *arg)
{
    while (self->heap_len > 0) {
        heap_entry_t top = self->heap[0];
        lease_t *l = idmap_find(self->by_id, top.id.b, sizeof top.id.b);
        if (!l || l->deadline_at != top.deadline_at) {
            heap_pop(self); /* stale: released or renewed */
            continue;
        }
        if (top.deadline_at > now_ms)
            return top.deadline_at - now_ms;
        heap_pop(self);
        lease_t copy = *l;
        lease_release(self, &top.id);
        if (fn)
            fn(&copy, arg);
    }
    return -1;
}

int64_t lease_next_deadline(lease_table_t *self)
{
    while (self->heap_len > 0) {
        const heap_entry_t *top = &self->heap[0];
        const lease_t *l = idmap_find(self->by_id, top->id.b, sizeof top->id.b);
        if (l && l->deadline_at == top->deadline_at)
            return top->deadline_at;
        heap_pop(self); /* stale */
    }
    return INT64_MAX;
}

void lease_foreach_node(lease_table_t *self, const char *node, lease_fn fn, void *arg)
{
    size_t n = lease_node_count(self, node);
    if (n == 0)
        return;
    /* Collect first: fn may release leases, which must not disturb the scan. */
    lease_t *copies = xmalloc(n * sizeof *copies);
    size_t k = 0, c = 0;
    void *v;
    while (k < n && idmap_next(self->by_id, &c, NULL, NULL, &v)) {
        const lease_t *l = v;
        if (strcmp(l->node, node) == 0)
            copies[k++] = *l;
    }
    for (size_t i = 0; i < k; i++)
        fn(&copies[i], arg);
    free(copies);
}

size_t lease_count(const lease_table_t *self) { return idmap_count(self->by_id); }

size_t lease_node_count(const lease_table_t *self, const char *node)
{
    const node_count_t *nc = idmap_find(self->per_node, node, strlen(node));
    return nc ? nc->n : 0;
}

size_t lease_key_count(const lease_table_t *self, const char *key)
{
    const node_count_t *nc = idmap_find(self->per_key, key, strlen(key));
    return nc ? nc->n : 0;
}
