/*
 * idmap.h - a hash map from short byte strings (16-byte task ids, ZeroMQ
 * routing identities, node ids) to borrowed pointers. Open addressing with
 * linear probing and tombstones, so removing the entry an iteration is on is
 * safe. No I/O.
 *
 * Ownership: the map copies keys (<= 16 bytes inline, longer ones on the
 * heap); values are borrowed: the map never frees them. Inserting while
 * iterating is not allowed (it may rehash); removing is.
 */
#ifndef TASKQ_IDMAP_H
#define TASKQ_IDMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct idmap idmap_t;

/* Caller owns the map. Never returns NULL (aborts on OOM). */
idmap_t *idmap_new(void);
/* Frees the map (not the values); accepts NULL; sets *self_p = NULL. */
void idmap_destroy(idmap_t **self_p);

/* The value for key, or NULL. */
void *idmap_find(const idmap_t *self, const void *key, size_t len);
/* Inserts or replaces; returns the previous value or NULL. value must not be NULL. */
void *idmap_put(idmap_t *self, const void *key, size_t len, void *value);
/* Removes key; returns its value, or NULL if absent. */
void *idmap_remove(idmap_t *self, const void *key, size_t len);
size_t idmap_count(const idmap_t *self);

/* Iteration: start with *cursor = 0; each call returns the next entry (key
 * and value borrowed until the next insert) or false at the end. */
bool idmap_next(const idmap_t *self, size_t *cursor, const void **key, size_t *len, void **value);

#endif
