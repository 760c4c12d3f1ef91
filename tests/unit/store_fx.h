/*
 * store_fx.h - the cmocka fixture the store unit tests share: a temp dir
 * with one database file, opened with a given durability (or not at all),
 * removed with its -wal and -shm at teardown. Header-only (static), one
 * copy per test binary.
 */
#ifndef TASKQ_STORE_FX_H
#define TASKQ_STORE_FX_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"

typedef struct {
    char dir[64];
    char path[96];
    store_t *s;
} fx_t;

/* A fresh /tmp/<name>.XXXXXX with path <dir>/t.db; the store is opened
 * there with durability d when open is true. */
static inline int fx_setup(void **state, const char *name, store_durability_t d, bool open)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/%s.XXXXXX", name);
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/t.db", fx->dir);
    if (open) {
        taskq_err_t err;
        fx->s = store_open(fx->path, d, &err);
        if (!fx->s || err != TASKQ_OK)
            return -1;
    }
    *state = fx;
    return 0;
}

static inline int fx_teardown(void **state)
{
    fx_t *fx = *state;
    char p[128];
    store_close(&fx->s);
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", fx->path, sfx[i]);
        unlink(p);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Closes and opens the same database again (durability normal). */
static inline void fx_reopen(fx_t *fx)
{
    store_close(&fx->s);
    taskq_err_t err;
    fx->s = store_open(fx->path, STORE_DURABILITY_NORMAL, &err);
    assert_non_null(fx->s);
    assert_int_equal(err, TASKQ_OK);
}

#endif
