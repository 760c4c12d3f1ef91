/*
 * tqid.c - 128-bit task ids in the UUIDv7 layout (RFC 9562): 48 bits of unix
 * ms, version 7, 74 random bits. Time-ordered, so ids sort by submission time
 * and SQLite's index on them appends at the right edge.
 * Randomness comes from getrandom() once per process and a counter after, so
 * generating ids costs no system call per id and ids from one process are
 * strictly increasing (a 40-bit counter); two processes collide only if 74
 * random bits agree within one millisecond.
 */
#include "taskq.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint8_t g_rand[10];
static uint64_t g_counter;
static pid_t g_pid;

void taskq_id_generate(taskq_id_t *id)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    pid_t pid = getpid();
    if (pid != g_pid) { /* first call, or we are a forked child: reseed */
        if (getrandom(g_rand, sizeof g_rand, 0) != (ssize_t)sizeof g_rand) {
            uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)pid << 32);
            memcpy(g_rand, &x, 8);
        }
        /* start the counter at a random point: two processes that start in
         * the same millisecond must not produce the same sequence */
        uint64_t start = 0;
        if (getrandom(&start, sizeof start, 0) != (ssize_t)sizeof start)
            start = (uint64_t)ts.tv_nsec * 2654435761u;
        g_counter = start & ((1ULL << 39) - 1);
        g_pid = pid;
    }
    uint64_t c = ++g_counter;
    uint8_t *b = id->b;
    b[0] = (uint8_t)(ms >> 40);
    b[1] = (uint8_t)(ms >> 32);
    b[2] = (uint8_t)(ms >> 24);
    b[3] = (uint8_t)(ms >> 16);
    b[4] = (uint8_t)(ms >> 8);
    b[5] = (uint8_t)ms;
    /* rand_a (12 bits) and the top of rand_b carry the per-process counter,
     * so ids of one process are strictly increasing within a millisecond */
    b[6] = (uint8_t)(0x70 | ((c >> 36) & 0x0f));
    b[7] = (uint8_t)(c >> 28);
    b[8] = (uint8_t)(0x80 | ((c >> 22) & 0x3f));
    b[9] = (uint8_t)(c >> 14);
    b[10] = (uint8_t)(c >> 6);
    b[11] = (uint8_t)((c << 2) | (g_rand[1] & 3));
    memcpy(b + 12, g_rand + 2, 4);
}

void taskq_id_format(const taskq_id_t *id, char out[TASKQ_ID_STRLEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id->b[i] >> 4];
        out[o++] = hex[id->b[i] & 15];
    }
    out[o] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

taskq_err_t taskq_id_parse(const char *s, taskq_id_t *id)
{
    if (!s || !id)
        return TASKQ_EINVAL;
    size_t len = strlen(s);
    int dashed = len == 36;
    if (!dashed && len != 32)
        return TASKQ_EINVAL;
    taskq_id_t r;
    size_t p = 0;
    for (int i = 0; i < 16; i++) {
        if (dashed && (i == 4 || i == 6 || i == 8 || i == 10)) {
            if (s[p] != '-')
                return TASKQ_EINVAL;
            p++;
        }
        int hi = hexval(s[p]), lo = hexval(s[p + 1]);
        if (hi < 0 || lo < 0)
            return TASKQ_EINVAL;
        r.b[i] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    *id = r;
    return TASKQ_OK;
}

int taskq_id_is_zero(const taskq_id_t *id)
{
    for (int i = 0; i < 16; i++)
        if (id->b[i])
            return 0;
    return 1;
}
