/*
 * hevents.h - the fault tests' view of a history directory: every line of
 * every DIR/NAME.hist file as a parsed event, sorted by wall time. The checker
 * (checker.h) judges a history; this only lets a test find events to
 * measure (kill -> requeue latency, exec_start counts, stale DONEs).
 *
 * Lines that do not parse (a torn last line cannot happen: one write each,
 * but be tolerant) are counted in `bad` and skipped. Owned by the caller;
 * hevents_destroy(&p) frees.
 */
#ifndef TASKQ_HEVENTS_H
#define TASKQ_HEVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEV_FIELDS 5
#define HEV_FIELD_MAX 72

typedef struct {
    int64_t us;                          /* wall clock, microseconds */
    char role[8];                        /* client broker worker child fault */
    int pid;
    char ev[20];                         /* event name */
    int nf;                              /* fields after the event */
    char f[HEV_FIELDS][HEV_FIELD_MAX];   /* truncated to HEV_FIELD_MAX - 1 */
} hev_t;

typedef struct {
    hev_t *ev;
    size_t n;
    size_t bad;
    size_t files;
} hevents_t;

/* Loads every DIR/NAME.hist; NULL if the directory cannot be read. */
hevents_t *hevents_load(const char *dir);
void hevents_destroy(hevents_t **self_p);
/* Number of events named `ev` (role NULL = any) whose field 0 is `id`
 * (NULL = any). */
size_t hevents_count(const hevents_t *self, const char *role, const char *ev, const char *id);

#endif
