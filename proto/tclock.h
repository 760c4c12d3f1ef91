/*
 * tclock.h - the one source of time. Monotonic ms for deadlines and
 * durations; wall-clock unix ms for timestamps that are stored or shown.
 * Only tclock.c calls clock_gettime.
 */
#ifndef TASKQ_TCLOCK_H
#define TASKQ_TCLOCK_H

#include <stdint.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC); only differences mean anything. */
int64_t tclock_mono_ms(void);
/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t tclock_wall_ms(void);
/* Monotonic microseconds, for benchmarks and latency measurements. */
int64_t tclock_mono_us(void);
/* Unix time in microseconds (CLOCK_REALTIME), for history timestamps. */
int64_t tclock_wall_us(void);

#endif
