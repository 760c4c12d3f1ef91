/* ratelimit.c - rate and concurrency limits; see ratelimit.h. */
#include "ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "tmem.h"

struct limits {
    idmap_t *by_key; /* key -> limit_t* (owned) */
};

limits_t *limits_new(void)
{
    limits_t *self = xcalloc(1, sizeof *self);
    self->by_key = idmap_new();
    return self;
}

static void clear(limits_t *self)
{
    size_t c = 0;
    void *v;
    while (idmap_next(self->by_key, &c, NULL, NULL, &v)) {
        limit_t *l = v;
        idmap_remove(self->by_key, l->key, strlen(l->key));
        free(l);
    }
}

void limits_destroy(limits_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    clear(*self_p);
    idmap_destroy(&(*self_p)->by_key);
    free(*self_p);
    *self_p = NULL;
}

size_t limits_count(const limits_t *self) { return idmap_count(self->by_key); }

limit_t *limits_find(limits_t *self, const char *key)
{
    return idmap_count(self->by_key) ? idmap_find(self->by_key, key, strlen(key)) : NULL;
}

static limit_t *put(limits_t *self, const char *key)
{
    limit_t *l = limits_find(self, key);
    if (!l) {
        l = xcalloc(1, sizeof *l);
        snprintf(l->key, sizeof l->key, "%s", key);
        idmap_put(self->by_key, l->key, strlen(l->key), l);
    }
    return l;
}

static void load_one(const store_limit_t *s, void *arg)
{
    limit_t *l = put(arg, s->key);
    l->rate = s->rate;
    l->burst = s->burst;
    l->max_running = s->max_running;
    l->tokens = s->tokens;
    l->tokens_at = s->tokens_at;
    l->paused_until = s->paused_until;
    l->dirty = false;
}

taskq_err_t limits_load(limits_t *self, store_t *store)
{
    clear(self);
    return store_limit_list(store, load_one, self);
}

static uint32_t capacity(const limit_t *l)
{
    if (l->burst)
        return l->burst;
    double c = ceil(l->rate);
    return c < 1 ? 1 : (uint32_t)c;
}

limit_t *limits_set(limits_t *self, const char *key, double rate, uint32_t burst,
                    uint32_t max_running, int64_t now)
{
    limit_t *l = limits_find(self, key);
    bool fresh = l == NULL;
    l = put(self, key);
    l->rate = rate;
    l->burst = burst;
    l->max_running = max_running;
    if (fresh) {
        l->tokens = capacity(l);
        l->tokens_at = now;
    } else if (l->tokens > capacity(l)) {
        l->tokens = capacity(l);
    }
    l->dirty = true;
    return l;
}

bool limits_rm(limits_t *self, const char *key)
{
    limit_t *l = idmap_remove(self->by_key, key, strlen(key));
    free(l);
    return l != NULL;
}

double limits_tokens_now(const limit_t *l, int64_t now)
{
    if (l->rate <= 0)
        return capacity(l);
    double t = l->tokens;
    if (now > l->tokens_at)
        t += l->rate * (double)(now - l->tokens_at) / 1000.0;
    double cap = capacity(l);
    return t > cap ? cap : t;
}

/* Refills the bucket up to now (a clock that steps back adds nothing). */
static void refill(limit_t *l, int64_t now)
{
    if (l->rate <= 0)
        return;
    double t = limits_tokens_now(l, now);
    if (now > l->tokens_at || t != l->tokens) {
        l->tokens = t;
        l->tokens_at = now > l->tokens_at ? now : l->tokens_at;
    }
}

static bool allows(limit_t *l, const lease_table_t *leases, int64_t now)
{
    if (!l)
        return true;
    if (l->paused_until > now)
        return false;
    if (l->max_running && lease_key_count(leases, l->key) >= l->max_running)
        return false;
    if (l->rate > 0) {
        refill(l, now);
        if (l->tokens < 1.0 - 1e-9)
            return false;
    }
    return true;
}

static void take(limit_t *l)
{
    if (l && l->rate > 0) {
        l->tokens -= 1.0;
        if (l->tokens < 0)
            l->tokens = 0;
        l->dirty = true;
    }
}

bool limits_admit(limits_t *self, const lease_table_t *leases, const char *name,
                  const char *queue, int64_t now, bool take_tokens)
{
    if (idmap_count(self->by_key) == 0)
        return true;
    char key[TQ_LIMIT_KEY_MAX + 16];
    snprintf(key, sizeof key, "task:%s", name);
    limit_t *lt = limits_find(self, key);
    snprintf(key, sizeof key, "queue:%s", queue);
    limit_t *lq = limits_find(self, key);
    if (!allows(lt, leases, now) || !allows(lq, leases, now))
        return false;
    if (take_tokens) {
        take(lt);
        take(lq);
    }
    return true;
}

bool limits_queue_open(limits_t *self, const lease_table_t *leases, const char *queue,
                       int64_t now)
{
    if (idmap_count(self->by_key) == 0)
        return true;
    char key[TQ_LIMIT_KEY_MAX + 16];
    snprintf(key, sizeof key, "queue:%s", queue);
    return allows(limits_find(self, key), leases, now);
}

void limits_pause(limits_t *self, const char *key, int64_t until)
{
    limit_t *l = limits_find(self, key);
    if (l && until > l->paused_until) {
        l->paused_until = until;
        l->dirty = true;
    }
}

int64_t limits_next_refill(limits_t *self, int64_t now)
{
    int64_t next = INT64_MAX;
    size_t c = 0;
    void *v;
    while (idmap_next(self->by_key, &c, NULL, NULL, &v)) {
        const limit_t *l = v;
        int64_t t = INT64_MAX;
        if (l->paused_until > now)
            t = l->paused_until;
        else if (l->rate > 0) {
            double have = limits_tokens_now(l, now);
            if (have < 1.0)
                t = now + (int64_t)ceil((1.0 - have) * 1000.0 / l->rate);
        }
        if (t < next)
            next = t;
    }
    return next;
}

taskq_err_t limits_save(limits_t *self, store_t *store)
{
    size_t c = 0;
    void *v;
    while (idmap_next(self->by_key, &c, NULL, NULL, &v)) {
        limit_t *l = v;
        if (!l->dirty)
            continue;
        taskq_err_t err =
            store_limit_save_bucket(store, l->key, l->tokens, l->tokens_at, l->paused_until);
        if (err != TASKQ_OK && err != TASKQ_ENOTFOUND)
            return err;
        l->dirty = false;
    }
    return TASKQ_OK;
}

limit_t *limits_next(limits_t *self, size_t *cursor)
{
    void *v;
    return idmap_next(self->by_key, cursor, NULL, NULL, &v) ? v : NULL;
}
