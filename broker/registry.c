/* registry.c - worker nodes; see registry.h. Invariant: every node is in
 * both maps, by_identity[node->identity] == by_node[node->id] == node. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "tlog.h"
#include "tmem.h"

struct registry {
    idmap_t *by_identity;
    idmap_t *by_node;
};

registry_t *registry_new(void)
{
    registry_t *self = xcalloc(1, sizeof *self);
    self->by_identity = idmap_new();
    self->by_node = idmap_new();
    return self;
}

static void node_free(registry_node_t *n)
{
    free(n->children);
    free(n);
}

void registry_destroy(registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    registry_t *self = *self_p;
    size_t c = 0;
    void *v;
    while (idmap_next(self->by_node, &c, NULL, NULL, &v))
        node_free(v);
    idmap_destroy(&self->by_identity);
    idmap_destroy(&self->by_node);
    free(self);
    *self_p = NULL;
}

registry_node_t *registry_find_identity(const registry_t *self, const void *identity, size_t len)
{
    return idmap_find(self->by_identity, identity, len);
}

registry_node_t *registry_find_node(const registry_t *self, const char *node_id)
{
    return idmap_find(self->by_node, node_id, strlen(node_id));
}

void registry_remove(registry_t *self, registry_node_t **node_p)
{
    if (!node_p || !*node_p)
        return;
    registry_node_t *n = *node_p;
    idmap_remove(self->by_identity, n->identity, n->identity_len);
    idmap_remove(self->by_node, n->id, strlen(n->id));
    node_free(n);
    *node_p = NULL;
}

registry_node_t *registry_hello(registry_t *self, const void *identity, size_t identity_len,
                                const char *node_id, bool *existed)
{
    if (identity_len > TQ_MAX_IDENTITY)
        identity_len = TQ_MAX_IDENTITY;
    registry_node_t *other = registry_find_identity(self, identity, identity_len);
    if (other && strcmp(other->id, node_id) != 0) {
        /* A peer renamed itself on the same connection: the old node id ends
         * here; its leases expire by deadline. */
        tlog_warn("identity of node %s now claims node id %s", other->id, node_id);
        registry_remove(self, &other);
    }
    registry_node_t *n = registry_find_node(self, node_id);
    *existed = n != NULL;
    if (n) {
        idmap_remove(self->by_identity, n->identity, n->identity_len);
    } else {
        n = xcalloc(1, sizeof *n);
        size_t len = strnlen(node_id, TQ_NODE_MAX);
        memcpy(n->id, node_id, len);
        n->id[len] = '\0';
        idmap_put(self->by_node, n->id, len, n);
    }
    memcpy(n->identity, identity, identity_len);
    n->identity_len = identity_len;
    n->credit = 0;
    n->stopping = false;
    idmap_put(self->by_identity, n->identity, n->identity_len, n);
    return n;
}

void registry_add_credit(registry_node_t *node, uint32_t credit)
{
    uint64_t c = (uint64_t)node->credit + credit;
    node->credit = c > TQ_CREDIT_MAX ? TQ_CREDIT_MAX : (uint32_t)c;
}

/* Local copy of a borrowed wire string: keeps this module free of the codec. */
static void copy_str(char *dst, size_t dstsz, proto_str_t s)
{
    size_t n = s.len < dstsz - 1 ? s.len : dstsz - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

void registry_set_children(registry_node_t *node, const proto_child_t *children, uint32_t n)
{
    if (n > TQ_SLOTS_MAX)
        n = TQ_SLOTS_MAX;
    if (n != node->nchildren) {
        free(node->children);
        node->children = n ? xcalloc(n, sizeof *node->children) : NULL;
        node->nchildren = n;
    }
    /* Copy the strings: they point into a message buffer freed after this turn. */
    for (uint32_t i = 0; i < n; i++) {
        registry_child_t *d = &node->children[i];
        const proto_child_t *s = &children[i];
        d->pid = s->pid;
        copy_str(d->state, sizeof d->state, s->state);
        d->has_task = s->has_task;
        d->task_id = s->task_id;
        copy_str(d->task_name, sizeof d->task_name, s->task_name);
        d->running_ms = s->running_ms;
        d->done = s->done;
        d->failed = s->failed;
        d->rss_kb = s->rss_kb;
    }
}

registry_node_t *registry_next(const registry_t *self, size_t *cursor)
{
    void *v = NULL;
    if (!idmap_next(self->by_node, cursor, NULL, NULL, &v))
        return NULL;
    return v;
}

size_t registry_count(const registry_t *self) { return idmap_count(self->by_node); }

uint64_t registry_children_total(const registry_t *self)
{
    uint64_t total = 0;
    size_t c = 0;
    registry_node_t *n;
    while ((n = registry_next(self, &c)) != NULL)
        total += n->nchildren;
    return total;
}

void registry_set_queues(registry_node_t *node, const proto_str_t *names,
                         const uint32_t *weights, uint32_t n, bool strict)
{
    if (n > TQ_QUEUES_MAX)
        n = TQ_QUEUES_MAX;
    node->nqueues = n;
    for (uint32_t i = 0; i < n; i++) {
        proto_str_copy(node->queues[i], sizeof node->queues[i], names[i]);
        node->weights[i] = weights && weights[i] ? weights[i] : 1;
        node->cw[i] = 0;
    }
    node->strict = strict;
    node->all_rr = 0;
}

bool registry_node_serves(const registry_node_t *node, const char *queue)
{
    if (node->nqueues == 0)
        return true;
    for (uint32_t i = 0; i < node->nqueues; i++)
        if (strcmp(node->queues[i], queue) == 0)
            return true;
    return false;
}
