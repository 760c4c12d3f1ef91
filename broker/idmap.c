/* idmap.c - open-addressing hash map; see idmap.h. Invariant: the table size
 * is a power of two and (live + tombstones) stays under 70% of it, so every
 * probe sequence ends at an empty slot. */
#include "idmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tmem.h"

#define INLINE_KEY 16

enum { SLOT_EMPTY = 0, SLOT_LIVE = 1, SLOT_DEAD = 2 };

typedef struct {
    uint64_t hash;
    void *value;
    uint8_t *heap_key; /* keys longer than INLINE_KEY */
    uint16_t len;
    uint8_t state;
    uint8_t inline_key[INLINE_KEY];
} slot_t;

struct idmap {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t live;
    size_t dead;
};

static uint64_t hash_bytes(const void *key, size_t len)
{
    /* FNV-1a, then a final mix so the low bits (used as the index) depend on
     * every byte: UUIDv7 ids share their leading time bytes. */
    const uint8_t *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static const uint8_t *slot_key(const slot_t *s)
{
    return s->len > INLINE_KEY ? s->heap_key : s->inline_key;
}

idmap_t *idmap_new(void)
{
    idmap_t *self = xcalloc(1, sizeof *self);
    self->cap = 16;
    self->slots = xcalloc(self->cap, sizeof(slot_t));
    return self;
}

void idmap_destroy(idmap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    idmap_t *self = *self_p;
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].state == SLOT_LIVE)
            free(self->slots[i].heap_key);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

/* Index of the live slot holding key, or SIZE_MAX. */
static size_t lookup(const idmap_t *self, const void *key, size_t len, uint64_t h)
{
    size_t mask = self->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const slot_t *s = &self->slots[i];
        if (s->state == SLOT_EMPTY)
            return SIZE_MAX;
        if (s->state == SLOT_LIVE && s->hash == h && s->len == len &&
            memcmp(slot_key(s), key, len) == 0)
            return i;
    }
}

static void rehash(idmap_t *self, size_t newcap)
{
    slot_t *old = self->slots;
    size_t oldcap = self->cap;
    self->slots = xcalloc(newcap, sizeof(slot_t));
    self->cap = newcap;
    self->dead = 0;
    size_t mask = newcap - 1;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].state != SLOT_LIVE)
            continue;
        size_t j = (size_t)old[i].hash & mask;
        while (self->slots[j].state != SLOT_EMPTY)
            j = (j + 1) & mask;
        self->slots[j] = old[i];
    }
    free(old);
}

void *idmap_find(const idmap_t *self, const void *key, size_t len)
{
    if (len > UINT16_MAX)
        return NULL;
    size_t i = lookup(self, key, len, hash_bytes(key, len));
    return i == SIZE_MAX ? NULL : self->slots[i].value;
}

void *idmap_put(idmap_t *self, const void *key, size_t len, void *value)
{
    if (len > UINT16_MAX)
        abort(); /* programmer error: keys are ids and identities (<= 255 bytes) */
    uint64_t h = hash_bytes(key, len);
    size_t i = lookup(self, key, len, h);
    if (i != SIZE_MAX) {
        void *prev = self->slots[i].value;
        self->slots[i].value = value;
        return prev;
    }
    if ((self->live + self->dead + 1) * 10 >= self->cap * 7)
        rehash(self, self->live * 2 * 10 >= self->cap * 7 ? self->cap * 2 : self->cap);
    size_t mask = self->cap - 1;
    size_t j = (size_t)h & mask;
    while (self->slots[j].state == SLOT_LIVE)
        j = (j + 1) & mask;
    slot_t *s = &self->slots[j];
    if (s->state == SLOT_DEAD)
        self->dead--;
    s->state = SLOT_LIVE;
    s->hash = h;
    s->len = (uint16_t)len;
    s->value = value;
    s->heap_key = NULL;
    if (len > INLINE_KEY) {
        s->heap_key = xmalloc(len);
        memcpy(s->heap_key, key, len);
    } else if (len) {
        memcpy(s->inline_key, key, len);
    }
    self->live++;
    return NULL;
}

void *idmap_remove(idmap_t *self, const void *key, size_t len)
{
    if (len > UINT16_MAX)
        return NULL;
    size_t i = lookup(self, key, len, hash_bytes(key, len));
    if (i == SIZE_MAX)
        return NULL;
    slot_t *s = &self->slots[i];
    void *v = s->value;
    free(s->heap_key);
    s->heap_key = NULL;
    s->value = NULL;
    s->state = SLOT_DEAD;
    self->live--;
    self->dead++;
    return v;
}

size_t idmap_count(const idmap_t *self) { return self->live; }

bool idmap_next(const idmap_t *self, size_t *cursor, const void **key, size_t *len, void **value)
{
    for (size_t i = *cursor; i < self->cap; i++) {
        const slot_t *s = &self->slots[i];
        if (s->state != SLOT_LIVE)
            continue;
        *cursor = i + 1;
        if (key)
            *key = slot_key(s);
        if (len)
            *len = s->len;
        if (value)
            *value = s->value;
        return true;
    }
    *cursor = self->cap;
    return false;
}
